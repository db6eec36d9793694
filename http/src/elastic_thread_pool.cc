#include "elastic_thread_pool.h"

#include <thread>

#include "guarded_connection.h"

namespace jobstore::http {

ElasticThreadPool::ElasticThreadPool(std::size_t min_threads, std::size_t max_threads,
                                     std::size_t max_waiting,
                                     std::chrono::milliseconds idle_timeout)
    : min_threads_(min_threads), max_threads_(std::max(max_threads, min_threads)),
      max_waiting_(max_waiting), idle_timeout_(idle_timeout) {
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < min_threads_; ++i) SpawnLocked();
}

ElasticThreadPool::~ElasticThreadPool() { shutdown(); }

void ElasticThreadPool::SpawnLocked() {
  ++threads_;
  // Detached: a thread that idles out leaves on its own; shutdown() waits for the count to drop.
  std::thread([this] { WorkerLoop(); }).detach();
}

void ElasticThreadPool::enqueue(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    // Queued tasks beyond the idle threads wait; past max_waiting_ of them (or when stopping)
    // the connection is shed instead of holding its descriptor in the queue.
    const bool full = threads_ >= max_threads_ && tasks_.size() >= idle_ + max_waiting_;
    if (!stopping_ && !full) {
      tasks_.push_back(std::move(task));
      // Every queued task beyond the idle threads wants a thread of its own.
      if (tasks_.size() > idle_ && threads_ < max_threads_) SpawnLocked();
      work_cv_.notify_one();
      return;
    }
    ++shed_;
  }
  ShedNextConnection();  // the task answers 503 without waiting and closes its socket
  task();
}

void ElasticThreadPool::WorkerLoop() {
  std::unique_lock lock(mu_);
  for (;;) {
    ++idle_;
    bool woke = work_cv_.wait_for(lock, idle_timeout_,
                                  [&] { return stopping_ || !tasks_.empty(); });
    --idle_;
    if (tasks_.empty() && (stopping_ || (!woke && threads_ > min_threads_))) break;
    if (tasks_.empty()) continue;
    auto task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();
    task();
    lock.lock();
  }
  --threads_;
  exit_cv_.notify_all();
}

void ElasticThreadPool::shutdown() {
  std::unique_lock lock(mu_);
  stopping_ = true;
  work_cv_.notify_all();
  exit_cv_.wait(lock, [&] { return threads_ == 0; });
}

std::size_t ElasticThreadPool::threads() const {
  std::lock_guard lock(mu_);
  return threads_;
}

std::size_t ElasticThreadPool::shed() const {
  std::lock_guard lock(mu_);
  return shed_;
}

std::size_t ElasticThreadPool::busy() const {
  std::lock_guard lock(mu_);
  return threads_ - idle_;
}

}  // namespace jobstore::http
