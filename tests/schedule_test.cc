// Recurring jobs: the crontab(5) parser and its next-time rule (time zones, DST), the schedule's
// Decide and Apply, and the background creating occurrences once each, across restarts.
#include <gtest/gtest.h>

#include "jobstore/background/background_worker.h"
#include "jobstore/core/cron.h"
#include "jobstore/core/schedule.h"
#include "jobstore/core/time_format.h"
#include "jobstore/store/job_store.h"
#include "support/temp_dir.h"

namespace jobstore {
namespace {

TimeMs At(const std::string& rfc3339) { return ParseRfc3339(rfc3339).value(); }
std::string Fmt(std::optional<TimeMs> t) { return t ? FormatRfc3339(*t) : "never"; }

// The next `n` firing times after `after`, as RFC 3339 UTC.
std::vector<std::string> Next(const std::string& cron, const std::string& zone,
                              const std::string& after, int n = 1) {
  auto s = CronSchedule::Parse(cron, zone);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return {};
  std::vector<std::string> out;
  std::optional<TimeMs> t = At(after);
  for (int i = 0; i < n && t; ++i) {
    t = s->NextAfter(*t);
    out.push_back(Fmt(t));
  }
  return out;
}

using V = std::vector<std::string>;

TEST(Cron, StepsRangesListsAndNames) {
  EXPECT_EQ(Next("*/15 * * * *", "UTC", "2026-12-01T10:07:30Z", 3),
            (V{"2026-12-01T10:15:00.000Z", "2026-12-01T10:30:00.000Z", "2026-12-01T10:45:00.000Z"}));
  // Weekdays at nine: Friday 10:00 -> Monday 09:00.
  EXPECT_EQ(Next("0 9 * * 1-5", "UTC", "2026-12-04T10:00:00Z"), (V{"2026-12-07T09:00:00.000Z"}));
  EXPECT_EQ(Next("0 9 * * mon-FRI", "UTC", "2026-12-04T10:00:00Z"), (V{"2026-12-07T09:00:00.000Z"}));
  EXPECT_EQ(Next("5 0 * 8 *", "UTC", "2026-12-01T00:00:00Z"), (V{"2027-08-01T00:05:00.000Z"}));
  EXPECT_EQ(Next("0 22 * * 1-5/2", "UTC", "2026-12-01T23:00:00Z", 2),  // Mon, Wed, Fri
            (V{"2026-12-02T22:00:00.000Z", "2026-12-04T22:00:00.000Z"}));
  EXPECT_EQ(Next("23 0-20/2 * * *", "UTC", "2026-12-01T00:30:00Z", 2),
            (V{"2026-12-01T02:23:00.000Z", "2026-12-01T04:23:00.000Z"}));
  EXPECT_EQ(Next("0 12 * jan,jul sun", "UTC", "2026-12-01T00:00:00Z"),
            (V{"2027-01-03T12:00:00.000Z"}));
  EXPECT_EQ(Next("10/20 * * * *", "UTC", "2026-12-01T00:00:00Z", 3),  // a/n: from a to the end
            (V{"2026-12-01T00:10:00.000Z", "2026-12-01T00:30:00.000Z", "2026-12-01T00:50:00.000Z"}));
  EXPECT_EQ(Next("0 0 * * 7", "UTC", "2026-12-01T00:00:00Z"), (V{"2026-12-06T00:00:00.000Z"}));
  EXPECT_EQ(Next("@daily", "UTC", "2026-12-01T00:00:00Z"), (V{"2026-12-02T00:00:00.000Z"}));
  EXPECT_EQ(Next("@hourly", "UTC", "2026-12-01T00:59:59Z"), (V{"2026-12-01T01:00:00.000Z"}));
  EXPECT_EQ(Next("@weekly", "UTC", "2026-12-01T00:00:00Z"), (V{"2026-12-06T00:00:00.000Z"}));
  EXPECT_EQ(Next("@yearly", "UTC", "2026-12-01T00:00:00Z"), (V{"2027-01-01T00:00:00.000Z"}));
  // Strictly after: a time on the minute is not its own next.
  EXPECT_EQ(Next("* * * * *", "UTC", "2026-12-01T00:00:00Z"), (V{"2026-12-01T00:01:00.000Z"}));
}

TEST(Cron, BothDayFieldsRestrictedMeansEitherAsCrontab5Says) {
  // "30 4 1,15 * 5": 4:30 on the 1st and the 15th, and every Friday.
  EXPECT_EQ(Next("30 4 1,15 * 5", "UTC", "2026-12-01T05:00:00Z", 4),
            (V{"2026-12-04T04:30:00.000Z", "2026-12-11T04:30:00.000Z", "2026-12-15T04:30:00.000Z",
               "2026-12-18T04:30:00.000Z"}));
  // Not "Friday the 13th": every Friday, and every 13th.
  EXPECT_EQ(Next("0 0 13 * 5", "UTC", "2026-01-01T00:00:00Z", 3),
            (V{"2026-01-02T00:00:00.000Z", "2026-01-09T00:00:00.000Z", "2026-01-13T00:00:00.000Z"}));
  // A field starting with '*' is unrestricted: then both must match ("*/2": odd days, and
  // Friday: the 11th; the 4th is a Friday but even).
  EXPECT_EQ(Next("0 0 */2 * 5", "UTC", "2026-12-01T00:00:00Z"), (V{"2026-12-11T00:00:00.000Z"}));
}

TEST(Cron, BadExpressionsNameTheProblem) {
  auto error = [](const std::string& cron, const std::string& zone = "UTC") {
    auto s = CronSchedule::Parse(cron, zone);
    EXPECT_FALSE(s.ok()) << cron;
    return s.ok() ? std::string() : s.status().message();
  };
  EXPECT_NE(error("60 * * * *").find("minute"), std::string::npos);
  EXPECT_NE(error("* 24 * * *").find("hour"), std::string::npos);
  EXPECT_NE(error("* * 0 * *").find("day-of-month"), std::string::npos);
  EXPECT_NE(error("* * * 13 *").find("month"), std::string::npos);
  EXPECT_NE(error("* * * * 8").find("day-of-week"), std::string::npos);
  EXPECT_NE(error("* * * *").find("five fields"), std::string::npos);
  EXPECT_NE(error("* * * * * *").find("five fields"), std::string::npos);
  EXPECT_NE(error("*/0 * * * *").find("step"), std::string::npos);
  EXPECT_NE(error("5-1 * * * *").find("backwards"), std::string::npos);
  EXPECT_NE(error("1,,2 * * * *").find("empty"), std::string::npos);
  EXPECT_NE(error("* * * foo *").find("month"), std::string::npos);
  EXPECT_NE(error("@reboot").find("macro"), std::string::npos);
  EXPECT_NE(error("* * * * *", "Mars/Olympus").find("time zone"), std::string::npos);
  auto never = CronSchedule::Parse("0 0 30 2 *", "UTC");
  ASSERT_TRUE(never.ok());
  EXPECT_FALSE(never->NextAfter(At("2026-01-01T00:00:00Z")));
}

TEST(Cron, TimeZonesAndDaylightSavingChanges) {
  // 09:00 in Berlin is 08:00 UTC in winter, 07:00 in summer.
  EXPECT_EQ(Next("0 9 * * *", "Europe/Berlin", "2026-12-01T00:00:00Z"),
            (V{"2026-12-01T08:00:00.000Z"}));
  EXPECT_EQ(Next("0 9 * * *", "Europe/Berlin", "2026-07-01T00:00:00Z"),
            (V{"2026-07-01T07:00:00.000Z"}));
  // Spring forward, 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC): 02:30 does not exist. A
  // fixed-hour schedule fires at the change, once; an every-hour one has no such hour.
  EXPECT_EQ(Next("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 2),
            (V{"2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"}));
  EXPECT_EQ(Next("30 * * * *", "Europe/Berlin", "2026-03-28T23:45:00Z", 2),  // 00:45 CET
            (V{"2026-03-29T00:30:00.000Z", "2026-03-29T01:30:00.000Z"}));  // 01:30 CET, 03:30 CEST
  // Fall back, 2026-10-25 03:00 CEST -> 02:00 CET (01:00 UTC): 02:30 happens twice. A fixed-hour
  // schedule fires once (the first); an every-hour one fires in both passes.
  EXPECT_EQ(Next("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 2),
            (V{"2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"}));
  EXPECT_EQ(Next("30 * * * *", "Europe/Berlin", "2026-10-24T23:45:00Z", 3),  // 01:45 CEST
            (V{"2026-10-25T00:30:00.000Z", "2026-10-25T01:30:00.000Z",   // 02:30 CEST, 02:30 CET
               "2026-10-25T02:30:00.000Z"}));                             // 03:30 CET
  EXPECT_EQ(Next("0 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 2),  // DST 03-08
            (V{"2026-03-08T07:00:00.000Z", "2026-03-09T06:00:00.000Z"}));
}

// ---- the schedule's Decide and Apply

constexpr TimeMs kT0 = 1'796'000'000'000;

Command SetCmd(SetSchedule set, std::optional<std::uint64_t> if_match = {}) {
  return Command{"nightly", if_match, std::nullopt, std::move(set)};
}

struct Folded {
  std::optional<Schedule> s;
  Status Run(const Command& c, TimeMs now) {
    auto events = DecideSchedule(s ? &*s : nullptr, c, now);
    if (!events.ok()) return events.status();
    for (const Event& e : *events) JOBSTORE_RETURN_IF_ERROR(ApplySchedule(s, e));
    return Status::Ok();
  }
};

TEST(ScheduleModel, CreateChangeFireDeleteAndTheRefusals) {
  Folded f;
  SetSchedule create{true, "0 2 * * *", "UTC", Json{{"type", "report"}}, std::nullopt};
  ASSERT_TRUE(f.Run(SetCmd(create), kT0).ok());
  EXPECT_EQ(f.s->version, 1u);
  EXPECT_EQ(f.s->set_at, kT0);
  EXPECT_EQ(f.Run(SetCmd(create), kT0).code(), StatusCode::kAlreadyExists);
  SetSchedule bad_cron{false, "0 25 * * *", std::nullopt, std::nullopt, std::nullopt};
  EXPECT_EQ(f.Run(SetCmd(bad_cron), kT0).code(), StatusCode::kInvalidArgument);
  SetSchedule never{false, "0 0 31 2 *", std::nullopt, std::nullopt, std::nullopt};
  EXPECT_EQ(f.Run(SetCmd(never), kT0).code(), StatusCode::kInvalidArgument);
  SetSchedule pause{false, std::nullopt, std::nullopt, std::nullopt, true};
  EXPECT_EQ(f.Run(SetCmd(pause, 7), kT0).code(), StatusCode::kVersionMismatch);
  ASSERT_TRUE(f.Run(SetCmd(pause, 1), kT0 + 1).ok());
  EXPECT_TRUE(f.s->paused);
  Schedule plain;
  plain.cron = "0 2 * * *";
  const TimeMs occurrence = NextOccurrence(plain, kT0).value();
  Command fire{"nightly", std::nullopt, std::nullopt, FireSchedule{occurrence, "nightly:x"}};
  EXPECT_EQ(f.Run(fire, occurrence).code(), StatusCode::kInvalidArgument);  // paused
  SetSchedule resume{false, std::nullopt, std::nullopt, std::nullopt, false};
  ASSERT_TRUE(f.Run(SetCmd(resume), kT0 + 2).ok());
  EXPECT_EQ(f.Run(fire, occurrence - 1).code(), StatusCode::kInvalidArgument);  // not due
  ASSERT_TRUE(f.Run(fire, occurrence).ok());
  EXPECT_EQ(f.s->last_occurrence, occurrence);
  EXPECT_EQ(f.s->last_job_id, "nightly:x");
  EXPECT_EQ(f.Run(fire, occurrence + 5).code(), StatusCode::kInvalidArgument);  // fired already
  Command del{"nightly", std::nullopt, std::nullopt, DeleteSchedule{}};
  ASSERT_TRUE(f.Run(del, kT0 + 3).ok());
  EXPECT_FALSE(f.s);
  EXPECT_EQ(f.Run(del, kT0 + 3).code(), StatusCode::kNotFound);
  EXPECT_EQ(OccurrenceJobId("nightly", At("2026-12-01T02:00:00Z")), "nightly:20261201T0200Z");
}

TEST(ScheduleModel, OnlyTheLatestMissedOccurrenceIsDueAndAChangeStartsAfresh) {
  Schedule s;
  s.cron = "*/10 * * * *";
  s.set_at = At("2026-12-01T00:00:00Z");
  EXPECT_FALSE(DueOccurrence(s, At("2026-12-01T00:09:59Z")));
  EXPECT_EQ(Fmt(DueOccurrence(s, At("2026-12-01T00:10:00Z"))), "2026-12-01T00:10:00.000Z");
  // Down for three days: only the latest occurrence is due.
  EXPECT_EQ(Fmt(DueOccurrence(s, At("2026-12-04T07:35:00Z"))), "2026-12-04T07:30:00.000Z");
  s.last_occurrence = At("2026-12-04T07:30:00Z");
  EXPECT_FALSE(DueOccurrence(s, At("2026-12-04T07:35:00Z")));
  EXPECT_EQ(Fmt(NextFireTime(s)), "2026-12-04T07:40:00.000Z");
  // A monthly schedule missed for months: the latest of them.
  Schedule monthly;
  monthly.cron = "0 0 1 * *";
  monthly.set_at = At("2026-01-15T00:00:00Z");
  EXPECT_EQ(Fmt(DueOccurrence(monthly, At("2026-06-20T00:00:00Z"))), "2026-06-01T00:00:00.000Z");
  monthly.paused = true;
  EXPECT_FALSE(DueOccurrence(monthly, At("2026-06-20T00:00:00Z")));
  EXPECT_FALSE(NextFireTime(monthly));
}

// ---- the background creates each occurrence once

class ScheduleRunsTest : public ::testing::Test {
 protected:
  void Open() {
    worker_.reset();
    store_.reset();
    StoreOptions o;
    o.data_dir = dir_.Sub("data");
    o.clock = &clock_;
    store_ = std::move(JobStore::Open(o).value());
    BackgroundOptions b;
    b.occurrence_job = [](const Schedule& s, const std::string& job_id, TimeMs) {
      CreateJob c;
      c.job_id = job_id;
      c.type = s.job.value("type", "default");
      if (s.job.value("broken", false)) return StatusOr<CreateJob>(InvalidArgument("bad template"));
      return StatusOr<CreateJob>(c);
    };
    worker_ = std::make_unique<BackgroundWorker>(*store_, b);
  }
  Status Set(SetSchedule set) {
    return store_->Submit(Command{"s", std::nullopt, std::nullopt, std::move(set)}).status();
  }
  std::vector<std::string> JobsOfSchedule() {
    ListQuery q;
    q.labels = {{"schedule", "s"}};
    q.limit = 1000;
    std::vector<std::string> ids;
    for (const JobPtr& j : store_->projection().List(q).jobs) ids.push_back(j->job_id);
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  testing::TempDir dir_;
  ManualClock clock_{At("2026-12-01T00:00:30Z")};
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<BackgroundWorker> worker_;
};

TEST_F(ScheduleRunsTest, EachOccurrenceCreatesOneJobAcrossRestartsAndDowntime) {
  Open();
  ASSERT_TRUE(Set({true, "*/5 * * * *", "UTC", Json{{"type", "tick"}}, std::nullopt}).ok());
  EXPECT_EQ(worker_->FireDue(), 0u);
  clock_.Set(At("2026-12-01T00:05:00Z"));
  EXPECT_EQ(worker_->FireDue(), 1u);
  EXPECT_EQ(worker_->FireDue(), 0u);  // once
  EXPECT_EQ(JobsOfSchedule(), (V{"s:20261201T0005Z"}));
  EXPECT_EQ(store_->projection().Get("s:20261201T0005Z")->type, "tick");
  Open();  // a restart re-reads the schedule with its last occurrence: nothing twice
  EXPECT_EQ(worker_->FireDue(), 0u);
  ASSERT_TRUE(store_->WriteSnapshot().ok());
  clock_.Set(At("2026-12-01T01:07:00Z"));  // down for an hour: only the latest runs
  Open();
  EXPECT_EQ(worker_->FireDue(), 1u);
  EXPECT_EQ(JobsOfSchedule(), (V{"s:20261201T0005Z", "s:20261201T0105Z"}));
  EXPECT_EQ(worker_->stats().schedule_runs, 1u);
  // Paused: nothing; resumed: occurrences start after the change.
  ASSERT_TRUE(Set({false, std::nullopt, std::nullopt, std::nullopt, true}).ok());
  clock_.Set(At("2026-12-01T01:20:00Z"));
  EXPECT_EQ(worker_->FireDue(), 0u);
  ASSERT_TRUE(Set({false, std::nullopt, std::nullopt, std::nullopt, false}).ok());
  EXPECT_EQ(worker_->FireDue(), 0u);  // 01:10 and 01:15 were missed while paused
  clock_.Set(At("2026-12-01T01:25:00Z"));
  EXPECT_EQ(worker_->FireDue(), 1u);
  auto schedule = store_->schedules().Get("s");
  EXPECT_EQ(schedule->last_job_id, "s:20261201T0125Z");
  // The feed has the schedule's events.
  std::vector<EventType> types;
  ASSERT_TRUE(store_->log().Scan(1, UINT64_MAX, [&](Event&& e) {
    if (IsScheduleEvent(e.type)) types.push_back(e.type);
    return true;
  }).ok());
  EXPECT_EQ(types, (std::vector<EventType>{EventType::kScheduleSet, EventType::kScheduleFired,
                                           EventType::kScheduleFired, EventType::kScheduleSet,
                                           EventType::kScheduleSet, EventType::kScheduleFired}));
}

TEST_F(ScheduleRunsTest, ATemplateThatFailsIsLoggedCountedAndSkippedNotSpun) {
  Open();
  ASSERT_TRUE(Set({true, "*/5 * * * *", "UTC", Json{{"broken", true}}, std::nullopt}).ok());
  clock_.Set(At("2026-12-01T00:05:00Z"));
  EXPECT_EQ(worker_->FireDue(), 0u);
  EXPECT_EQ(worker_->stats().errors, 1u);
  EXPECT_EQ(worker_->FireDue(), 0u);  // given up until the next occurrence
  EXPECT_EQ(worker_->stats().errors, 1u);
  EXPECT_TRUE(JobsOfSchedule().empty());
}

TEST_F(ScheduleRunsTest, ADeletedScheduleStopsAndSchedulesSurviveARestartFromASnapshot) {
  Open();
  ASSERT_TRUE(Set({true, "0 * * * *", "Europe/Berlin", Json::object(), std::nullopt}).ok());
  ASSERT_TRUE(store_->WriteSnapshot().ok());
  Open();
  auto s = store_->schedules().Get("s");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->time_zone, "Europe/Berlin");
  ASSERT_TRUE(
      store_->Submit(Command{"s", std::nullopt, std::nullopt, DeleteSchedule{}}).ok());
  clock_.Set(At("2026-12-01T03:00:00Z"));
  EXPECT_EQ(worker_->FireDue(), 0u);
  Open();
  EXPECT_EQ(store_->schedules().Size(), 0u);
}

}  // namespace
}  // namespace jobstore
