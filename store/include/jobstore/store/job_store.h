// The store service: the one write path of jobstore.
//
//   Submit(command) -> queued -> the writer thread decides it (in arrival order, against the
//   state that every earlier command leaves) -> its events join one RocksDB WriteBatch with every
//   other command that arrived meanwhile (group commit) -> one durable write -> Apply to the
//   projection -> waiters woken -> the caller gets the new job or the error.
//
// Nothing is applied or acknowledged before the write returns; if the write fails, every command
// of that batch fails with kUnavailable and the projection is unchanged.
//
// Thread-safety: every public method is safe from any thread. Lifetime: Close() (or the
// destructor) stops accepting, finishes the queued commands, wakes every waiter and closes the log.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "jobstore/core/clock.h"
#include "jobstore/core/command.h"
#include "jobstore/core/status.h"
#include "jobstore/eventlog/event_log.h"
#include "jobstore/projections/job_projection.h"

namespace jobstore {

struct StoreOptions {
  std::string data_dir = "./data";
  eventlog::LogOptions log;
  Clock* clock = nullptr;               // nullptr: the system clock
  std::size_t max_batch_commands = 4096;  // per group commit
};

// What a command produced.
struct Outcome {
  JobPtr job;                 // the job after the command (nullptr for a claim that found none)
  bool deduplicated = false;  // a create answered from its Idempotency-Key: no new job
};

struct ClaimRequest {
  std::string worker;
  std::vector<std::string> types;  // empty: any type
  std::int64_t lease_seconds = 30;
};

struct RecoveryInfo {
  std::uint64_t events_replayed = 0;
  std::uint64_t jobs_loaded = 0;
  double replay_ms = 0;
};

// Counters for metrics. Monotonic; read without locks.
struct StoreCounters {
  std::atomic<std::uint64_t> events_appended{0};
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> batch_commands{0};  // sum of commands over batches
  std::atomic<std::uint64_t> write_errors{0};
};

class JobStore {
 public:
  // Opens the log, replays it into a fresh projection, starts the writer. A record that fails
  // its checksum or an event that does not apply fails the open with a message naming its seq.
  static StatusOr<std::unique_ptr<JobStore>> Open(const StoreOptions& options);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // One command; blocks until it is durable and applied, or rejected.
  StatusOr<Outcome> Submit(Command command);
  // All or none, in one write: each command is decided against the state the earlier ones
  // leave. The first rejection fails the whole call; its message starts with "jobs[i]: ".
  StatusOr<std::vector<Outcome>> SubmitAll(std::vector<Command> commands);
  // Leases the oldest pending job (of the given types) to the worker, exclusively.
  // Outcome.job is nullptr when none is pending.
  StatusOr<Outcome> Claim(const ClaimRequest& request);

  const JobProjection& projection() const { return projection_; }
  eventlog::EventLog& log() { return *log_; }
  const RecoveryInfo& recovery() const { return recovery_; }
  const StoreCounters& counters() const { return counters_; }
  Clock& clock() const { return *clock_; }
  // Whether the last write succeeded (for /readyz): false after an I/O error until a write works.
  bool writable() const { return writable_.load(std::memory_order_acquire); }

  // Wakes every long-poll and stream now, and makes later waits return at once (shutdown).
  void ReleaseWaiters() { projection_.Shutdown(); }

  // Stops accepting (later submits get kUnavailable), drains the queue, wakes every waiter.
  void Close();

 private:
  struct Request;
  class Batch;

  JobStore(StoreOptions options, std::unique_ptr<eventlog::EventLog> log);
  Status Replay();
  StatusOr<std::vector<Outcome>> Enqueue(std::shared_ptr<Request> request);
  void WriterLoop();
  void CommitBatch(std::vector<std::shared_ptr<Request>>& requests);

  // Constant after construction.
  const StoreOptions options_;
  Clock* const clock_;
  std::unique_ptr<eventlog::EventLog> log_;

  JobProjection projection_;  // internally synchronized; written by the writer thread only
  RecoveryInfo recovery_;     // written once during Open
  StoreCounters counters_;
  std::atomic<bool> writable_{true};

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<std::shared_ptr<Request>> queue_;  // guarded by queue_mu_
  bool closing_ = false;                        // guarded by queue_mu_
  std::thread writer_;
};

}  // namespace jobstore
