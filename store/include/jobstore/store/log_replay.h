// Startup replay: folds the log's events after a snapshot into the snapshot's jobs.
//
// Events of different jobs are independent, so the replay runs in partitions by job id: the
// calling thread reads and checks the records (RocksDB iteration, CRC) and hands each to its
// job's partition; one thread per partition parses the event's data and applies it. Every job's
// events stay in seq order, so the result is exactly that of a sequential replay
// (tests/store_test.cc compares them). The first failure in seq order is reported.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "jobstore/core/job.h"
#include "jobstore/core/status.h"
#include "jobstore/eventlog/event_log.h"
#include "jobstore/projections/schedule_book.h"
#include "jobstore/store/snapshot.h"

namespace jobstore {

struct ReplayedJobs {
  std::vector<std::shared_ptr<Job>> jobs;  // the live jobs, in creation order
  std::vector<RetainedHistory> expired;    // jobs expired by the replayed events, in seq order
  std::uint64_t events = 0;                // events folded in
};

// `jobs`: the snapshot's jobs in creation order (empty without a snapshot); `from_seq`: the first
// seq to replay. `partitions` 0 picks one per core (at most 4).
// Schedule events (core/schedule.h) are skipped: ReadSchedules folds them.
StatusOr<ReplayedJobs> ReplayLog(const eventlog::EventLog& log, std::uint64_t from_seq,
                                 std::vector<std::shared_ptr<Job>> jobs, unsigned partitions = 0);

// Every live schedule, folded from its whole history (read through the job index under
// "schedule/": schedules are few, and their events are never deleted by retention, so no
// snapshot needs to hold them). kCorruption naming the seq of an event that does not apply.
StatusOr<std::vector<SchedulePtr>> ReadSchedules(const eventlog::EventLog& log);

}  // namespace jobstore
