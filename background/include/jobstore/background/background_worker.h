// The background work of a running store, on two Boost.Asio io_context threads:
//   - the deadline thread: lease expiries and HITL timeouts, fired as they fall due (a timer
//     armed for the earliest). It never runs long work, so a deadline fires late by the
//     milliseconds of its own write, not by the length of a compaction or a snapshot;
//   - the work thread: compaction every compaction interval (TTL expiry of finished jobs as
//     job.expired, then history retention: deleting expired jobs' events past the retention),
//     and projection snapshots every snapshot interval. Compaction works in batches, paced by
//     compaction_duty_cycle; Stop() interrupts the pacing and ends it between two batches.
// Everything it decides goes through JobStore::SubmitEach, the same write path as a request, so
// the log, replay and the feed see it.
//
// Time comes from the store's Clock. Tests use a ManualClock and call FireDue()/Compact()
// directly, without Start(). Thread-safety: FireDue may run beside Compact or Snapshot (the
// deadline queue and the store are thread-safe); each of the three runs one call at a time.
#pragma once

#include <atomic>
#include <functional>

#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <unordered_map>

#include "jobstore/background/deadline_queue.h"
#include "jobstore/core/mutex.h"
#include "jobstore/store/job_store.h"

namespace jobstore {

struct BackgroundOptions {
  std::int64_t compaction_interval_ms = 5 * 60 * 1000;
  std::optional<std::int64_t> history_retention_ms;  // nullopt: keep every event
  std::int64_t snapshot_interval_ms = 10 * 60 * 1000;  // 0: no periodic snapshots
  // Timer commands (lease and HITL expiries, job expiries) per group commit. Small, so a
  // client's write never waits behind a long one: with 64, create p99 while 100k jobs expired
  // reached 2.1x unloaded in one of three runs; with 16, at most 1.8x (bench/RESULTS.md).
  std::size_t batch = 16;
  // Expired jobs whose history one deletion round removes (off the writer; each round ends
  // with a RocksDB compaction, so rounds are larger than timer batches).
  std::size_t history_batch = 256;
  // While compaction has more batches to do, it pauses after each one so that it takes at most
  // this share of the time (1: no pauses). Clients' writes then keep most of the writer and the
  // CPU while 100k jobs expire; see bench/RESULTS.md.
  double compaction_duty_cycle = 0.5;
  // Builds the create of a schedule's occurrence from its template (the API's create body) and
  // the occurrence's job id; the server passes the API's own parser (http::ParseCreate). Unset:
  // schedules do not fire (and a start with schedules says so).
  std::function<StatusOr<CreateJob>(const Schedule& schedule, const std::string& job_id,
                                    TimeMs now)>
      occurrence_job;
  // Several instances on one replicated log (--nats): whether this instance is the writer now.
  // Only the writer fires deadlines and schedules and expires jobs; the others keep tracking
  // them (from the batches they apply) and look again every second, so a new writer acts on
  // what fell due within about a second of taking over. Unset: always (one instance).
  std::function<bool()> is_writer;
  // Several instances: history retention is the writer's alone. Before this copy deletes the
  // history of the jobs whose job.expired seq is at most `expired_seq`, the writer puts a
  // retention marker naming that seq in the replicated log, and every copy deletes the same
  // history when it applies the marker (replication/stream_tail.h). Not OK: nothing is deleted
  // this round (kUnavailable: this instance no longer writes). Unset: each deletion is local
  // (one instance).
  std::function<Status(std::uint64_t expired_seq)> replicate_retention;
};

struct CompactionReport {
  TimeMs at = 0;
  std::uint64_t jobs_expired = 0;
  std::uint64_t events_deleted = 0;
  double duration_ms = 0;
};

struct BackgroundStats {
  std::uint64_t compactions = 0;
  std::uint64_t jobs_expired = 0;
  std::uint64_t events_deleted = 0;
  std::uint64_t leases_expired = 0;
  std::uint64_t hitl_timed_out = 0;
  std::uint64_t jobs_due = 0;  // scheduled jobs made pending at their run_at
  std::uint64_t schedule_runs = 0;  // jobs created by schedules
  std::uint64_t snapshots = 0;
  // Timer writes that failed for a reason other than a stale deadline or a write outage, failed
  // history deletions and failed snapshots; each is also logged.
  std::uint64_t errors = 0;
  std::optional<CompactionReport> last_compaction;
  std::int64_t compaction_interval_ms = 0;
  std::size_t deadlines = 0;
};

class BackgroundWorker {
 public:
  // Tracks the deadlines of every job in the store's projection and listens for changes.
  BackgroundWorker(JobStore& store, BackgroundOptions options);
  ~BackgroundWorker();
  BackgroundWorker(const BackgroundWorker&) = delete;
  BackgroundWorker& operator=(const BackgroundWorker&) = delete;

  // Starts both threads: fires what fell due while the server was down, then runs the timers.
  void Start();
  // Stops the timers, ends a compaction under way after its current batch (what it wrote stays
  // written; the rest expires at the next start), and joins both threads (idempotent).
  void Stop();

  // Fires every lease expiry, HITL timeout, scheduled job's run_at and schedule occurrence due
  // now. Returns how many commands it wrote.
  std::size_t FireDue();
  // Expires finished jobs past their TTL, then applies history retention.
  StatusOr<CompactionReport> Compact();
  // Writes a projection snapshot.
  Status Snapshot();

  BackgroundStats stats() const;

 private:
  struct Timers;
  void OnChanges(const StoreChanges& changes);
  // The io thread's timers: the deadline timer, and the periodic compaction and snapshot.
  void ArmDeadlineTimer();
  void SchedulePeriodic(boost::asio::steady_timer& timer, std::int64_t interval_ms,
                        std::function<void()> work);
  std::size_t FireKind(DeadlineKind kind, TimeMs now);
  // Creates each schedule's due occurrence (core/schedule.h's catch-up rule), each with its
  // schedule.fired in one atomic write. Returns the jobs created.
  std::size_t FireSchedules(TimeMs now);
  // The earliest of the timed deadlines and the schedules' next occurrences.
  std::optional<TimeMs> NextWakeUp() const;
  // Sleeps so that a batch that took `took` is at most compaction_duty_cycle of the time; wakes
  // early on Stop(). False once stopping: the compaction ends there.
  bool PauseAfterCompactionBatch(std::chrono::steady_clock::duration took) const;
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  bool is_writer() const { return !options_.is_writer || options_.is_writer(); }

  JobStore& store_;
  const BackgroundOptions options_;
  DeadlineQueue deadlines_;
  std::unique_ptr<Timers> timers_;  // the io_context, its thread and timers

  // A schedule whose occurrence failed waits until then (its next occurrence, or a second after
  // a write outage), so the timer does not spin on it.
  mutable Mutex schedule_mu_;
  std::unordered_map<std::string, TimeMs> schedule_retry_at_ ABSL_GUARDED_BY(schedule_mu_);

  mutable Mutex stats_mu_;
  BackgroundStats stats_ ABSL_GUARDED_BY(stats_mu_);

  // Stop() sets it (holding pause_mu_, so a pause cannot miss it) and wakes a compaction's pause.
  std::atomic<bool> stopping_{false};
  mutable Mutex pause_mu_;
  mutable CondVar pause_cv_;
};

}  // namespace jobstore
