// The plainest durable group commit, the ceiling jobstore's write path is measured against:
// callers queue bytes; one writer thread appends everything queued with one write() and one
// fdatasync(), then wakes the callers the way jobstore does (internal::AckTree). Nothing is
// parsed, decided, indexed or checksummed. Used by bare_httplib_server --durable and store_bench.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "jobstore/store/internal/ack_tree.h"

namespace jobstore::bench {

class PlainGroupCommit {
 public:
  // Appends to `path` (created if missing). Exits the process if the file cannot be written:
  // a benchmark has nothing to fall back to.
  explicit PlainGroupCommit(const std::string& path)
      : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) {
    if (fd_ < 0) Die(path.c_str());
    writer_ = std::thread([this] { Run(); });
  }
  ~PlainGroupCommit() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    writer_.join();
    ::close(fd_);
  }
  PlainGroupCommit(const PlainGroupCommit&) = delete;
  PlainGroupCommit& operator=(const PlainGroupCommit&) = delete;

  // Blocks until `bytes` are written and fdatasync'ed.
  void Append(std::string_view bytes) {
    auto p = std::make_shared<Pending>();
    p->bytes = bytes;
    {
      std::lock_guard lock(mu_);
      queue_.push_back(p);
    }
    cv_.notify_one();
    p->ack.Wait();
  }

  double mean_batch() const {
    std::lock_guard lock(mu_);
    return batches_ ? static_cast<double>(appends_) / static_cast<double>(batches_) : 0;
  }

 private:
  struct Pending {
    std::string_view bytes;
    internal::AckSlot ack;
  };

  static void Die(const char* what) {
    std::perror(what);
    std::exit(1);
  }

  void Run() {
    std::vector<std::shared_ptr<Pending>> batch;
    std::string buffer;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        batch.assign(queue_.begin(), queue_.end());
        queue_.clear();
        ++batches_;
        appends_ += batch.size();
      }
      buffer.clear();
      for (const auto& p : batch) buffer += p->bytes;
      if (::write(fd_, buffer.data(), buffer.size()) != static_cast<ssize_t>(buffer.size()) ||
          ::fdatasync(fd_) != 0) {
        Die("plain group commit");
      }
      std::vector<std::shared_ptr<internal::AckSlot>> acks;
      for (const auto& p : batch) acks.emplace_back(p, &p->ack);
      internal::AckTree::Acknowledge(std::move(acks));
      batch.clear();
    }
  }

  const int fd_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Pending>> queue_;  // guarded by mu_
  bool stopping_ = false;                       // guarded by mu_
  std::uint64_t batches_ = 0, appends_ = 0;     // guarded by mu_
  std::thread writer_;
};

}  // namespace jobstore::bench
