#include "jobstore/projections/analytics.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "jobstore/core/decide.h"
#include "jobstore/core/time_format.h"

namespace jobstore {
namespace {

double Seconds(TimeMs ms) { return static_cast<double>(ms) / static_cast<double>(kMsPerSecond); }

std::string StatusLabel(JobStatus s) { return std::string(JobStatusName(s)); }

// Rows of p50/p90/p99/max (seconds) of one sample set.
std::vector<Json> Distribution(std::vector<double> seconds) {
  if (seconds.empty()) return {0, nullptr, nullptr, nullptr, nullptr};
  double p50 = Percentile(seconds, 0.50), p90 = Percentile(seconds, 0.90),
         p99 = Percentile(seconds, 0.99);
  auto round3 = [](double v) { return std::round(v * 1000) / 1000; };
  return {seconds.size(), round3(p50), round3(p90), round3(p99), round3(seconds.back())};
}

}  // namespace

double Percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  std::size_t rank = static_cast<std::size_t>(std::ceil(p * values.size()));
  return values[std::clamp<std::size_t>(rank, 1, values.size()) - 1];
}

void AnalyticsProjection::Apply(const Event& e) {
  Fold(e.type, e.job_id, e.at, [&]() -> const Json& { return e.data; });
}

void AnalyticsProjection::Apply(const eventlog::RecordView& v) {
  Json parsed;
  Fold(v.type, v.job_id, v.at, [&]() -> const Json& {
    parsed = Json::parse(v.data_json.begin(), v.data_json.end(), nullptr, false);
    return parsed;
  });
}

template <typename Data>
void AnalyticsProjection::Fold(EventType type, std::string_view job_id, TimeMs at, Data&& data) {
  ++events_;
  last_event_at_ = std::max(last_event_at_.value_or(at), at);
  auto string_field = [](const Json& d, const char* key) {
    auto it = d.is_object() ? d.find(key) : d.end();
    return it != d.end() && it->is_string() ? it->template get<std::string>() : std::string();
  };
  if (type == EventType::kCreated) {
    Lifetime l;
    l.job_id = std::string(job_id);
    l.type = string_field(data(), "type");
    if (auto status = StatusAfter(JobStatus::kPending, type, data()); status.ok()) l.status = *status;
    l.created_at = at;
    l.last_event_at = at;
    live_[l.job_id] = jobs_.size();
    jobs_.push_back(std::move(l));
    return;
  }
  auto it = live_.find(std::string(job_id));
  if (it == live_.end()) return;  // history before the retained range
  Lifetime& l = jobs_[it->second];
  l.last_event_at = at;
  // Where the event leaves the job is core's table; only lease_expired needs its data for it.
  static const Json kNoData;
  auto next = StatusAfter(l.status, type, type == EventType::kLeaseExpired ? data() : kNoData);
  if (next.ok()) {
    if (IsTerminal(*next) && !IsTerminal(l.status)) l.finished_at = at;
    if (!IsTerminal(*next)) l.finished_at.reset();  // a manual retry reopens the job
    l.status = *next;
  }
  switch (type) {
    case EventType::kStarted:
      if (!l.started_at) l.started_at = at;
      ++l.attempts;
      break;
    case EventType::kRetryScheduled:
      ++l.auto_retries;
      break;
    case EventType::kRetried:
      ++l.manual_retries;
      break;
    case EventType::kLeaseExpired:
      if (next.ok() && !IsTerminal(*next)) ++l.auto_retries;
      break;
    case EventType::kHitlRequested: {
      HitlRound r;
      r.type = string_field(data(), "type");
      r.requested_at = at;
      l.rounds.push_back(std::move(r));
      break;
    }
    case EventType::kHitlAnswered:
      if (!l.rounds.empty()) l.rounds.back().answered_at = at;
      break;
    case EventType::kHitlTimedOut:
      if (!l.rounds.empty()) l.rounds.back().timed_out = true;
      break;
    case EventType::kExpired:
      l.expired = true;
      live_.erase(it);
      break;
    default:
      break;
  }
}

std::array<std::uint64_t, kJobStatusCount> AnalyticsProjection::LiveByStatus() const {
  std::array<std::uint64_t, kJobStatusCount> counts{};
  for (const Lifetime& l : jobs_) {
    if (!l.expired) ++counts[static_cast<int>(l.status)];
  }
  return counts;
}

std::uint64_t AnalyticsProjection::ExpiredJobs() const {
  std::uint64_t n = 0;
  for (const Lifetime& l : jobs_) n += l.expired;
  return n;
}

std::vector<ReportTable> AnalyticsProjection::Summary() const {
  std::map<std::string, std::array<std::uint64_t, kJobStatusCount + 1>> by_type;
  std::array<std::uint64_t, kJobStatusCount + 1> total{};
  for (const Lifetime& l : jobs_) {
    auto& row = by_type[l.type];
    ++row[static_cast<int>(l.status)];
    ++total[static_cast<int>(l.status)];
    if (l.expired) {
      ++row[kJobStatusCount];
      ++total[kJobStatusCount];
    }
  }
  ReportTable status{"jobs_by_status", {"status", "jobs"}, {}};
  for (int i = 0; i < kJobStatusCount; ++i) {
    status.rows.push_back({StatusLabel(static_cast<JobStatus>(i)), total[i]});
  }
  status.rows.push_back({"expired (of the above)", total[kJobStatusCount]});
  ReportTable types{"jobs_by_type", {"type", "jobs"}, {}};
  for (int i = 0; i < kJobStatusCount; ++i) types.columns.push_back(StatusLabel(static_cast<JobStatus>(i)));
  types.columns.push_back("expired");
  for (const auto& [type, counts] : by_type) {
    std::uint64_t n = 0;
    for (int i = 0; i < kJobStatusCount; ++i) n += counts[i];
    std::vector<Json> row = {type, n};
    for (auto c : counts) row.push_back(c);
    types.rows.push_back(std::move(row));
  }
  return {status, types};
}

std::vector<ReportTable> AnalyticsProjection::Durations() const {
  struct Samples {
    std::vector<double> queue, run, total;
  };
  std::map<std::string, Samples> by_type;
  for (const Lifetime& l : jobs_) {
    for (Samples* s : {&by_type[l.type], &by_type["(all types)"]}) {
      if (l.started_at) s->queue.push_back(Seconds(*l.started_at - l.created_at));
      if (l.started_at && l.finished_at) s->run.push_back(Seconds(*l.finished_at - *l.started_at));
      if (l.finished_at) s->total.push_back(Seconds(*l.finished_at - l.created_at));
    }
  }
  ReportTable t{"durations_seconds", {"type", "phase", "jobs", "p50", "p90", "p99", "max"}, {}};
  for (const auto& [type, s] : by_type) {
    for (const auto& [phase, values] : {std::pair{"queue_wait", &s.queue}, std::pair{"run", &s.run},
                                       std::pair{"total", &s.total}}) {
      std::vector<Json> row = {type, phase};
      for (Json& v : Distribution(*values)) row.push_back(std::move(v));
      t.rows.push_back(std::move(row));
    }
  }
  return {t};
}

std::vector<ReportTable> AnalyticsProjection::Retries() const {
  struct ByType {
    std::uint64_t jobs = 0, retried = 0, auto_retries = 0, manual_retries = 0;
    std::uint64_t retried_completed = 0, retried_failed = 0, attempts_of_completed = 0;
    std::vector<double> to_success;
  };
  std::map<std::string, ByType> by_type;
  for (const Lifetime& l : jobs_) {
    for (ByType* b : {&by_type[l.type], &by_type["(all types)"]}) {
      ++b->jobs;
      b->auto_retries += l.auto_retries;
      b->manual_retries += l.manual_retries;
      const bool retried = l.auto_retries + l.manual_retries > 0;
      b->retried += retried;
      if (l.status == JobStatus::kCompleted && l.finished_at) {
        b->to_success.push_back(Seconds(*l.finished_at - l.created_at));
        b->attempts_of_completed += l.attempts;
        b->retried_completed += retried;
      }
      if (l.status == JobStatus::kFailed) b->retried_failed += retried;
    }
  }
  ReportTable t{"retries",
                {"type", "jobs", "retried", "auto_retries", "manual_retries",
                 "retried_then_completed", "retried_then_failed", "mean_attempts_to_success",
                 "time_to_success_p50", "time_to_success_p99"},
                {}};
  for (auto& [type, b] : by_type) {
    const std::size_t completed = b.to_success.size();
    const double mean_attempts =
        completed ? static_cast<double>(b.attempts_of_completed) / static_cast<double>(completed)
                  : 0.0;
    std::vector<Json> dist = Distribution(b.to_success);  // jobs, p50, p90, p99, max
    t.rows.push_back({type, b.jobs, b.retried, b.auto_retries, b.manual_retries,
                      b.retried_completed, b.retried_failed, std::round(mean_attempts * 100) / 100,
                      dist[1], dist[3]});
  }
  return {t};
}

std::vector<ReportTable> AnalyticsProjection::Hitl() const {
  struct ByType {
    std::uint64_t rounds = 0, answered = 0, timed_out = 0;
    std::vector<double> response;
  };
  std::map<std::string, ByType> by_type;
  std::map<std::size_t, std::uint64_t> rounds_per_job;
  for (const Lifetime& l : jobs_) {
    ++rounds_per_job[l.rounds.size()];
    for (const HitlRound& r : l.rounds) {
      for (ByType* b : {&by_type[r.type], &by_type["(all types)"]}) {
        ++b->rounds;
        if (r.timed_out) ++b->timed_out;
        if (r.answered_at) {
          ++b->answered;
          b->response.push_back(Seconds(*r.answered_at - r.requested_at));
        }
      }
    }
  }
  ReportTable response{"hitl_response_seconds",
                       {"hitl_type", "rounds", "answered", "timed_out", "p50", "p90", "p99", "max"},
                       {}};
  for (const auto& [type, b] : by_type) {
    std::vector<Json> d = Distribution(b.response);
    response.rows.push_back({type, b.rounds, b.answered, b.timed_out, d[1], d[2], d[3], d[4]});
  }
  ReportTable rounds{"hitl_rounds_per_job", {"rounds", "jobs"}, {}};
  for (const auto& [n, jobs] : rounds_per_job) rounds.rows.push_back({n, jobs});
  return {response, rounds};
}

std::vector<ReportTable> AnalyticsProjection::Throughput() const {
  constexpr TimeMs kHour = 3600 * 1000;
  std::map<TimeMs, std::array<std::uint64_t, 4>> hours;
  auto bucket = [](TimeMs t) { return t - ((t % kHour) + kHour) % kHour; };
  for (const Lifetime& l : jobs_) {
    ++hours[bucket(l.created_at)][0];
    if (!l.finished_at) continue;
    int col = l.status == JobStatus::kCompleted ? 1 : l.status == JobStatus::kFailed ? 2 : 3;
    ++hours[bucket(*l.finished_at)][col];
  }
  ReportTable t{"throughput_per_hour", {"hour", "created", "completed", "failed", "cancelled"}, {}};
  for (const auto& [hour, c] : hours) t.rows.push_back({FormatRfc3339(hour), c[0], c[1], c[2], c[3]});
  return {t};
}

std::vector<ReportTable> AnalyticsProjection::Stalled(TimeMs now,
                                                      std::int64_t stalled_after_ms) const {
  ReportTable t{"stalled_jobs", {"job_id", "type", "status", "last_event_at", "idle_seconds"}, {}};
  for (const Lifetime& l : jobs_) {
    if (l.expired || IsTerminal(l.status)) continue;
    const std::int64_t idle = now - l.last_event_at;
    if (idle <= stalled_after_ms) continue;
    t.rows.push_back({l.job_id, l.type, StatusLabel(l.status), FormatRfc3339(l.last_event_at),
                      idle / 1000});
  }
  return {t};
}

}  // namespace jobstore
