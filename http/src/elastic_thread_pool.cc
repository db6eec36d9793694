#include "elastic_thread_pool.h"

#include <thread>

#include "guarded_connection.h"

namespace jobstore::http {

ElasticThreadPool::ElasticThreadPool(std::size_t min_threads, std::size_t max_threads,
                                     std::size_t max_waiting,
                                     std::chrono::milliseconds idle_timeout)
    : min_threads_(min_threads), max_threads_(std::max(max_threads, min_threads)),
      max_waiting_(max_waiting), idle_timeout_(idle_timeout) {
  MutexLock lock(&mu_);
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
    MutexLock lock(&mu_);
    // Queued tasks beyond the idle threads wait; past max_waiting_ of them (or when stopping)
    // the connection is shed instead of holding its descriptor in the queue.
    const bool full = threads_ >= max_threads_ && tasks_.size() >= idle_ + max_waiting_;
    if (!stopping_ && !full) {
      tasks_.push_back(std::move(task));
      // Every queued task beyond the idle threads wants a thread of its own.
      if (tasks_.size() > idle_ && threads_ < max_threads_) SpawnLocked();
      work_cv_.Signal();
      return;
    }
    ++shed_;
  }
  ShedNextConnection();  // the task answers 503 without waiting and closes its socket
  task();
}

void ElasticThreadPool::WorkerLoop() {
  mu_.Lock();
  for (;;) {
    ++idle_;
    const auto idle_until = std::chrono::steady_clock::now() + idle_timeout_;
    bool woke = true;
    while (!stopping_ && tasks_.empty() && woke) woke = work_cv_.WaitUntil(&mu_, idle_until);
    --idle_;
    if (tasks_.empty() && (stopping_ || (!woke && threads_ > min_threads_))) break;
    if (tasks_.empty()) continue;
    auto task = std::move(tasks_.front());
    tasks_.pop_front();
    mu_.Unlock();
    task();
    mu_.Lock();
  }
  --threads_;
  exit_cv_.SignalAll();
  mu_.Unlock();
}

void ElasticThreadPool::shutdown() {
  MutexLock lock(&mu_);
  stopping_ = true;
  work_cv_.SignalAll();
  while (threads_ != 0) exit_cv_.Wait(&mu_);
}

std::size_t ElasticThreadPool::threads() const {
  MutexLock lock(&mu_);
  return threads_;
}

std::size_t ElasticThreadPool::shed() const {
  MutexLock lock(&mu_);
  return shed_;
}

std::size_t ElasticThreadPool::busy() const {
  MutexLock lock(&mu_);
  return threads_ - idle_;
}

}  // namespace jobstore::http
