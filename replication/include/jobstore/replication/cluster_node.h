// One instance of several on a replicated log (--nats): the NATS connection, the stream and the
// lease bucket, this instance's tail of the stream, and its bid for the writer's lease.
//
// The writer's lease is a key in a replicated KV bucket whose TTL is --writer-lease. A follower
// that finds the key gone creates it and opens a writer epoch (jetstream_appender.h); the writer
// renews it every quarter of the TTL and steps down when a renewal fails. The lease only decides
// who tries: the fence on the stream decides who writes, so two instances that both believe
// they hold the lease (a paused process, the KV's per-subject CAS bug on 2.9) never both append.
// The lease's value names the writer's HTTP address, where followers forward writes; a watcher
// on the key tells followers of a new writer at once. A renewal NATS does not answer (an
// election) is retried while three quarters of the lease have not passed since the last one.
//
// Lifecycle: Start() after the store is open (it tails from the store's SourceSeq) and before
// the API serves; Stop() before the store closes.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "jobstore/core/mutex.h"
#include "jobstore/replication/jetstream_appender.h"
#include "jobstore/replication/nats_connection.h"
#include "jobstore/replication/stream_setup.h"
#include "jobstore/replication/stream_tail.h"
#include "jobstore/store/job_store.h"

namespace jobstore::replication {

struct ClusterOptions {
  NatsOptions nats;
  StreamSettings stream;
  std::string instance;  // --instance: this instance's name (default its HTTP host:port)
  std::string address;   // where other instances reach this one's API ("host:port")
};

struct ClusterStatus {
  bool writer = false;
  bool connected = false;  // the NATS connection is up (false while it reconnects)
  std::string writer_instance;   // empty: none known
  std::string writer_address;
  std::uint64_t stream_last_seq = 0;  // as of the last look (each lease round)
  std::uint64_t applied_stream_seq = 0;
  bool caught_up = false;
  std::uint64_t retention_events_deleted = 0;  // on the writer's retention markers, by the tail
  std::string failure;  // the tail stopped (a diverged copy): this instance must not serve
};

class ClusterNode {
 public:
  // Connects, makes sure the stream and the lease bucket exist (or that the stream's settings fit).
  static StatusOr<std::unique_ptr<ClusterNode>> Connect(ClusterOptions options);
  ~ClusterNode();
  ClusterNode(const ClusterNode&) = delete;
  ClusterNode& operator=(const ClusterNode&) = delete;

  // The appender the store must be opened with.
  eventlog::LogAppender* appender() { return appender_.get(); }
  // Starts tailing into `store` and bidding for the lease.
  Status Start(JobStore& store);
  void Stop();  // steps down, releases the lease, stops the tail (idempotent)

  bool is_writer() const { return appender_->writing(); }
  // The writer's retention marker (JetStreamAppender::PublishRetention).
  Status PublishRetention(std::uint64_t expired_seq) {
    return appender_->PublishRetention(expired_seq);
  }
  ClusterStatus status() const;
  const ClusterOptions& options() const { return options_; }
  const AppenderCounters& appender_counters() const { return appender_->counters(); }

 private:
  explicit ClusterNode(ClusterOptions options) : options_(std::move(options)) {}
  void LeaseLoop();
  void LeaseRound();
  std::string LeaseValue(const std::string& epoch) const;
  // With the lease taken (at `lease_revision`): opens the writer epoch on the stream.
  void OpenEpoch(const std::string& epoch, std::uint64_t lease_revision);
  // Records the writer a lease value names (where writes are forwarded).
  void NoteLease(const std::string& value_text);
  // Follows the lease key, so followers learn of a new writer at once, not at their next round.
  void WatchLease();

  const ClusterOptions options_;
  std::unique_ptr<NatsConnection> conn_;
  std::unique_ptr<JetStreamAppender> appender_;
  std::unique_ptr<StreamTail> tail_;
  JobStore* store_ = nullptr;
  kvStore* kv_ = nullptr;
  std::uint64_t lease_revision_ = 0;  // lease thread only: the lease key's revision we wrote
  std::string pending_epoch_;         // lease thread only: taken the lease, epoch not opened yet
  std::chrono::steady_clock::time_point renewed_at_;  // lease thread only: the last renewal
  std::uint64_t start_stream_seq_ = 0;  // the stream's last seq at start: readiness
  std::thread lease_thread_;
  std::thread watch_thread_;
  std::atomic<bool> stopping_{false};
  mutable Mutex mu_;
  CondVar cv_;
  std::string writer_instance_ ABSL_GUARDED_BY(mu_);
  std::string writer_address_ ABSL_GUARDED_BY(mu_);
  std::uint64_t stream_last_seq_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace jobstore::replication
