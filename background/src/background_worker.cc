#include "jobstore/core/log_fields.h"
#include "jobstore/background/background_worker.h"

#include <cmath>
#include <algorithm>
#include <chrono>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include "jobstore/core/schedule.h"
#include "jobstore/core/time_format.h"

namespace jobstore {

namespace asio = boost::asio;

namespace {
const char* DeadlineKindName(DeadlineKind kind) {
  switch (kind) {
    case DeadlineKind::kLease: return "lease";
    case DeadlineKind::kHitl: return "HITL timeout";
    case DeadlineKind::kExpiry: return "expiry";
    case DeadlineKind::kDue: return "run_at";
  }
  return "unknown";
}
// The deadlines the deadline timer fires on time (expiry waits for the compaction pass).
constexpr DeadlineKind kTimedKinds[] = {DeadlineKind::kLease, DeadlineKind::kHitl,
                                        DeadlineKind::kDue};
}  // namespace

// The two io_context threads and their timers. The deadline timer (on `io`) is armed for the
// earliest lease or HITL deadline; `armed_for` lets the writer's listener ask for a re-arm only
// when a change brings a deadline earlier than the one the timer waits for. Compaction and
// snapshots run on `work`, so that they never delay a deadline.
struct BackgroundWorker::Timers {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
  asio::steady_timer deadline{io};
  asio::io_context work;
  asio::executor_work_guard<asio::io_context::executor_type> work_guard{work.get_executor()};
  asio::steady_timer compaction{work};
  asio::steady_timer snapshot{work};
  std::atomic<TimeMs> armed_for{INT64_MAX};
  std::thread thread;
  std::thread work_thread;
  std::atomic<bool> started{false};
  std::uint64_t generation = 0;  // of the deadline timer's wait; io thread only
};

BackgroundWorker::BackgroundWorker(JobStore& store, BackgroundOptions options)
    : store_(store), options_(options), timers_(std::make_unique<Timers>()) {
  store_.projection().ForEach([&](const JobPtr& job) { deadlines_.Track(*job); });
  store_.SetChangeListener([this](const StoreChanges& c) { OnChanges(c); });
}

BackgroundWorker::~BackgroundWorker() {
  Stop();
  store_.SetChangeListener(nullptr);
}

void BackgroundWorker::OnChanges(const StoreChanges& changes) {
  for (const JobPtr& job : changes.live) deadlines_.Track(*job);
  for (const JobPtr& job : changes.expired) deadlines_.Forget(job->job_id);
  if (!timers_->started.load()) return;
  if (changes.schedules_changed) {  // a new or changed schedule: its next occurrence
    asio::post(timers_->io, [this] { ArmDeadlineTimer(); });
    return;
  }
  std::optional<TimeMs> next;
  for (DeadlineKind k : kTimedKinds) {
    auto due = deadlines_.NextDue(k);
    if (due && (!next || *due < *next)) next = due;
  }
  if (next && *next < timers_->armed_for.load()) {
    timers_->armed_for.store(*next);  // one wake-up per earlier deadline, not one per change
    asio::post(timers_->io, [this] { ArmDeadlineTimer(); });
  }
}

bool BackgroundWorker::PauseAfterCompactionBatch(std::chrono::steady_clock::duration took) const {
  using Duration = std::chrono::steady_clock::duration;
  const double duty = std::clamp(options_.compaction_duty_cycle, 0.05, 1.0);
  if (duty < 1.0) {
    auto pause = std::chrono::duration_cast<Duration>(took * (1.0 / duty - 1.0));
    const auto until = std::chrono::steady_clock::now() +
                       std::min<Duration>(pause, std::chrono::milliseconds(50));
    MutexLock lock(&pause_mu_);
    while (!stopping() && pause_cv_.WaitUntil(&pause_mu_, until)) {
    }
  }
  return !stopping();
}

std::size_t BackgroundWorker::FireKind(DeadlineKind kind, TimeMs now) {
  std::size_t written = 0;
  if (!is_writer()) return 0;  // the deadlines stay queued for when this instance writes
  for (;;) {
    const auto batch_start = std::chrono::steady_clock::now();
    auto due = deadlines_.PopDue(kind, now, options_.batch);
    if (due.empty()) return written;
    std::vector<Command> commands;
    for (const DueDeadline& d : due) {
      Command c{d.job_id, std::nullopt, std::nullopt, ExpireLease{}};
      if (kind == DeadlineKind::kHitl) {
        JobPtr job = store_.projection().Get(d.job_id);
        c.body = TimeOutHitl{job && job->hitl ? job->hitl->request_id : ""};
      } else if (kind == DeadlineKind::kExpiry) {
        c.body = ExpireJob{};
      } else if (kind == DeadlineKind::kDue) {
        c.body = MakeDue{};
      }
      commands.push_back(std::move(c));
    }
    auto results = store_.SubmitEach(std::move(commands));
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (results[i].ok()) {
        ++written;
        continue;
      }
      const Status& st = results[i].status();
      switch (st.code()) {
        case StatusCode::kUnavailable:  // the write failed (disk full, shutdown): retry in 1 s
          deadlines_.Retry({now + 1000, kind, due[i].job_id});
          break;
        case StatusCode::kNotFound:           // the job expired meanwhile
        case StatusCode::kInvalidTransition:  // it moved on (finished, answered, re-leased)
        case StatusCode::kStaleRequest:       // its HITL request is no longer the open one
          break;                              // the deadline went stale: nothing to do
        default: {  // a bug or damaged data: never silent
          LogFields fields({{"job_id", due[i].job_id}, {"deadline", DeadlineKindName(kind)}});
          spdlog::error("background: the {} deadline of job '{}' failed: {}",
                        DeadlineKindName(kind), due[i].job_id, st.ToString());
          MutexLock lock(&stats_mu_);
          ++stats_.errors;
        }
      }
    }
    if (due.size() < options_.batch) return written;
    if (kind == DeadlineKind::kExpiry &&
        !PauseAfterCompactionBatch(std::chrono::steady_clock::now() - batch_start)) {
      return written;  // stopping: the rest is still queued and expires at the next start
    }
  }
}

std::size_t BackgroundWorker::FireDue() {
  const TimeMs now = store_.clock().NowMs();
  std::size_t leases = FireKind(DeadlineKind::kLease, now);
  std::size_t hitl = FireKind(DeadlineKind::kHitl, now);
  std::size_t due = FireKind(DeadlineKind::kDue, now);
  std::size_t runs = FireSchedules(now);
  MutexLock lock(&stats_mu_);
  stats_.leases_expired += leases;
  stats_.hitl_timed_out += hitl;
  stats_.jobs_due += due;
  stats_.schedule_runs += runs;
  return leases + hitl + due + runs;
}

std::size_t BackgroundWorker::FireSchedules(TimeMs now) {
  std::size_t created = 0;
  if (!is_writer()) return 0;
  for (const SchedulePtr& s : store_.schedules().List()) {
    {
      MutexLock lock(&schedule_mu_);
      auto held = schedule_retry_at_.find(s->schedule_id);
      if (held != schedule_retry_at_.end() && held->second > now) continue;
    }
    const auto due = DueOccurrence(*s, now);
    if (!due) continue;
    const std::string job_id = OccurrenceJobId(s->schedule_id, *due);
    Status st;
    if (!options_.occurrence_job) {
      st = Unavailable("no occurrence builder is configured");
    } else if (auto create = options_.occurrence_job(*s, job_id, now); !create.ok()) {
      st = create.status();
    } else {
      create->job_id = job_id;
      if (!create->labels.contains("schedule")) create->labels["schedule"] = s->schedule_id;
      std::vector<Command> commands;
      commands.push_back({s->schedule_id, std::nullopt, std::nullopt, FireSchedule{*due, job_id}});
      commands.push_back({job_id, std::nullopt, std::nullopt, std::move(create).value()});
      st = store_.SubmitAll(std::move(commands)).status();
    }
    MutexLock lock(&schedule_mu_);
    if (st.ok()) {
      schedule_retry_at_.erase(s->schedule_id);
      ++created;
      continue;
    }
    // A write outage retries in a second; a schedule deleted meanwhile is stale; anything else
    // (the template no longer parses, the job id is taken) is logged and counted, and this
    // occurrence is given up: the schedule waits for its next one.
    if (st.code() == StatusCode::kUnavailable && options_.occurrence_job) {
      schedule_retry_at_[s->schedule_id] = now + 1000;
      continue;
    }
    if (st.code() == StatusCode::kNotFound) continue;
    // Changed (paused, say) or deleted between the read and the write: stale, not an error.
    if (SchedulePtr now_s = store_.schedules().Get(s->schedule_id);
        !now_s || now_s->version != s->version) {
      continue;
    }
    schedule_retry_at_[s->schedule_id] = NextOccurrence(*s, now).value_or(INT64_MAX);
    LogFields fields({{"schedule_id", s->schedule_id}});
    spdlog::error("background: schedule '{}' could not create its {} occurrence: {}",
                  s->schedule_id, FormatRfc3339(*due), st.ToString());
    MutexLock stats_lock(&stats_mu_);
    ++stats_.errors;
  }
  return created;
}

std::optional<TimeMs> BackgroundWorker::NextWakeUp() const {
  std::optional<TimeMs> next;
  for (DeadlineKind k : kTimedKinds) {
    auto due = deadlines_.NextDue(k);
    if (due && (!next || *due < *next)) next = due;
  }
  MutexLock lock(&schedule_mu_);
  for (const SchedulePtr& s : store_.schedules().List()) {
    auto at = NextFireTime(*s);
    if (!at) continue;
    if (auto held = schedule_retry_at_.find(s->schedule_id); held != schedule_retry_at_.end()) {
      at = std::max(*at, held->second);
    }
    if (!next || *at < *next) next = at;
  }
  return next;
}

StatusOr<CompactionReport> BackgroundWorker::Compact() {
  const auto start = std::chrono::steady_clock::now();
  CompactionReport report;
  report.at = store_.clock().NowMs();
  report.jobs_expired = FireKind(DeadlineKind::kExpiry, report.at);
  // Several instances: only the writer decides what history goes (see replicate_retention).
  const bool decides = !options_.replicate_retention || is_writer();
  if (options_.history_retention_ms && decides) {
    const TimeMs cutoff = report.at - *options_.history_retention_ms;
    for (;;) {
      const auto batch_start = std::chrono::steady_clock::now();
      const std::optional<std::uint64_t> through =
          store_.HistoryExpiredBefore(cutoff, options_.history_batch);
      if (!through) break;
      if (options_.replicate_retention) {
        if (Status marked = options_.replicate_retention(*through); !marked.ok()) {
          if (marked.code() == StatusCode::kUnavailable) {
            spdlog::info("compaction: history retention waits for the writer: {}", marked.message());
            break;
          }
          spdlog::error("compaction: the retention marker was not written: {}", marked.message());
          MutexLock lock(&stats_mu_);
          ++stats_.errors;
          return marked;
        }
      }
      auto deleted = store_.DeleteHistoryExpiredThrough(*through);
      if (!deleted.ok()) {
        spdlog::error("compaction: deleting expired history failed: {}", deleted.status().message());
        MutexLock lock(&stats_mu_);
        ++stats_.errors;
        return deleted.status();
      }
      report.events_deleted += *deleted;
      if (*deleted == 0) break;
      if (!PauseAfterCompactionBatch(std::chrono::steady_clock::now() - batch_start)) break;
    }
  }
  report.duration_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  LogFields fields({{"jobs_expired", report.jobs_expired},
                    {"events_deleted", report.events_deleted},
                    {"duration_ms", std::round(report.duration_ms * 1000) / 1000}});
  spdlog::info("compaction: expired {} jobs, deleted {} events of expired history in {:.1f} ms",
               report.jobs_expired, report.events_deleted, report.duration_ms);
  MutexLock lock(&stats_mu_);
  ++stats_.compactions;
  stats_.jobs_expired += report.jobs_expired;
  stats_.events_deleted += report.events_deleted;
  stats_.last_compaction = report;
  return report;
}

Status BackgroundWorker::Snapshot() {
  Status st = store_.WriteSnapshot();
  if (st.ok()) {
    MutexLock lock(&stats_mu_);
    ++stats_.snapshots;
  } else {
    spdlog::error("snapshot failed: {}", st.message());
    MutexLock lock(&stats_mu_);
    ++stats_.errors;
  }
  return st;
}

BackgroundStats BackgroundWorker::stats() const {
  MutexLock lock(&stats_mu_);
  BackgroundStats s = stats_;
  s.deadlines = deadlines_.Size();
  s.compaction_interval_ms = options_.compaction_interval_ms;
  return s;
}

void BackgroundWorker::ArmDeadlineTimer() {
  Timers& t = *timers_;
  FireDue();
  const std::optional<TimeMs> next = NextWakeUp();
  const TimeMs now = store_.clock().NowMs();
  TimeMs wait_ms = next ? std::max<TimeMs>(0, *next - now) : 60'000;
  if (!is_writer()) wait_ms = 1000;  // a follower looks again each second
  t.armed_for.store(now + wait_ms);
  // Re-arming cancels the previous wait; its handler sees an old generation and does nothing.
  const std::uint64_t generation = ++t.generation;
  t.deadline.expires_after(std::chrono::milliseconds(wait_ms));
  t.deadline.async_wait([this, generation](const boost::system::error_code&) {
    if (generation == timers_->generation) ArmDeadlineTimer();
  });
}

void BackgroundWorker::SchedulePeriodic(asio::steady_timer& timer, std::int64_t interval_ms,
                                        std::function<void()> work) {
  if (interval_ms <= 0) return;  // off
  timer.expires_after(std::chrono::milliseconds(interval_ms));
  timer.async_wait([this, &timer, interval_ms, work = std::move(work)](
                       const boost::system::error_code& ec) {
    if (ec) return;  // stopped
    work();
    SchedulePeriodic(timer, interval_ms, work);
  });
}

void BackgroundWorker::Start() {
  Timers& t = *timers_;
  if (t.started.exchange(true)) return;
  // Deadlines that fell due while the server was down fire now, on the deadline thread.
  asio::post(t.io, [this] { ArmDeadlineTimer(); });
  asio::post(t.work, [this] {
    (void)Compact();  // expiries that fell due meanwhile, on the work thread
    // Failures are logged where they happen; the next run tries again.
    SchedulePeriodic(timers_->compaction, options_.compaction_interval_ms,
                     [this] { (void)Compact(); });
    SchedulePeriodic(timers_->snapshot, options_.snapshot_interval_ms,
                     [this] { (void)Snapshot(); });
  });
  t.thread = std::thread([&t] { t.io.run(); });
  t.work_thread = std::thread([&t] { t.work.run(); });
}

void BackgroundWorker::Stop() {
  Timers& t = *timers_;
  if (!t.started.load() || !t.thread.joinable()) return;
  {
    MutexLock lock(&pause_mu_);
    stopping_.store(true, std::memory_order_release);
  }
  pause_cv_.SignalAll();
  t.io.stop();
  t.work.stop();
  t.thread.join();
  t.work_thread.join();
}

}  // namespace jobstore
