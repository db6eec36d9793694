// core: the state machine, the JSON shapes, time and validation. Pure functions, no I/O.
#include <gtest/gtest.h>

#include <absl/time/time.h>

#include <map>
#include <random>
#include <thread>
#include <vector>

#include "jobstore/core/decide.h"
#include "jobstore/core/json_codec.h"
#include "jobstore/core/time_format.h"
#include "jobstore/core/validation.h"

namespace jobstore {
namespace {

constexpr TimeMs kT0 = 1'795'000'000'000;  // 2026-11-18T...

// Runs commands through Decide then Apply, as the writer does, with a seq counter.
class Lifecycle {
 public:
  Status Run(CommandBody body, TimeMs at = kT0, std::optional<std::uint64_t> if_match = {},
             std::optional<std::string> caller = {}) {
    Command c{"job-1", if_match, std::move(caller), std::move(body)};
    auto events = Decide(job_ ? &*job_ : nullptr, c, at);
    last_events_.clear();
    if (!events.ok()) return events.status();
    for (Event& e : *events) {
      e.seq = ++seq_;
      auto next = Apply(job_ ? &*job_ : nullptr, e);
      if (!next.ok()) return next.status();
      job_ = std::move(next).value();
      last_events_.push_back(e);
    }
    return Status::Ok();
  }
  const Job& job() const { return *job_; }
  const std::vector<Event>& last_events() const { return last_events_; }

 private:
  std::optional<Job> job_;
  std::vector<Event> last_events_;
  std::uint64_t seq_ = 0;
};

CreateJob Create() {
  CreateJob c;
  c.job_id = "job-1";
  c.type = "skill_creation";
  c.description = "Create a skill";
  c.input = {{"q", 1}};
  c.labels = {{"team", "ml"}};
  return c;
}

// Brings a fresh job to `status` through the real commands.
Lifecycle InStatus(JobStatus status) {
  Lifecycle l;
  if (status == JobStatus::kScheduled) {
    CreateJob c = Create();
    c.run_at = kT0 + 60'000;
    EXPECT_TRUE(l.Run(c).ok());
    EXPECT_EQ(l.job().status, status);
    return l;
  }
  EXPECT_TRUE(l.Run(Create()).ok());
  if (status == JobStatus::kPending) return l;
  if (status == JobStatus::kCancelled) {
    EXPECT_TRUE(l.Run(CancelJob{"no longer needed"}).ok());
    return l;
  }
  EXPECT_TRUE(l.Run(StartJob{"w1", 30}).ok());
  switch (status) {
    case JobStatus::kPendingHitl:
      EXPECT_TRUE(l.Run(RequestHitl{"clarify", {{"q", "which?"}}, 60}).ok());
      break;
    case JobStatus::kCompleted:
      EXPECT_TRUE(l.Run(CompleteJob{{{"ok", true}}}).ok());
      break;
    case JobStatus::kFailed:
      EXPECT_TRUE(l.Run(FailJob{{"boom", "it broke"}}).ok());
      break;
    default:
      break;
  }
  EXPECT_EQ(l.job().status, status);
  return l;
}

// The contract's state machine, written out independently of the implementation's table.
const std::map<std::string, std::set<JobStatus>> kAllowed = {
    {"update",
     {JobStatus::kPending, JobStatus::kScheduled, JobStatus::kRunning, JobStatus::kPendingHitl}},
    {"start", {JobStatus::kPending}},
    {"heartbeat", {JobStatus::kRunning}},
    {"hitl", {JobStatus::kRunning}},
    {"hitl_response", {JobStatus::kPendingHitl}},
    {"complete", {JobStatus::kRunning}},
    {"fail", {JobStatus::kRunning, JobStatus::kPendingHitl}},
    {"cancel",
     {JobStatus::kPending, JobStatus::kScheduled, JobStatus::kRunning, JobStatus::kPendingHitl}},
    {"retry", {JobStatus::kFailed, JobStatus::kCancelled}},
};

std::vector<CommandBody> ClientCommands() {
  return {UpdateJob{Json{{"percent", 5}}, std::nullopt, std::nullopt},
          StartJob{"w2", 10},
          Heartbeat{10, Json{{"percent", 50}}},
          RequestHitl{"clarify", Json::object(), std::nullopt},
          AnswerHitl{"h-1", Json{{"a", 1}}, std::string("alice")},
          CompleteJob{Json("done")},
          FailJob{{"x", "y"}},
          CancelJob{"stop"},
          RetryJob{}};
}

TEST(StateMachine, EveryStatusTimesEveryCommandFollowsTheContract) {
  const JobStatus all[] = {JobStatus::kPending,   JobStatus::kRunning, JobStatus::kPendingHitl,
                           JobStatus::kCompleted, JobStatus::kFailed,  JobStatus::kCancelled,
                           JobStatus::kScheduled};
  int checked = 0;
  for (JobStatus status : all) {
    for (const CommandBody& body : ClientCommands()) {
      Lifecycle l = InStatus(status);
      const std::uint64_t version_before = l.job().version;
      const std::string name(CommandName(body));
      Status st = l.Run(body);
      const bool allowed = kAllowed.at(name).count(status) > 0;
      SCOPED_TRACE(name + " from " + std::string(JobStatusName(status)));
      if (allowed) {
        EXPECT_TRUE(st.ok()) << st.ToString();
        EXPECT_EQ(l.job().version, version_before + 1);
      } else {
        EXPECT_EQ(st.code(), StatusCode::kInvalidTransition) << st.ToString();
        EXPECT_TRUE(l.last_events().empty());
        EXPECT_EQ(l.job().version, version_before);
        EXPECT_NE(st.message().find(JobStatusName(status)), std::string::npos);
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, kJobStatusCount * 9);
}

TEST(StateMachine, TerminalStatesChangeOnlyByARetry) {
  for (JobStatus s : {JobStatus::kCompleted, JobStatus::kFailed, JobStatus::kCancelled}) {
    Lifecycle l = InStatus(s);
    Job before = l.job();
    for (const CommandBody& body : ClientCommands()) {
      if (std::holds_alternative<RetryJob>(body)) continue;
      EXPECT_FALSE(l.Run(body).ok());
    }
    EXPECT_EQ(l.job(), before);
  }
}

// ---- retries, scheduled jobs, priorities (the queue features)

TEST(QueueFeatures, ScheduledJobIsNotClaimableUntilDueThenPending) {
  Lifecycle l = InStatus(JobStatus::kScheduled);
  EXPECT_EQ(l.job().run_at, kT0 + 60'000);
  EXPECT_EQ(l.Run(StartJob{"w", 30}).code(), StatusCode::kInvalidTransition);
  EXPECT_EQ(RunAtDeadline(l.job()), kT0 + 60'000);
  EXPECT_EQ(l.Run(MakeDue{}, kT0 + 59'999).code(), StatusCode::kInvalidArgument);  // not due
  ASSERT_TRUE(l.Run(MakeDue{}, kT0 + 60'000).ok());
  EXPECT_EQ(l.last_events()[0].type, EventType::kDue);
  EXPECT_EQ(l.job().status, JobStatus::kPending);
  EXPECT_FALSE(RunAtDeadline(l.job()));
  EXPECT_EQ(l.Run(MakeDue{}, kT0 + 60'000).code(), StatusCode::kInvalidTransition);
  ASSERT_TRUE(l.Run(StartJob{"w", 30}, kT0 + 61'000).ok());
}

CreateJob WithRetry(std::uint32_t max_attempts, RetryPolicy policy) {
  CreateJob c = Create();
  c.max_attempts = max_attempts;
  c.retry = policy;
  return c;
}

TEST(QueueFeatures, RetryableFailureSchedulesTheNextAttemptUntilAttemptsRunOut) {
  Lifecycle l;
  ASSERT_TRUE(l.Run(WithRetry(2, {RetryPolicy::Backoff::kFixed, 5000, 60'000, 0})).ok());
  ASSERT_TRUE(l.Run(StartJob{"w", 30}).ok());
  ASSERT_TRUE(l.Run(FailJob{{"flaky", "timeout upstream"}}, kT0 + 1000).ok());
  ASSERT_EQ(l.last_events()[0].type, EventType::kRetryScheduled);
  EXPECT_EQ(l.job().status, JobStatus::kScheduled);
  EXPECT_EQ(l.job().run_at, kT0 + 1000 + 5000);
  EXPECT_FALSE(l.job().worker);
  ASSERT_EQ(l.job().errors.size(), 1u);
  EXPECT_EQ(l.job().errors[0], (AttemptError{1, "flaky", "timeout upstream", kT0 + 1000}));
  ASSERT_TRUE(l.Run(MakeDue{}, kT0 + 6000).ok());
  ASSERT_TRUE(l.Run(StartJob{"w", 30}, kT0 + 7000).ok());
  EXPECT_EQ(l.job().attempt, 2u);
  // The last attempt: the failure is final.
  ASSERT_TRUE(l.Run(FailJob{{"flaky", "again"}}, kT0 + 8000).ok());
  EXPECT_EQ(l.last_events()[0].type, EventType::kFailed);
  EXPECT_EQ(l.job().status, JobStatus::kFailed);
  EXPECT_EQ(l.job().finished_at, kT0 + 8000);
  ASSERT_EQ(l.job().errors.size(), 2u);
  EXPECT_EQ(l.job().errors[1].attempt, 2u);
}

TEST(QueueFeatures, NonRetryableFailureOrNoPolicyFailsAtOnce) {
  Lifecycle with_policy;
  ASSERT_TRUE(with_policy.Run(WithRetry(5, RetryPolicy{})).ok());
  ASSERT_TRUE(with_policy.Run(StartJob{"w", 30}).ok());
  FailJob permanent{{"bad_input", "no"}};
  permanent.retryable = false;
  ASSERT_TRUE(with_policy.Run(permanent).ok());
  EXPECT_EQ(with_policy.job().status, JobStatus::kFailed);

  Lifecycle without = InStatus(JobStatus::kRunning);  // max_attempts 3, no retry policy
  ASSERT_TRUE(without.Run(FailJob{{"x", "y"}}).ok());
  EXPECT_EQ(without.job().status, JobStatus::kFailed);
}

TEST(QueueFeatures, FailureInHitlWithAPolicyIsRetriedToo) {
  Lifecycle l;
  ASSERT_TRUE(l.Run(WithRetry(3, RetryPolicy{})).ok());
  ASSERT_TRUE(l.Run(StartJob{"w", 30}).ok());
  ASSERT_TRUE(l.Run(RequestHitl{"clarify", Json::object(), std::nullopt}).ok());
  ASSERT_TRUE(l.Run(FailJob{{"x", "y"}}).ok());
  EXPECT_EQ(l.job().status, JobStatus::kScheduled);
}

TEST(QueueFeatures, ExpiredLeaseFollowsTheRetryPolicy) {
  Lifecycle l;
  ASSERT_TRUE(l.Run(WithRetry(2, {RetryPolicy::Backoff::kFixed, 10'000, 10'000, 0})).ok());
  ASSERT_TRUE(l.Run(StartJob{"w", 30}).ok());
  ASSERT_TRUE(l.Run(ExpireLease{}, kT0 + 30'000).ok());
  EXPECT_EQ(l.job().status, JobStatus::kScheduled);
  EXPECT_EQ(l.job().run_at, kT0 + 40'000);
  ASSERT_EQ(l.job().errors.size(), 1u);
  EXPECT_EQ(l.job().errors[0].code, "lease_expired");
  ASSERT_TRUE(l.Run(MakeDue{}, kT0 + 40'000).ok());
  ASSERT_TRUE(l.Run(StartJob{"w", 30}, kT0 + 40'000).ok());
  ASSERT_TRUE(l.Run(ExpireLease{}, kT0 + 70'000).ok());
  EXPECT_EQ(l.job().status, JobStatus::kFailed);
  EXPECT_EQ(l.job().errors.size(), 2u);
}

TEST(QueueFeatures, ManualRetryGivesANewBudgetAndKeepsTheErrors) {
  for (JobStatus from : {JobStatus::kFailed, JobStatus::kCancelled}) {
    Lifecycle l = InStatus(from);
    const std::size_t errors = l.job().errors.size();
    ASSERT_TRUE(l.Run(RetryJob{}, kT0 + 5000).ok());
    EXPECT_EQ(l.last_events()[0].type, EventType::kRetried);
    EXPECT_EQ(l.job().status, JobStatus::kPending);
    EXPECT_EQ(l.job().attempt, 0u);
    EXPECT_FALSE(l.job().error);
    EXPECT_FALSE(l.job().finished_at);
    EXPECT_FALSE(ExpiryDeadline(l.job()));  // no longer counting down its TTL
    EXPECT_EQ(l.job().run_at, kT0 + 5000);
    EXPECT_EQ(l.job().errors.size(), errors);
    ASSERT_TRUE(l.Run(StartJob{"w", 30}, kT0 + 6000).ok());
    EXPECT_EQ(l.job().attempt, 1u);
  }
  EXPECT_EQ(InStatus(JobStatus::kFailed).job().errors.size(), 1u);
  EXPECT_EQ(InStatus(JobStatus::kCompleted).Run(RetryJob{}).code(), StatusCode::kInvalidTransition);
}

TEST(QueueFeatures, PriorityChangesOnlyWhileTheJobWaits) {
  UpdateJob priority;
  priority.priority = 7;
  for (JobStatus s : {JobStatus::kPending, JobStatus::kScheduled}) {
    Lifecycle l = InStatus(s);
    ASSERT_TRUE(l.Run(priority).ok());
    EXPECT_EQ(l.job().priority, 7);
  }
  for (JobStatus s : {JobStatus::kRunning, JobStatus::kPendingHitl}) {
    Lifecycle l = InStatus(s);
    EXPECT_EQ(l.Run(priority).code(), StatusCode::kInvalidTransition);
  }
}

TEST(QueueFeatures, BackoffIsExponentialOrFixedCappedAndJitteredDeterministically) {
  RetryPolicy exp{RetryPolicy::Backoff::kExponential, 1000, 10'000, 0};
  EXPECT_EQ(RetryDelayMs(exp, "j", 1), 1000);
  EXPECT_EQ(RetryDelayMs(exp, "j", 2), 2000);
  EXPECT_EQ(RetryDelayMs(exp, "j", 4), 8000);
  EXPECT_EQ(RetryDelayMs(exp, "j", 5), 10'000);   // capped
  EXPECT_EQ(RetryDelayMs(exp, "j", 900), 10'000);  // no overflow
  RetryPolicy fixed{RetryPolicy::Backoff::kFixed, 3000, 60'000, 0};
  EXPECT_EQ(RetryDelayMs(fixed, "j", 1), 3000);
  EXPECT_EQ(RetryDelayMs(fixed, "j", 7), 3000);
  RetryPolicy jittered{RetryPolicy::Backoff::kFixed, 10'000, 10'000, 0.5};
  std::set<std::int64_t> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string id = "job-" + std::to_string(i);
    const std::int64_t d = RetryDelayMs(jittered, id, 1);
    EXPECT_GT(d, 5000);
    EXPECT_LE(d, 10'000);
    EXPECT_EQ(d, RetryDelayMs(jittered, id, 1));  // pure
    seen.insert(d);
  }
  EXPECT_GT(seen.size(), 150u);  // spread, not a constant
}

TEST(QueueFeatures, CreatedEventCarriesPriorityRunAtAndPolicyAndReplays) {
  Lifecycle l;
  CreateJob c = WithRetry(4, {RetryPolicy::Backoff::kFixed, 1500, 9000, 0.25});
  c.priority = -3;
  c.run_at = kT0 + 1;
  ASSERT_TRUE(l.Run(c).ok());
  const Event& created = l.last_events()[0];
  EXPECT_EQ(created.data["priority"], -3);
  EXPECT_EQ(created.data["run_at"], kT0 + 1);
  EXPECT_EQ(created.data["retry"]["backoff"], "fixed");
  auto replayed = Apply(nullptr, created);
  ASSERT_TRUE(replayed.ok());
  EXPECT_EQ(replayed->priority, -3);
  EXPECT_EQ(replayed->status, JobStatus::kScheduled);
  ASSERT_TRUE(replayed->retry);
  EXPECT_EQ(*replayed->retry, (RetryPolicy{RetryPolicy::Backoff::kFixed, 1500, 9000, 0.25}));
  EXPECT_EQ(replayed->max_attempts, 4u);
}

TEST(StateMachine, CreateOnLiveIdIsAlreadyExists) {
  Lifecycle l = InStatus(JobStatus::kPending);
  EXPECT_EQ(l.Run(Create()).code(), StatusCode::kAlreadyExists);
}

TEST(StateMachine, CommandOnMissingJobIsNotFound) {
  Lifecycle l;
  EXPECT_EQ(l.Run(StartJob{}).code(), StatusCode::kNotFound);
}

TEST(StateMachine, IfMatchMustBeTheCurrentVersion) {
  Lifecycle l = InStatus(JobStatus::kPending);
  EXPECT_EQ(l.Run(StartJob{}, kT0, 7).code(), StatusCode::kVersionMismatch);
  EXPECT_EQ(l.job().status, JobStatus::kPending);
  EXPECT_TRUE(l.Run(StartJob{}, kT0, 1).ok());
}

TEST(StateMachine, OwnerCheckAcceptsOwnerAndDefaultOwnedJobs) {
  Lifecycle l;
  CreateJob c = Create();
  c.user_id = "alice";
  ASSERT_TRUE(l.Run(c).ok());
  EXPECT_EQ(l.Run(CancelJob{}, kT0, {}, "bob").code(), StatusCode::kForbidden);
  EXPECT_TRUE(l.Run(CancelJob{}, kT0, {}, "alice").ok());

  Lifecycle d = InStatus(JobStatus::kPending);  // owned by "default"
  EXPECT_TRUE(d.Run(CancelJob{}, kT0, {}, "anyone").ok());
}

TEST(StateMachine, HitlRoundTripRecordsAnswerAndResumesRunning) {
  Lifecycle l = InStatus(JobStatus::kPendingHitl);
  EXPECT_EQ(l.job().hitl->request_id, "h-1");
  EXPECT_EQ(l.job().hitl->expires_at, kT0 + 60'000);
  EXPECT_FALSE(l.job().lease_expires_at.has_value());  // no lease while a person thinks
  EXPECT_EQ(l.Run(AnswerHitl{"h-9", 1, {}}).code(), StatusCode::kStaleRequest);
  ASSERT_TRUE(l.Run(AnswerHitl{"h-1", Json{{"formats", {"pdf"}}}, "alice"}, kT0 + 5000).ok());
  EXPECT_EQ(l.job().status, JobStatus::kRunning);
  EXPECT_EQ(l.job().hitl->responded_by, "alice");
  EXPECT_EQ(l.job().hitl->responded_at, kT0 + 5000);
  EXPECT_EQ(l.job().lease_expires_at, kT0 + 5000 + 30'000);  // the lease starts again
  ASSERT_TRUE(l.Run(RequestHitl{"approve", Json::object(), {}}).ok());
  EXPECT_EQ(l.job().hitl->request_id, "h-2");
}

TEST(StateMachine, HeartbeatWithoutProgressIsNoEvent) {
  Lifecycle l = InStatus(JobStatus::kRunning);
  ASSERT_TRUE(l.Run(Heartbeat{60, std::nullopt}).ok());
  EXPECT_TRUE(l.last_events().empty());
  Command heartbeat{l.job().job_id, std::nullopt, std::nullopt, Heartbeat{60, std::nullopt}};
  auto extended = ApplyUnrecorded(l.job(), heartbeat, kT0 + 1000);
  ASSERT_TRUE(extended.has_value());
  EXPECT_EQ(extended->lease_expires_at, kT0 + 61'000);
  EXPECT_EQ(extended->lease_seconds, 60);
  EXPECT_EQ(extended->version, l.job().version);
  // Other commands change nothing without an event.
  Command cancel{l.job().job_id, std::nullopt, std::nullopt, CancelJob{"x"}};
  EXPECT_FALSE(ApplyUnrecorded(l.job(), cancel, kT0 + 1000).has_value());
}

TEST(StateMachine, LeaseExpiryRequeuesThenFailsAfterMaxAttempts) {
  Lifecycle l;
  CreateJob c = Create();
  c.max_attempts = 2;
  ASSERT_TRUE(l.Run(c).ok());
  ASSERT_TRUE(l.Run(StartJob{"w", 10}).ok());
  EXPECT_EQ(l.Run(ExpireLease{}, kT0 + 9'999).code(), StatusCode::kInvalidArgument);  // not due
  ASSERT_TRUE(l.Run(ExpireLease{}, kT0 + 10'000).ok());
  EXPECT_EQ(l.job().status, JobStatus::kPending);
  ASSERT_TRUE(l.Run(StartJob{"w", 10}, kT0 + 20'000).ok());
  EXPECT_EQ(l.job().attempt, 2u);
  ASSERT_TRUE(l.Run(ExpireLease{}, kT0 + 30'000).ok());
  EXPECT_EQ(l.job().status, JobStatus::kFailed);
  EXPECT_EQ(l.job().error->code, "lease_expired");
}

TEST(StateMachine, HitlTimeoutFailsTheJob) {
  Lifecycle l = InStatus(JobStatus::kPendingHitl);
  EXPECT_FALSE(l.Run(TimeOutHitl{"h-1"}, kT0 + 59'999).ok());
  ASSERT_TRUE(l.Run(TimeOutHitl{"h-1"}, kT0 + 60'000).ok());
  EXPECT_EQ(l.job().status, JobStatus::kFailed);
  EXPECT_EQ(l.job().error->code, "hitl_timeout");
}

TEST(StateMachine, ExpiryOnlyAfterTtlOfFinishedJob) {
  Lifecycle l = InStatus(JobStatus::kCompleted);
  EXPECT_FALSE(l.Run(ExpireJob{}, kT0 + 3'599'999).ok());
  ASSERT_TRUE(l.Run(ExpireJob{}, kT0 + 3'600'000).ok());
  EXPECT_EQ(l.last_events().front().type, EventType::kExpired);
  Lifecycle live = InStatus(JobStatus::kRunning);
  EXPECT_EQ(live.Run(ExpireJob{}, kT0 + 99'999'999).code(), StatusCode::kInvalidTransition);
}

TEST(StateMachine, ReplayOfEventsRebuildsSameState) {
  Lifecycle l;
  std::vector<Event> all;
  auto run = [&](CommandBody b, TimeMs at) {
    ASSERT_TRUE(l.Run(std::move(b), at).ok());
    all.insert(all.end(), l.last_events().begin(), l.last_events().end());
  };
  run(Create(), kT0);
  run(UpdateJob{Json{{"percent", 10}}, Json{{"a", {{"b", 1}}}}, Json{{"env", "prod"}}}, kT0 + 1);
  run(StartJob{"w", 30}, kT0 + 2);
  run(RequestHitl{"clarify", {{"q", 1}}, 100}, kT0 + 3);
  run(AnswerHitl{"h-1", "yes", "bob"}, kT0 + 4);
  run(CompleteJob{{{"r", 1}}}, kT0 + 5);
  std::optional<Job> rebuilt;
  for (const Event& e : all) ASSERT_TRUE(ApplyInPlace(rebuilt, e).ok());
  EXPECT_EQ(*rebuilt, l.job());
  EXPECT_EQ(rebuilt->version, 6u);
  EXPECT_EQ(rebuilt->finished_at, kT0 + 5);
  EXPECT_EQ(rebuilt->labels, (Json{{"team", "ml"}, {"env", "prod"}}));
}

TEST(Apply, RejectsEventsThatBreakTheStateMachine) {
  Lifecycle l = InStatus(JobStatus::kCompleted);
  Event e{99, "job-1", l.job().version + 1, EventType::kStarted, kT0, {{"attempt", 1}, {"lease_seconds", 0}}};
  EXPECT_EQ(Apply(&l.job(), e).status().code(), StatusCode::kCorruption);
  Event gap{99, "job-1", l.job().version + 2, EventType::kUpdated, kT0, Json::object()};
  EXPECT_EQ(Apply(&l.job(), gap).status().code(), StatusCode::kCorruption);
  Event orphan{1, "job-2", 2, EventType::kUpdated, kT0, Json::object()};
  EXPECT_EQ(Apply(nullptr, orphan).status().code(), StatusCode::kCorruption);
  Event missing{1, "job-3", 1, EventType::kCreated, kT0, Json::object()};
  EXPECT_EQ(Apply(nullptr, missing).status().code(), StatusCode::kCorruption);
}

// RFC 7396 section 3 examples, applied through job.updated.
TEST(MergePatch, Rfc7396Examples) {
  struct Case {
    Json target, patch, result;
  };
  const std::vector<Case> cases = {
      {{{"a", "b"}}, {{"a", "c"}}, {{"a", "c"}}},
      {{{"a", "b"}}, {{"b", "c"}}, {{"a", "b"}, {"b", "c"}}},
      {{{"a", "b"}}, {{"a", nullptr}}, Json::object()},
      {{{"a", "b"}, {"b", "c"}}, {{"a", nullptr}}, {{"b", "c"}}},
      {{{"a", {"b"}}}, {{"a", "c"}}, {{"a", "c"}}},
      {{{"a", "c"}}, {{"a", {"b"}}}, {{"a", {"b"}}}},
      {{{"a", {{"b", "c"}}}}, {{"a", {{"b", "d"}, {"c", nullptr}}}}, {{"a", {{"b", "d"}}}}},
      {{{"a", {{{"b", "c"}}}}}, {{"a", {1}}}, {{"a", {1}}}},
      {{{"e", nullptr}}, {{"a", 1}}, {{"e", nullptr}, {"a", 1}}},
      {Json::object(), {{"a", {{"bb", {{"ccc", nullptr}}}}}}, {{"a", {{"bb", Json::object()}}}}},
  };
  for (const auto& c : cases) {
    Lifecycle l = InStatus(JobStatus::kPending);
    ASSERT_TRUE(l.Run(UpdateJob{std::nullopt, c.target, std::nullopt}).ok());
    Job base = l.job();
    // Start from exactly `target`: the first patch merged into {} (nulls dropped), so set it.
    base.data = c.target;
    Event e{0, "job-1", base.version + 1, EventType::kUpdated, kT0, {{"data", c.patch}}};
    auto next = Apply(&base, e);
    ASSERT_TRUE(next.ok());
    EXPECT_EQ(next->data, c.result) << c.patch.dump();
  }
}

TEST(JsonCodec, JobHasEveryFieldOfTheContract) {
  Lifecycle l = InStatus(JobStatus::kPendingHitl);
  Json j = JobToJson(l.job());
  for (const char* key :
       {"job_id", "type", "status", "user_id", "description", "input", "data", "labels",
        "progress", "hitl", "result", "error", "worker", "lease_expires_at", "attempt",
        "max_attempts", "version", "created_at", "updated_at", "started_at", "finished_at",
        "ttl_seconds"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j["status"], "pending_hitl");
  EXPECT_EQ(j["hitl"]["request_id"], "h-1");
  EXPECT_TRUE(j["hitl"]["response"].is_null());
  EXPECT_EQ(j["created_at"], FormatRfc3339(kT0));
  EXPECT_TRUE(j["finished_at"].is_null());
}

TEST(JsonCodec, EventRoundTrips) {
  Event e{1042, "job-1", 3, EventType::kHitlRequested, kT0 + 123, {{"request_id", "h-1"}}};
  Json j = EventToJson(e);
  EXPECT_EQ(j["type"], "job.hitl_requested");
  auto back = EventFromJson(j);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, e);
  EXPECT_FALSE(EventFromJson(Json{{"seq", 1}}).ok());
}

TEST(Time, FormatsRfc3339WithMillisecondsUtc) {
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(1'795'867'200'123), "2026-11-28T12:00:00.123Z");
  EXPECT_EQ(FormatRfc3339(951'782'400'000), "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(-1), "1969-12-31T23:59:59.999Z");
}

TEST(Time, ParsesWhatItFormatsAndOffsets) {
  for (TimeMs t : {TimeMs{0}, TimeMs{1'795'867'200'123}, TimeMs{951'782'400'000}}) {
    auto back = ParseRfc3339(FormatRfc3339(t));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, t);
  }
  EXPECT_EQ(*ParseRfc3339("2026-11-28T13:00:00+01:00"), 1'795'867'200'000);
  EXPECT_EQ(*ParseRfc3339("2026-11-28 12:00:00.1234Z"), 1'795'867'200'123);
  for (const char* bad : {"", "2026-11-28", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
                          "2026-11-28T12:00:00", "2026-11-28T12:00:00Zjunk", "2026-11-28T25:00:00Z",
                          // outside 0000..9999 once the offset is applied (fuzz_time_parsing)
                          "9999-12-31T23:59:59.999-00:30", "0000-01-01T00:00:00+01:00"}) {
    EXPECT_FALSE(ParseRfc3339(bad).ok()) << bad;
  }
}

TEST(JobJsonText, IsTheRenderingOfThisVersionNeverAnEarlierOne) {
  CreateJob create;
  create.job_id = "j";
  create.input = {{"text", "héllo"}};
  std::optional<Job> job;
  ASSERT_TRUE(ApplyInPlace(job, Decide(nullptr, {"j", {}, {}, create}, 1)->front()).ok());
  const std::string v1 = JobJsonText(*job);
  EXPECT_EQ(v1, JobToJson(*job).dump());
  EXPECT_EQ(&JobJsonText(*job), &JobJsonText(*job));  // rendered once, then cached

  // Apply copies: the new version renders itself, the old one keeps its text.
  auto started = Decide(&*job, {"j", {}, {}, StartJob{"w", 30}}, 2);
  Job next = *Apply(&*job, started->front());
  EXPECT_EQ(JobJsonText(next), JobToJson(next).dump());
  EXPECT_NE(JobJsonText(next), v1);
  EXPECT_EQ(JobJsonText(*job), v1);

  // A copy starts without the cache; ApplyInPlace drops it before changing the value.
  Job copy = *job;
  copy.description = "changed after copying";
  EXPECT_NE(JobJsonText(copy).find("changed after copying"), std::string::npos);
  ASSERT_TRUE(ApplyInPlace(job, started->front()).ok());
  EXPECT_EQ(JobJsonText(*job), JobToJson(*job).dump());
  Job rendered = *job, fresh = *job;
  (void)JobJsonText(rendered);
  EXPECT_EQ(rendered, fresh);  // equality ignores the cache
}

TEST(JobJsonText, ConcurrentFirstReadersAllGetTheSameText) {
  CreateJob create;
  create.job_id = "j";
  std::optional<Job> job;
  ASSERT_TRUE(ApplyInPlace(job, Decide(nullptr, {"j", {}, {}, create}, 1)->front()).ok());
  const std::string expected = JobToJson(*job).dump();
  std::vector<std::thread> readers;
  std::vector<std::string> seen(8);
  for (int i = 0; i < 8; ++i) readers.emplace_back([&, i] { seen[i] = JobJsonText(*job); });
  for (auto& r : readers) r.join();
  for (const auto& s : seen) EXPECT_EQ(s, expected);
}

// JobJsonText writes the text itself (job_json_text.cc); it must give JobToJson's dump byte for
// byte. Random jobs over every field's shapes: absent and present optionals, text that needs
// escaping or is not UTF-8 at all, instants before 1970 and in year 9999, extreme numbers.
// The string writer the API's answers share (job texts, the finish results).
TEST(JobJsonText, AppendsAStringAsNlohmannDumpsIt) {
  for (const std::string& s :
       {std::string(""), std::string("job-1"), std::string("with \"quotes\""), std::string("back\\slash"),
        std::string("tab\tnew\nline"), std::string("nul\0x", 5), std::string("\x1f\x7f"),
        std::string("héllo ✓"), std::string("\xff\xfe not utf-8"), std::string("cut \xe2\x82")}) {
    std::string out = "prefix";
    AppendJsonString(&out, s);
    EXPECT_EQ(out, "prefix" + Json(s).dump(-1, ' ', false, Json::error_handler_t::replace)) << s;
  }
}

TEST(JobJsonText, WritesExactlyWhatJobToJsonDumps) {
  std::mt19937_64 rng(20261207);
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  const std::vector<std::string> texts = {
      "", "plain", "with \"quotes\"", "back\\slash", "tab\tnew\nline", std::string("nul\0x", 5),
      "\x1f\x7f", "héllo wörld ✓", "\xff\xfe not utf-8", "cut \xe2\x82", "😀 emoji", "</script>"};
  const std::vector<Json> values = {
      Json(), Json::object(), Json::array(), Json{{"text", "héllo"}, {"n", 3}},
      Json{{"z", 1}, {"a", Json::array({1.5, -2, true, nullptr})}}, Json("\xc3\x28 bad"),
      Json(18446744073709551615ull), Json(-9223372036854775807ll - 1), Json(0.1),
      Json{{"nested", {{"deeper", {{"k", "v\n"}}}}}}, Json(false)};
  const std::vector<TimeMs> times = {0, 1, -1, 1'795'867'200'123, -62'135'596'800'000,
                                     253'402'300'799'999, 999, -999, 86'400'000};
  auto text = [&] { return texts[pick(texts.size())]; };
  auto value = [&] { return values[pick(values.size())]; };
  auto time = [&] { return times[pick(times.size())]; };
  auto maybe_time = [&]() -> std::optional<TimeMs> {
    if (pick(2)) return std::nullopt;
    return time();
  };
  for (int i = 0; i < 2000; ++i) {
    Job job;
    job.job_id = text();
    job.type = text();
    job.status = static_cast<JobStatus>(pick(kJobStatusCount));
    job.user_id = text();
    job.description = text();
    job.input = value();
    job.data = value();
    job.labels = pick(2) ? Json{{text(), text()}} : Json::object();
    job.progress = value();
    if (pick(3) == 0) {
      HitlRequest h{"h-" + std::to_string(i), text(), value(), time(), maybe_time(),
                    value(), maybe_time(), std::nullopt, std::nullopt};
      if (pick(2)) h.responded_by = text();
      if (pick(2)) h.key = text();
      job.hitl = std::move(h);
    }
    job.result = value();
    if (pick(3) == 0) job.error = JobError{text(), text()};
    if (pick(2)) job.worker = text();
    job.lease_expires_at = maybe_time();
    job.attempt = static_cast<std::uint32_t>(rng());
    job.max_attempts = static_cast<std::uint32_t>(pick(5));
    job.version = pick(2) ? rng() : pick(10);
    job.created_at = time();
    job.updated_at = time();
    job.started_at = maybe_time();
    job.finished_at = maybe_time();
    job.ttl_seconds = pick(2) ? static_cast<std::int64_t>(rng()) : 86'400;
    job.priority = static_cast<std::int32_t>(pick(2001)) - 1000;
    job.run_at = maybe_time();
    if (pick(3) == 0) {
      job.retry = RetryPolicy{pick(2) ? RetryPolicy::Backoff::kFixed
                                      : RetryPolicy::Backoff::kExponential,
                              static_cast<std::int64_t>(pick(100'000)), 600'000, 0.2};
    }
    for (std::size_t e = pick(3); e > 0; --e) {
      job.errors.push_back({static_cast<std::uint32_t>(pick(9)), text(), text(), time()});
    }
    ASSERT_EQ(JobJsonText(job), JobToJson(job).dump(-1, ' ', false, Json::error_handler_t::replace))
        << "job " << i;
  }
}

// AppendRfc3339 prints by hand; Abseil's formatter is the reference for years 0000..9999 (outside
// them, where the API accepts no instant, it prints as printf would).
TEST(Time, FormatRfc3339MatchesAbseil) {
  std::mt19937_64 rng(7);
  auto reference = [](TimeMs t) {
    return absl::FormatTime("%E4Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(t),
                            absl::UTCTimeZone());
  };
  constexpr TimeMs kYear0 = -62'167'219'200'000;      // 0000-01-01T00:00:00.000Z
  constexpr TimeMs kYear10000 = 253'402'300'800'000;  // 10000-01-01T00:00:00.000Z
  EXPECT_EQ(FormatRfc3339(1'795'867'200'123), "2026-11-28T12:00:00.123Z");
  EXPECT_EQ(FormatRfc3339(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatRfc3339(kYear0), "0000-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(kYear10000 - 1), "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatRfc3339(kYear10000), "10000-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(kYear0 - 1), "-001-12-31T23:59:59.999Z");
  for (int i = 0; i < 20000; ++i) {
    const auto span = static_cast<std::uint64_t>(kYear10000 - kYear0);
    const TimeMs t = kYear0 + static_cast<TimeMs>(rng() % span);
    ASSERT_EQ(FormatRfc3339(t), reference(t)) << t;
  }
}

TEST(Time, ParsesDurations) {
  EXPECT_EQ(*ParseDurationMs("500ms"), 500);
  EXPECT_EQ(*ParseDurationMs("90s"), 90'000);
  EXPECT_EQ(*ParseDurationMs("5m"), 300'000);
  EXPECT_EQ(*ParseDurationMs("1h"), 3'600'000);
  EXPECT_EQ(*ParseDurationMs("7d"), 604'800'000);
  EXPECT_EQ(*ParseDurationMs("30"), 30'000);
  for (const char* bad : {"", "-5s", "5x", "s", "1.5h", "99999999999999999999d",
                          "9223372036854776s", "9223372036854775808ms"}) {
    EXPECT_FALSE(ParseDurationMs(bad).ok()) << bad;
  }
  // Found by fuzz_time_parsing: the digits were capped at INT64_MAX / 1000 whatever the unit, so
  // a duration accepted in seconds was refused when written in milliseconds.
  EXPECT_EQ(*ParseDurationMs("57975579979963"), 57'975'579'979'963'000);
  EXPECT_EQ(*ParseDurationMs("57975579979963000ms"), 57'975'579'979'963'000);
  EXPECT_EQ(*ParseDurationMs("9223372036854775807ms"), 9'223'372'036'854'775'807);
}

TEST(Validation, JobIds) {
  EXPECT_TRUE(ValidateJobId("order-42.v1:retry_2").ok());
  EXPECT_TRUE(ValidateJobId(std::string(128, 'a')).ok());
  EXPECT_FALSE(ValidateJobId(std::string(129, 'a')).ok());
  EXPECT_FALSE(ValidateJobId("").ok());
  EXPECT_FALSE(ValidateJobId("a/b").ok());
  EXPECT_FALSE(ValidateJobId("batch").ok());
  EXPECT_FALSE(ValidateJobId("claim").ok());
}

TEST(Validation, LabelsAndProgress) {
  Limits limits;
  EXPECT_TRUE(ValidateLabels({{"team", "ml"}}, limits, false).ok());
  EXPECT_FALSE(ValidateLabels({{"team", 1}}, limits, false).ok());
  EXPECT_FALSE(ValidateLabels({{"team", nullptr}}, limits, false).ok());
  EXPECT_TRUE(ValidateLabels({{"team", nullptr}}, limits, true).ok());
  EXPECT_FALSE(ValidateLabels({{"a:b", "c"}}, limits, false).ok());
  EXPECT_FALSE(ValidateLabels(Json::array(), limits, false).ok());
  Json many = Json::object();
  for (int i = 0; i < 65; ++i) many["k" + std::to_string(i)] = "v";
  EXPECT_FALSE(ValidateLabels(many, limits, false).ok());
  EXPECT_TRUE(ValidateProgress({{"percent", 40.5}, {"phase", "x"}}).ok());
  EXPECT_FALSE(ValidateProgress({{"percent", 140}}).ok());
  EXPECT_FALSE(ValidateProgress({{"phase", 3}}).ok());
  EXPECT_EQ(JsonDepth(Json::parse("[[[1]]]")), 3u);
}

StatusOr<int> HalfOf(int n) {
  if (n % 2) return InvalidArgument("odd");
  return n / 2;
}

Status QuarterOf(int n, int* out) {
  JOBSTORE_ASSIGN_OR_RETURN(int half, HalfOf(n));
  JOBSTORE_ASSIGN_OR_RETURN(*out, HalfOf(half));
  return Status::Ok();
}

TEST(StatusOr, AnOkStatusWithoutAValueBecomesAnInternalError) {
  StatusOr<int> v = Status::Ok();
  EXPECT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInternal);
}

TEST(StatusOr, ValueOfAnErrorAbortsWithItsMessageInEveryBuild) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // re-executes: safe beside other threads
  StatusOr<int> v = InvalidArgument("the reason");
  EXPECT_DEATH((void)v.value(), "the reason");
}

TEST(StatusOr, AssignOrReturnAssignsOrReturnsTheError) {
  int quarter = 0;
  EXPECT_TRUE(QuarterOf(8, &quarter).ok());
  EXPECT_EQ(quarter, 2);
  EXPECT_EQ(QuarterOf(6, &quarter).code(), StatusCode::kInvalidArgument);  // 3 is odd
  EXPECT_EQ(quarter, 2);
}

}  // namespace
}  // namespace jobstore
