// The connection thread pool behind cpp-httplib.
//
// httplib serves each connection on one pool thread for its whole life, and a long-poll or an
// SSE stream holds that thread while it waits. A fixed pool (the .so's default is 8) lets a few
// hundred waiting workers starve every other client. This pool grows a thread whenever no thread
// is idle, up to max_threads, and lets threads beyond min_threads exit after idle_timeout. A
// waiting thread costs a stack and nothing else (it blocks on a condition variable, never spins).
// When max_threads are busy, new connections queue until one frees; when max_waiting are
// queued already, a new connection is shed: it gets 503 at once and is closed, so a crowd of
// connections cannot take every descriptor the log needs.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>

#include <httplib.h>

#include "jobstore/core/mutex.h"

namespace jobstore::http {

class ElasticThreadPool final : public httplib::TaskQueue {
 public:
  ElasticThreadPool(std::size_t min_threads, std::size_t max_threads, std::size_t max_waiting,
                    std::chrono::milliseconds idle_timeout);
  ~ElasticThreadPool() override;

  void enqueue(std::function<void()> task) override;
  // Runs the queued tasks to the end, then joins every thread.
  void shutdown() override;

  std::size_t threads() const;
  std::size_t busy() const;
  std::size_t shed() const;  // connections shed so far

 private:
  void SpawnLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WorkerLoop();

  const std::size_t min_threads_;
  const std::size_t max_threads_;
  const std::size_t max_waiting_;
  const std::chrono::milliseconds idle_timeout_;

  mutable Mutex mu_;
  CondVar work_cv_;  // a task arrived, or shutdown
  CondVar exit_cv_;  // a thread exited
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  std::size_t threads_ ABSL_GUARDED_BY(mu_) = 0;
  std::size_t idle_ ABSL_GUARDED_BY(mu_) = 0;
  std::size_t shed_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace jobstore::http
