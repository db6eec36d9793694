// The analytics projection behind `jobstore replay`: folds the log into one record per job
// lifetime (expired ones included, as long as their history is retained) and computes the
// reports analysts ask for: summary, durations, HITL, throughput, stalled jobs.
//
// Pure: it reads only the events (their `at` times), never a clock; `now` for the stalled report
// is given by the caller. Not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "jobstore/core/event.h"
#include "jobstore/eventlog/record.h"

namespace jobstore {

// A report as a table: named columns, rows of JSON scalars (rendered as table, CSV or JSON).
struct ReportTable {
  std::string name;
  std::vector<std::string> columns;
  std::vector<std::vector<Json>> rows;
};

class AnalyticsProjection {
 public:
  void Apply(const Event& event);
  // The same from a record view: parses the data of the few event types that need it.
  void Apply(const eventlog::RecordView& view);

  std::vector<ReportTable> Summary() const;
  std::vector<ReportTable> Durations() const;
  std::vector<ReportTable> Hitl() const;
  // Per type: jobs that needed more than one attempt, retries (automatic: a retryable failure
  // or an expired lease with attempts left; manual: POST /retry), how the retried jobs ended,
  // and the time from creation to completion of the completed ones.
  std::vector<ReportTable> Retries() const;
  std::vector<ReportTable> Throughput() const;
  // Jobs not finished whose last event is older than `stalled_after_ms` at `now`.
  std::vector<ReportTable> Stalled(TimeMs now, std::int64_t stalled_after_ms) const;

  // Jobs not expired, by status; and jobs expired whose history is still in the log.
  std::array<std::uint64_t, kJobStatusCount> LiveByStatus() const;
  std::uint64_t ExpiredJobs() const;

  std::uint64_t events() const { return events_; }
  std::optional<TimeMs> last_event_at() const { return last_event_at_; }

 private:
  struct HitlRound {
    std::string type;
    TimeMs requested_at = 0;
    std::optional<TimeMs> answered_at;
    bool timed_out = false;
  };
  struct Lifetime {
    std::string job_id;
    std::string type;
    JobStatus status = JobStatus::kPending;
    bool expired = false;
    TimeMs created_at = 0;
    std::optional<TimeMs> started_at;  // the first start
    std::optional<TimeMs> finished_at;
    TimeMs last_event_at = 0;
    std::vector<HitlRound> rounds;
    std::uint32_t attempts = 0;        // starts
    std::uint32_t auto_retries = 0;    // retry_scheduled, and lease expiries that requeued
    std::uint32_t manual_retries = 0;  // job.retried
  };

  // `data` yields the event's data; it is called only for the types that read it.
  template <typename Data>
  void Fold(EventType type, std::string_view job_id, TimeMs at, Data&& data);

  std::vector<Lifetime> jobs_;                          // in creation order
  std::unordered_map<std::string, std::size_t> live_;  // job_id -> its current lifetime
  std::uint64_t events_ = 0;
  std::optional<TimeMs> last_event_at_;
};

// Nearest-rank percentile (p in [0, 1]) of `values`, which it sorts. 0 when empty.
double Percentile(std::vector<double>& values, double p);

}  // namespace jobstore
