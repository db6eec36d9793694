// A copy's tail of the replicated stream: an ordered consumer from the stream seq after the
// local copy's SourceSeq(), each message decoded (every record's CRC checked) and handed to
// JobStore::ApplyReplicated, which appends it to the local log and the projection and wakes
// waiters. Messages the local copy holds already (the writer's own) are skipped.
//
// A batch that does not continue the local log (a gap), or that does not decode or apply, stops
// the tail loudly: failure() says why, /readyz turns 503, and the instance must be looked at.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "jobstore/core/mutex.h"
#include "jobstore/replication/nats_connection.h"
#include "jobstore/replication/stream_setup.h"
#include "jobstore/store/job_store.h"

namespace jobstore::replication {

class StreamTail {
 public:
  StreamTail(const NatsConnection& conn, StreamSettings settings, JobStore& store);
  ~StreamTail();
  StreamTail(const StreamTail&) = delete;
  StreamTail& operator=(const StreamTail&) = delete;

  Status Start();
  void Stop();  // idempotent

  std::uint64_t messages_applied() const { return applied_.load(std::memory_order_relaxed); }
  // Empty while the tail runs well.
  std::string failure() const;

 private:
  void Run();
  void Fail(const std::string& why);

  const NatsConnection& conn_;
  const StreamSettings settings_;
  JobStore& store_;
  natsSubscription* sub_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> applied_{0};
  mutable Mutex mu_;
  std::string failure_ ABSL_GUARDED_BY(mu_);
};

}  // namespace jobstore::replication
