// The offline tools: reports checked against a history written with known times, verify on
// stores corrupted on purpose, time travel, and a backup that opens again.
#include <gtest/gtest.h>

#include <sstream>

#include "jobstore/eventlog/format.h"
#include "jobstore/eventlog/record.h"
#include "jobstore/store/job_store.h"
#include "jobstore/tools/tools.h"
#include "support/raw_db.h"
#include "support/temp_dir.h"

namespace jobstore {
namespace {

using testing::TempDir;
constexpr TimeMs kT0 = 1'795'867'200'000;  // 2026-11-28T12:00:00Z
constexpr TimeMs kSec = 1000;

Command Cmd(std::string id, CommandBody body) { return Command{std::move(id), {}, {}, std::move(body)}; }

class ToolsTest : public ::testing::Test {
 protected:
  void OpenStore() {
    StoreOptions o;
    o.data_dir = dir_.Sub("data");
    o.clock = &clock_;
    store_ = std::move(JobStore::Open(o).value());
  }
  void Run(const std::string& id, CommandBody body, TimeMs at) {
    clock_.Set(at);
    auto out = store_->Submit(Cmd(id, std::move(body)));
    ASSERT_TRUE(out.ok()) << out.status().ToString();
  }
  void Create(const std::string& id, const std::string& type, TimeMs at) {
    CreateJob c;
    c.job_id = id;
    c.type = type;
    Run(id, c, at);
  }
  // A history with known times: four jobs of type "a" waiting 10, 20, 30, 40 s and running
  // 100 s; one of type "b" that asks a person twice (answered after 30 s, then timed out).
  void WriteKnownHistory() {
    OpenStore();
    for (int i = 0; i < 4; ++i) {
      std::string id = "a" + std::to_string(i);
      Create(id, "a", kT0);
      Run(id, StartJob{"w", 0}, kT0 + (i + 1) * 10 * kSec);
      Run(id, CompleteJob{}, kT0 + (i + 1) * 10 * kSec + 100 * kSec);
    }
    Create("b", "b", kT0);
    Run("b", StartJob{"w", 0}, kT0 + 5 * kSec);
    Run("b", RequestHitl{"approve", Json::object(), std::nullopt}, kT0 + 10 * kSec);
    Run("b", AnswerHitl{"h-1", true, {}}, kT0 + 40 * kSec);
    Run("b", RequestHitl{"clarify", Json::object(), 60}, kT0 + 50 * kSec);
    Run("b", TimeOutHitl{"h-2"}, kT0 + 110 * kSec);
    Create("stuck", "c", kT0 + 3600 * kSec);  // never started: stalled two hours later
    store_.reset();
  }
  std::unique_ptr<tools::ToolLog> Tool() {
    auto tl = tools::ToolLog::Open(dir_.Sub("data"));
    EXPECT_TRUE(tl.ok()) << tl.status().ToString();
    return std::move(tl).value();
  }
  // Finds the row of `table` whose first cells equal `keys`.
  static std::vector<Json> Row(const std::vector<ReportTable>& tables, const std::string& table,
                               std::vector<Json> keys) {
    for (const auto& t : tables) {
      if (t.name != table) continue;
      for (const auto& row : t.rows) {
        if (std::equal(keys.begin(), keys.end(), row.begin())) return row;
      }
    }
    ADD_FAILURE() << "no row in " << table;
    return {};
  }

  TempDir dir_;
  ManualClock clock_{kT0};
  std::unique_ptr<JobStore> store_;
};

TEST_F(ToolsTest, ReportsMatchAHistoryWithKnownTimes) {
  WriteKnownHistory();
  auto tl = Tool();
  auto a = tools::Replay(*tl, {});
  ASSERT_TRUE(a.ok());
  auto summary = a->Summary();
  EXPECT_EQ(Row(summary, "jobs_by_status", {"completed"})[1], 4);
  EXPECT_EQ(Row(summary, "jobs_by_status", {"failed"})[1], 1);
  EXPECT_EQ(Row(summary, "jobs_by_status", {"pending"})[1], 1);
  // durations of type a: queue waits 10/20/30/40 s -> p50 20, p90 40, max 40; runs all 100 s.
  auto d = a->Durations();
  EXPECT_EQ(Row(d, "durations_seconds", {"a", "queue_wait"}),
            (std::vector<Json>{"a", "queue_wait", 4, 20.0, 40.0, 40.0, 40.0}));
  EXPECT_EQ(Row(d, "durations_seconds", {"a", "run"})[3], 100.0);
  EXPECT_EQ(Row(d, "durations_seconds", {"a", "total"})[6], 140.0);
  auto h = a->Hitl();
  EXPECT_EQ(Row(h, "hitl_response_seconds", {"approve"}),
            (std::vector<Json>{"approve", 1, 1, 0, 30.0, 30.0, 30.0, 30.0}));
  EXPECT_EQ(Row(h, "hitl_response_seconds", {"clarify"})[3], 1);  // timed out
  EXPECT_EQ(Row(h, "hitl_rounds_per_job", {2})[1], 1);
  EXPECT_EQ(Row(h, "hitl_rounds_per_job", {0})[1], 5);
  auto tp = a->Throughput();
  EXPECT_EQ(Row(tp, "throughput_per_hour", {"2026-11-28T12:00:00.000Z"}),
            (std::vector<Json>{"2026-11-28T12:00:00.000Z", 5, 4, 1, 0}));
  EXPECT_EQ(Row(tp, "throughput_per_hour", {"2026-11-28T13:00:00.000Z"})[1], 1);
  auto stalled = a->Stalled(kT0 + 3 * 3600 * kSec, 3600 * kSec);
  ASSERT_EQ(stalled[0].rows.size(), 1u);
  EXPECT_EQ(stalled[0].rows[0][0], "stuck");
  EXPECT_EQ(stalled[0].rows[0][4], 7200);
  EXPECT_TRUE(a->Stalled(kT0 + 3600 * kSec + 10 * kSec, 3600 * kSec)[0].rows.empty());
}

TEST_F(ToolsTest, RetriesReportCountsRetriesOutcomesAndTimeToSuccess) {
  OpenStore();
  // "r": fails twice under its retry policy, then completes 60 s after creation.
  CreateJob c;
  c.job_id = "r";
  c.type = "flaky";
  c.retry = RetryPolicy{RetryPolicy::Backoff::kFixed, 1000, 1000, 0};
  Run("r", c, kT0);
  for (int i = 0; i < 2; ++i) {
    Run("r", StartJob{"w", 0}, kT0 + (10 + 20 * i) * kSec);
    Run("r", FailJob{{"x", "y"}}, kT0 + (11 + 20 * i) * kSec);
    Run("r", MakeDue{}, kT0 + (12 + 20 * i) * kSec);
  }
  Run("r", StartJob{"w", 0}, kT0 + 50 * kSec);
  Run("r", CompleteJob{}, kT0 + 60 * kSec);
  // "m": fails for good, is retried by hand, then completes.
  Create("m", "flaky", kT0);
  Run("m", StartJob{"w", 0}, kT0 + kSec);
  Run("m", FailJob{{"x", "y"}}, kT0 + 2 * kSec);
  Run("m", RetryJob{}, kT0 + 3 * kSec);
  Run("m", StartJob{"w", 0}, kT0 + 4 * kSec);
  Run("m", CompleteJob{}, kT0 + 5 * kSec);
  // "f": no retries, fails.
  Create("f", "flaky", kT0);
  Run("f", StartJob{"w", 0}, kT0 + kSec);
  Run("f", FailJob{{"x", "y"}}, kT0 + 2 * kSec);
  store_.reset();
  auto tl = Tool();
  auto a = tools::Replay(*tl, {});
  ASSERT_TRUE(a.ok());
  // type, jobs, retried, auto, manual, retried+completed, retried+failed, mean attempts, p50, p99
  EXPECT_EQ(Row(a->Retries(), "retries", {"flaky"}),
            (std::vector<Json>{"flaky", 3, 2, 2, 1, 2, 0, 2.5, 5.0, 60.0}));
  EXPECT_EQ(Row(a->Summary(), "jobs_by_status", {"completed"})[1], 2);
}

TEST_F(ToolsTest, ReplayUntilASeqOrATimeShowsTheWorldAsItWasThen) {
  WriteKnownHistory();
  auto tl = Tool();
  auto by_time = tools::Replay(*tl, {std::nullopt, kT0 + 45 * kSec});
  EXPECT_EQ(Row(by_time->Summary(), "jobs_by_status", {"running"})[1], 5);  // a0..a3 and b
  EXPECT_EQ(Row(by_time->Summary(), "jobs_by_status", {"completed"})[1], 0);
  auto by_seq = tools::Replay(*tl, {3, std::nullopt});
  EXPECT_EQ(by_seq->events(), 3u);
  EXPECT_EQ(Row(by_seq->Summary(), "jobs_by_status", {"completed"})[1], 1);
}

TEST_F(ToolsTest, RendersTablesCsvAndJson) {
  WriteKnownHistory();
  auto tl = Tool();
  auto a = tools::Replay(*tl, {});
  std::string csv = tools::RenderReports(a->Summary(), "csv");
  EXPECT_NE(csv.find("status,jobs\npending,1\n"), std::string::npos) << csv;
  Json json = Json::parse(tools::RenderReports(a->Summary(), "json"));
  EXPECT_EQ(json["jobs_by_status"][3]["status"], "completed");
  EXPECT_EQ(json["jobs_by_status"][3]["jobs"], 4);
  std::string table = tools::RenderReports(a->Summary(), "table");
  EXPECT_NE(table.find("completed               4"), std::string::npos) << table;
}

TEST_F(ToolsTest, VerifyIsCleanOnAHealthyStoreWithASnapshot) {
  WriteKnownHistory();
  OpenStore();
  ASSERT_TRUE(store_->WriteSnapshot().ok());
  Run("stuck", StartJob{"w", 30}, kT0 + 4000 * kSec);
  store_.reset();
  auto tl = Tool();
  std::ostringstream out;
  auto problems = tools::Verify(*tl, out);
  ASSERT_TRUE(problems.ok());
  EXPECT_TRUE(problems->empty()) << problems->front().what;
  EXPECT_NE(out.str().find("clean"), std::string::npos);
}

std::vector<tools::Problem> VerifyDir(const std::string& dir) {
  auto tl = tools::ToolLog::Open(dir);
  EXPECT_TRUE(tl.ok());
  std::ostringstream out;
  auto problems = tools::Verify(**tl, out);
  EXPECT_TRUE(problems.ok());
  return problems.ok() ? *problems : std::vector<tools::Problem>{};
}

bool Names(const std::vector<tools::Problem>& problems, std::uint64_t seq, const std::string& job,
           const std::string& words) {
  for (const auto& p : problems) {
    if (p.seq == seq && (job.empty() || p.job_id == job) && p.what.find(words) != std::string::npos) {
      return true;
    }
  }
  return false;
}

TEST_F(ToolsTest, VerifyFindsAFlippedByte) {
  WriteKnownHistory();
  {
    testing::RawDb raw(dir_.Sub("data"));
    std::string value;
    ASSERT_TRUE(raw.db()->Get({}, raw.events(), eventlog::SeqKey(5), &value).ok());
    value[value.size() - 3] ^= 0x20;
    ASSERT_TRUE(raw.db()->Put({}, raw.events(), eventlog::SeqKey(5), value).ok());
  }
  auto problems = VerifyDir(dir_.Sub("data"));
  EXPECT_TRUE(Names(problems, 5, "", "checksum")) << (problems.empty() ? "" : problems[0].what);
}

TEST_F(ToolsTest, VerifyFindsAMissingIndexEntry) {
  WriteKnownHistory();
  {
    testing::RawDb raw(dir_.Sub("data"));
    ASSERT_TRUE(raw.db()->Delete({}, raw.index(), eventlog::JobIndexKey("a1", 4)).ok());
  }
  auto problems = VerifyDir(dir_.Sub("data"));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_TRUE(Names(problems, 4, "", "missing from job_index"));
}

TEST_F(ToolsTest, VerifyFindsAVersionGapAndAnEventThatBreaksTheStateMachine) {
  WriteKnownHistory();
  {
    auto log = eventlog::EventLog::Open(dir_.Sub("data"));
    ASSERT_TRUE(log.ok());
    const std::uint64_t next = (*log)->LastSeq() + 1;
    // "stuck" is at version 1: a v3 event skips v2.
    Event gap{next, "stuck", 3, EventType::kUpdated, kT0, Json::object()};
    // a0 is completed: starting it again breaks the state machine.
    Event illegal{next + 1, "a0", 4, EventType::kStarted, kT0, {{"attempt", 2}, {"lease_seconds", 0}}};
    ASSERT_TRUE((*log)->TEST_Append({gap, illegal}).ok());
  }
  auto problems = VerifyDir(dir_.Sub("data"));
  EXPECT_TRUE(Names(problems, 20, "stuck", "expected version 2"));
  EXPECT_TRUE(Names(problems, 21, "a0", "not allowed while the job is completed"));
}

TEST_F(ToolsTest, BackupOpensAsAStoreAndVerifies) {
  WriteKnownHistory();
  OpenStore();  // the "server" keeps the log open and writing during the backup
  ASSERT_TRUE(store_->WriteSnapshot().ok());
  Run("stuck", StartJob{"w", 0}, kT0 + 4000 * kSec);
  auto info = tools::Backup(dir_.Sub("data"), dir_.Sub("copy"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->last_seq, store_->log().LastSeq());
  EXPECT_GT(info->snapshot_seq, 0u);
  EXPECT_EQ(info->stream_seq, 0u);  // an embedded log
  EXPECT_FALSE(tools::Backup(dir_.Sub("data"), dir_.Sub("copy")).ok());  // never overwrites
  Run("stuck", CompleteJob{}, kT0 + 4001 * kSec);  // after the backup: not in the copy
  EXPECT_TRUE(VerifyDir(dir_.Sub("copy")).empty());
  StoreOptions o;
  o.data_dir = dir_.Sub("copy");
  auto copy = JobStore::Open(o);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  EXPECT_EQ((*copy)->projection().Get("stuck")->status, JobStatus::kRunning);
  EXPECT_EQ((*copy)->projection().Size(), 6u);
  EXPECT_GT((*copy)->recovery().snapshot_seq, 0u);
}

TEST_F(ToolsTest, ToolsRefuseMissingAndForeignDirectories) {
  auto missing = tools::ToolLog::Open(dir_.Sub("nothing-here"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("does not exist"), std::string::npos);
  std::filesystem::create_directories(dir_.Sub("other"));
  auto foreign = tools::ToolLog::Open(dir_.Sub("other"));
  ASSERT_FALSE(foreign.ok());
  EXPECT_NE(foreign.status().message().find("not a jobstore data directory"), std::string::npos);
}

}  // namespace
}  // namespace jobstore
