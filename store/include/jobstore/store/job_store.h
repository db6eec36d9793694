// The store service: the one write path of jobstore.
//
//   Submit(command) -> queued -> the writer thread decides it (in arrival order, against the
//   state that every earlier command leaves) -> its events join one RocksDB WriteBatch with every
//   other command that arrived meanwhile (group commit) -> one durable write -> Apply to the
//   projection -> waiters woken (the writer wakes one; each woken waiter wakes two more: see
//   ack_tree.h) -> the caller gets the new job or the error.
//
// Nothing is applied or acknowledged before the write returns; if the write fails, every command
// of that batch fails with kUnavailable and the projection is unchanged.
//
// Thread-safety: every public method is safe from any thread. Lifetime: Close() (or the
// destructor) stops accepting, finishes the queued commands, wakes every waiter and closes the log.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "jobstore/core/clock.h"
#include "jobstore/core/command.h"
#include "jobstore/core/mutex.h"
#include "jobstore/core/status.h"
#include "jobstore/eventlog/event_log.h"
#include "jobstore/eventlog/log_appender.h"
#include "jobstore/projections/job_projection.h"
#include "jobstore/projections/schedule_book.h"
#include "jobstore/store/internal/recent_submitters.h"
#include "jobstore/store/snapshot.h"

namespace jobstore {

struct StoreOptions {
  std::string data_dir = "./data";
  eventlog::LogOptions log;
  Clock* clock = nullptr;                 // nullptr: the system clock
  std::size_t max_batch_commands = 4096;  // per group commit
  // A delayed group commit (0: off, the default). When the writer starts a group while writes
  // had queued behind the last one (many writers at once), it waits up to this long for as many
  // requests as the last group held or, when twelve or more threads submitted writes lately
  // (within four delays), for as many (at most 64), so that one fsync acknowledges more of them:
  // less CPU per write when the machine is busy, more latency when it is not (bench/RESULTS.md,
  // "A delayed group commit"). A lone writer is never delayed, nor is a request of 16 commands
  // or more (a batch). PostgreSQL's commit_delay and MySQL's binlog_group_commit_sync_delay are
  // the same trade, off by default there too.
  std::chrono::microseconds commit_delay{0};
  bool use_snapshots = true;              // load the newest snapshot at open
  // Keep a list of expired jobs whose events are still in the log, for history retention. Off
  // when history is kept forever (the list would grow with every job ever expired).
  bool track_retained_history = false;
  // Where group commits become durable (eventlog/log_appender.h); nullptr: the embedded log.
  // Must outlive the store.
  eventlog::LogAppender* appender = nullptr;
};

// A group commit another instance wrote to the replicated log, for a copy to apply as it is.
struct ReplicatedBatch {
  std::vector<Event> events;                       // parsed, for the projection
  std::vector<eventlog::SerializedEvent> records;  // the same events, for the local log
  std::uint64_t source_seq = 0;                    // the replicated stream's position
};

// What a command produced.
struct Outcome {
  JobPtr job;                 // the job after the command (nullptr for a claim that found none)
  bool deduplicated = false;  // a create answered from its Idempotency-Key: no new job
  SchedulePtr schedule = nullptr;
  // A complete or fail that carried `next`: the job claimed in the same write (nullptr: none
  // was pending).
  JobPtr next = nullptr;
  // A claim with max_jobs > 1: every job it took, in claim order (job is the first).
  std::vector<JobPtr> jobs = {};  // a schedule command's schedule after it (nullptr once deleted)
};

struct RecoveryInfo {
  std::uint64_t snapshot_seq = 0;  // 0: no snapshot was used
  std::uint64_t events_replayed = 0;
  std::uint64_t jobs_loaded = 0;
  double log_open_ms = 0;  // opening RocksDB (before the recovery)
  double replay_ms = 0;    // the whole recovery, of which:
  double snapshot_ms = 0;  //   reading and decoding the snapshot
  double log_ms = 0;       //   replaying the log after it
  double index_ms = 0;     //   building the projection's indexes
  std::vector<std::string> warnings;  // snapshots skipped, and why
};

// Counters for metrics. Monotonic; read without locks.
struct StoreCounters {
  std::atomic<std::uint64_t> events_appended{0};
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> batch_commands{0};  // sum of commands over batches
  std::atomic<std::uint64_t> write_errors{0};
  // Time spent in durable appends (the write and its fsync, or the stream's acknowledgement),
  // in nanoseconds, over every group commit that wrote events, failed ones included.
  std::atomic<std::uint64_t> append_ns{0};
};

// What one group commit changed, for the background timers (called on the writer thread).
struct StoreChanges {
  std::vector<JobPtr> live;     // jobs created or changed
  std::vector<JobPtr> expired;  // jobs that left the projection (their last state)
  bool schedules_changed = false;
};
using ChangeListener = std::function<void(const StoreChanges&)>;

class JobStore {
  struct Request;  // one queued command, claim or replicated batch (job_store.cc)

 public:
  // Opens the log, loads the newest valid snapshot, replays the rest of the log into the
  // projection, and starts the writer. A record that fails its checksum or an event that does not
  // apply fails the open with a message naming its seq.
  static StatusOr<std::unique_ptr<JobStore>> Open(const StoreOptions& options);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // One command; blocks until it is durable and applied, or rejected.
  StatusOr<Outcome> Submit(Command command);
  // All or none, in one write: each command is decided against the state the earlier ones
  // leave. The first rejection fails the whole call; its message starts with "jobs[i]: ".
  StatusOr<std::vector<Outcome>> SubmitAll(std::vector<Command> commands);
  // Each on its own, in one write: one result per command (the timers' batches, a worker's
  // finished jobs). With `then_claim`, one more result at the end: that claim, decided after
  // every command (in the same write), as JobStore::Claim answers it.
  std::vector<StatusOr<Outcome>> SubmitEach(std::vector<Command> commands,
                                            std::optional<ClaimRequest> then_claim = std::nullopt);
  // Leases the oldest pending job (of the given types) to the worker, exclusively.
  // Outcome.job is nullptr when none is pending.
  StatusOr<Outcome> Claim(const ClaimRequest& request);

  // A copy of a replicated log: applies a batch another instance wrote (through the writer
  // thread, in order with everything else): appends it to the local log with its source seq,
  // applies it to the projection and wakes waiters. The batch must start at LastSeq()+1 (an
  // empty batch only moves the source seq). kCorruption when it does not continue the log or an
  // event does not apply: the copy has diverged and must stop.
  Status ApplyReplicated(ReplicatedBatch batch);

  // ApplyReplicated without waiting: the batch is queued behind everything submitted before it
  // and Wait() returns its status. A copy catching up decodes the next batch meanwhile. Batches
  // submitted this way apply in submission order; a batch that overlaps what the log already
  // holds applies only the part it lacks.
  class PendingApply {
   public:
    PendingApply(PendingApply&&) noexcept = default;
    PendingApply& operator=(PendingApply&&) noexcept = default;
    Status Wait();  // blocks until the writer thread applied (or refused) the batch

   private:
    friend class JobStore;
    explicit PendingApply(std::shared_ptr<Request> request) : request_(std::move(request)) {}
    explicit PendingApply(Status refused) : refused_(std::move(refused)) {}
    std::shared_ptr<Request> request_;
    Status refused_ = Status::Ok();
  };
  PendingApply ApplyReplicatedAsync(ReplicatedBatch batch);

  // A copy that becomes the writer of a replicated log: every running job's lease starts a fresh
  // term (heartbeats extend leases without a log entry, so the old writer's extensions are not
  // in this copy), as at a restart. Runs on the writer thread; returns when done.
  void StartWriterTerm();

  // Called after every group commit that changed jobs, on the writer thread; keep it short.
  // It may be set or cleared at any time (a replicated copy applies batches from the moment it
  // joins); once this returns, the previous listener is not running and will not be called.
  void SetChangeListener(ChangeListener listener);

  // Writes a snapshot of the projection at its current seq (any thread).
  Status WriteSnapshot();

  // Expired jobs whose history is still in the log, oldest expiry first.
  std::vector<RetainedHistory> RetainedHistories() const;
  // Deletes the events of jobs that expired at or before `cutoff` (at most `max_jobs` of
  // them), moves the first retained seq forward, and compacts the freed range.
  // Returns the number of events deleted. (HistoryExpiredBefore, then DeleteHistoryExpiredThrough.)
  StatusOr<std::uint64_t> DeleteHistoryExpiredBefore(TimeMs cutoff, std::size_t max_jobs);
  // Retention in two steps, so that several copies of one replicated log delete the same history:
  //   - HistoryExpiredBefore names what the writer deletes: the seq of the job.expired event of
  //     the last of the (at most `max_jobs`) oldest retained histories that expired at or before
  //     `cutoff`; nullopt when none did.
  //   - DeleteHistoryExpiredThrough deletes the history of every job whose job.expired seq is
  //     `expired_seq` or lower, as DeleteHistoryExpiredBefore does. Every copy that applied the
  //     log up to `expired_seq` deletes exactly the same events (the retained list is derived
  //     from the log, in seq order). Idempotent: a second call for the same seq deletes nothing.
  std::optional<std::uint64_t> HistoryExpiredBefore(TimeMs cutoff, std::size_t max_jobs) const;
  StatusOr<std::uint64_t> DeleteHistoryExpiredThrough(std::uint64_t expired_seq);

  const JobProjection& projection() const { return projection_; }
  const ScheduleBook& schedules() const { return schedules_; }
  // Reads only: every write to the log goes through Submit and the writer thread.
  const eventlog::EventLog& log() const { return *log_; }
  // Compacts the log's RocksDB files (what retention does after deleting; benchmarks settle a
  // filled store with it). Changes no event.
  Status CompactLog() { return log_->CompactAll(); }
  const RecoveryInfo& recovery() const { return recovery_; }
  const StoreCounters& counters() const { return counters_; }
  // Requests waiting for the writer (tests: to know that submitted commands are queued).
  std::size_t TEST_QueuedRequests() const;
  Clock& clock() const { return *clock_; }
  const std::string& data_dir() const { return options_.data_dir; }
  // Whether the last write succeeded (for /readyz): false after an I/O error until a write works.
  bool writable() const { return writable_.load(std::memory_order_acquire); }

  // Wakes every long-poll and stream now, and makes later waits return at once (shutdown).
  void ReleaseWaiters() { projection_.Shutdown(); }

  // Stops accepting (later submits get kUnavailable), drains the queue, wakes every waiter, and
  // syncs and closes the log; returns what the final sync and close said. Idempotent. Reads of
  // the log are not possible afterwards.
  Status Close();

 private:
  class Batch;
  using Results = std::vector<StatusOr<Outcome>>;

  JobStore(StoreOptions options, std::unique_ptr<eventlog::EventLog> log);
  Status Recover();
  Results Enqueue(std::shared_ptr<Request> request);
  bool Push(const std::shared_ptr<Request>& request);  // false once the store is closing
  void WriterLoop();
  void CommitBatch(std::vector<std::shared_ptr<Request>>& requests);
  Status CommitReplicated(ReplicatedBatch& batch);
  Status RefreshLeases();  // StartWriterTerm's work, on the writer thread
  static bool IsAlone(const Request& r);
  // StoreOptions::commit_delay: waits for the next group's company, on the writer thread.
  void AwaitCompany() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_);
  // The most requests a delayed group waits for.
  static constexpr std::size_t kCommitDelayMaxGroup = 64;
  // A request of this many commands or more (a batch) is company enough and never waits.
  static constexpr std::size_t kCommitDelayBatch = 16;
  // A thread that submitted within this many delays counts as a writer that comes back.
  static constexpr int kCommitDelayMemory = 4;
  // Fewer threads than this lately: a group waits for as many as the last one held only (with
  // 8 callers, waiting for every one of them cost 1-6 %; bench/RESULTS.md).
  static constexpr std::size_t kCommitDelayCrowd = 12;
  // After a write or a replicated batch: the projection, schedules, retained list, listener.
  void Publish(std::vector<std::pair<std::string, JobPtr>> changes,
               std::vector<std::pair<std::string, SchedulePtr>> schedule_changes,
               StoreChanges summary, bool any_events);

  // Constant after construction.
  const StoreOptions options_;
  Clock* const clock_;
  std::unique_ptr<eventlog::EventLog> log_;  // Close() closes the log, never replaces it
  eventlog::LocalAppender local_appender_;
  eventlog::LogAppender* const appender_;    // options_.appender or &local_appender_
  // The newest event's time: on a replicated log a batch's time never goes back behind it
  // (another instance's clock after a failover). Writer thread only.
  TimeMs last_event_at_ = 0;

  JobProjection projection_;  // internally synchronized; written by the writer thread only
  ScheduleBook schedules_;    // the same
  RecoveryInfo recovery_;     // written once during Open
  StoreCounters counters_;
  std::atomic<bool> writable_{true};
  Mutex listener_mu_;  // held while the listener runs, so clearing it waits for a running call
  ChangeListener listener_ ABSL_GUARDED_BY(listener_mu_);  // called on the writer thread

  mutable Mutex retained_mu_;
  std::deque<RetainedHistory> retained_ ABSL_GUARDED_BY(retained_mu_);  // in expiry order
  Mutex retention_mu_;  // one history deletion at a time
  Mutex close_mu_;      // one Close() at a time

  mutable Mutex queue_mu_;
  CondVar queue_cv_;
  std::deque<std::shared_ptr<Request>> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool closing_ ABSL_GUARDED_BY(queue_mu_) = false;
  std::size_t wake_at_ ABSL_GUARDED_BY(queue_mu_) = 1;     // Push wakes the writer at this size
  std::size_t last_group_ ABSL_GUARDED_BY(queue_mu_) = 1;  // requests the last group took
  internal::RecentSubmitters recent_submitters_;  // writer thread only
  std::thread writer_;
};

}  // namespace jobstore
