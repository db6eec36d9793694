// A copy's tail of the replicated stream: an ordered consumer from the stream seq after the
// local copy's SourceSeq(), each message decoded (every record's CRC checked) and handed to
// JobStore::ApplyReplicatedAsync, which appends it to the local log and the projection and wakes
// waiters. One batch is in flight at a time: the tail decodes the next while the writer thread
// applies the last, and waits for it before handing over the next (or before waiting for the
// stream). Messages the local copy holds already (the writer's own) are skipped.
//
// A tail that hears nothing for 2 s while the stream holds messages the copy lacks (an ordered
// consumer that could not re-create itself after its NATS server died) subscribes again from the
// copy's SourceSeq() + 1.
//
// A retention marker (batch_message.h) ends the batch it follows: once that batch is applied,
// the tail deletes the history the marker names (JobStore::DeleteHistoryExpiredThrough, on the
// tail's thread) and then moves the copy's source seq past the marker.
//
// A batch that does not continue the local log (a gap), or that does not decode or apply, stops
// the tail loudly: failure() says why, /readyz turns 503, and the instance must be looked at. So
// does a retention marker whose deletion fails.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "jobstore/core/mutex.h"
#include "jobstore/replication/nats_connection.h"
#include "jobstore/replication/stream_setup.h"
#include "jobstore/store/job_store.h"

namespace jobstore::replication {

class StreamTail {
 public:
  // `writing`: whether this instance is the writer now. A writer's tail leaves retention markers
  // to the writer's compaction, which published them and deletes its own copy's history (only
  // the writer's own can reach its tail: an instance opens an epoch only once its copy applied
  // every message of the stream).
  StreamTail(const NatsConnection& conn, StreamSettings settings, JobStore& store,
             std::function<bool()> writing = {});
  ~StreamTail();
  StreamTail(const StreamTail&) = delete;
  StreamTail& operator=(const StreamTail&) = delete;

  // `catch_up_to`: the stream's last seq at start; reaching it is logged with the rate. Waits
  // up to 30 s for a JetStream that does not answer (kUnavailable), then fails.
  Status Start(std::uint64_t catch_up_to);
  void Stop();  // idempotent

  std::uint64_t messages_applied() const { return applied_.load(std::memory_order_relaxed); }
  std::uint64_t resubscribed() const { return resubscribed_.load(std::memory_order_relaxed); }
  // Events of expired history deleted on the writer's retention markers.
  std::uint64_t retention_events_deleted() const {
    return retention_events_deleted_.load(std::memory_order_relaxed);
  }
  // Empty while the tail runs well.
  std::string failure() const;

 private:
  static constexpr std::chrono::milliseconds kStallAfter{2000};
  struct RetentionMarker {
    std::uint64_t stream_seq = 0;
    std::uint64_t expired_seq = 0;
  };

  void Run();
  void Fail(const std::string& why);
  void LogCaughtUp(std::uint64_t last);  // once, when stream seq `last` reaches catch_up_to_
  // (Again) from the local copy's SourceSeq() + 1. When the stream no longer holds that message
  // (aged out), Fail()s and leaves no subscription.
  Status Subscribe();
  void Unsubscribe();
  // Nothing heard for kStallAfter while the stream has messages this copy lacks (asked at most
  // every kStallAfter / 2).
  bool Stalled(std::chrono::steady_clock::time_point last_progress);

  const NatsConnection& conn_;
  const StreamSettings settings_;
  JobStore& store_;
  const std::function<bool()> writing_;
  natsSubscription* sub_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> applied_{0};
  std::uint64_t catch_up_to_ = 0;                    // tail thread only after Start
  std::chrono::steady_clock::time_point started_;    // the same
  bool caught_up_logged_ = false;                    // the same
  std::uint64_t start_event_seq_ = 0;                // the same
  std::chrono::steady_clock::time_point last_checked_;  // the same
  std::atomic<std::uint64_t> resubscribed_{0};
  std::atomic<std::uint64_t> retention_events_deleted_{0};
  mutable Mutex mu_;
  std::string failure_ ABSL_GUARDED_BY(mu_);
};

}  // namespace jobstore::replication
