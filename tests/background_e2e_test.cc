// Background work against the real server with 1-second values: leases, HITL timeouts, claims,
// compaction, retention and a restart with deadlines pending. Waits use the API's long-polls.
#include <gtest/gtest.h>

#include <thread>

#include "support/server_process.h"
#include "support/temp_dir.h"

namespace jobstore {
namespace {

using nlohmann::json;
using testing::Reply;
using testing::ServerProcess;
using testing::TempDir;

const std::vector<std::string> kFastTimers = {"--compaction-interval", "1s",
                                              "--history-retention", "1s"};

class BackgroundE2eTest : public ::testing::Test {
 protected:
  std::string Create(ServerProcess& s, json body = json::object()) {
    Reply r = s.Post("/api/v1/jobs", body);
    EXPECT_EQ(r.status, 201) << r.raw;
    return r.body.value("job_id", "");
  }
  // Long-polls the job until its version passes `after`.
  json WaitPast(ServerProcess& s, const std::string& id, int after) {
    return s.Get("/api/v1/jobs/" + id + "?wait=15&after_version=" + std::to_string(after)).body;
  }
  TempDir dir_;
};

TEST_F(BackgroundE2eTest, ExpiredLeaseReturnsTheJobToPendingForAnotherWorker) {
  ServerProcess s(dir_.Sub("data"), kFastTimers);
  std::string id = Create(s, {{"type", "etl"}});
  Reply claimed = s.Post("/api/v1/jobs/claim", {{"worker", "w1"}, {"lease_seconds", 1}});
  ASSERT_EQ(claimed.status, 200) << claimed.raw;
  EXPECT_EQ(claimed.body["job_id"], id);
  EXPECT_EQ(s.Post("/api/v1/jobs/claim", {{"worker", "w2"}}).status, 204);  // none left
  json after = WaitPast(s, id, 2);
  EXPECT_EQ(after["status"], "pending");
  EXPECT_EQ(s.Get("/api/v1/jobs/" + id + "/events").body["events"][2]["type"], "job.lease_expired");
  Reply again = s.Post("/api/v1/jobs/claim", {{"worker", "w2"}, {"types", {"etl"}}});
  EXPECT_EQ(again.body["worker"], "w2");
  EXPECT_EQ(again.body["attempt"], 2);
}

TEST_F(BackgroundE2eTest, HeartbeatWithProgressIsRecordedAndKeepsTheLease) {
  ServerProcess s(dir_.Sub("data"), kFastTimers);
  std::string id = Create(s);
  ASSERT_EQ(s.Post("/api/v1/jobs/" + id + "/start", {{"lease_seconds", 30}}).status, 200);
  Reply bare = s.Post("/api/v1/jobs/" + id + "/heartbeat", {{"lease_seconds", 60}});
  EXPECT_EQ(bare.status, 200);
  EXPECT_EQ(bare.body["version"], 2);  // no event without progress
  Reply with = s.Post("/api/v1/jobs/" + id + "/heartbeat", {{"progress", {{"percent", 30}}}});
  EXPECT_EQ(with.body["version"], 3);
  EXPECT_EQ(with.body["progress"]["percent"], 30);
  EXPECT_EQ(s.Get("/api/v1/jobs/" + id + "/events").body["events"][2]["type"], "job.heartbeat");
}

TEST_F(BackgroundE2eTest, HitlTimeoutAnswersTheWaitingWorkerWithAClearError) {
  ServerProcess s(dir_.Sub("data"), kFastTimers);
  std::string id = Create(s);
  s.Post("/api/v1/jobs/" + id + "/start");
  s.Post("/api/v1/jobs/" + id + "/hitl", {{"prompt", {{"q", "?"}}}, {"timeout_seconds", 1}});
  auto t0 = std::chrono::steady_clock::now();
  Reply waited = s.Get("/api/v1/jobs/" + id + "/hitl/response?wait=30");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_EQ(waited.status, 409) << waited.raw;
  EXPECT_NE(waited.raw.find("hitl_timeout"), std::string::npos) << waited.raw;
  json job = s.Get("/api/v1/jobs/" + id).body;
  EXPECT_EQ(job["status"], "failed");
  EXPECT_EQ(job["error"]["code"], "hitl_timeout");
}

TEST_F(BackgroundE2eTest, ClaimLongPollIsWokenByACreate) {
  ServerProcess s(dir_.Sub("data"), kFastTimers);
  Reply claimed;
  auto t0 = std::chrono::steady_clock::now();
  std::thread worker([&] {
    claimed = s.Post("/api/v1/jobs/claim?wait=30", {{"worker", "w"}, {"types", {"mail"}}});
  });
  EXPECT_TRUE(s.WaitForWaiters(1));
  Create(s, {{"type", "other"}});  // not of the claimed type: the claim keeps waiting
  std::string id = Create(s, {{"type", "mail"}});
  worker.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  ASSERT_EQ(claimed.status, 200) << claimed.raw;
  EXPECT_EQ(claimed.body["job_id"], id);
  EXPECT_EQ(claimed.body["status"], "running");
  EXPECT_FALSE(claimed.body["lease_expires_at"].is_null());  // the default 30 s lease
}

TEST_F(BackgroundE2eTest, CompactionExpiresAndRetentionTruncatesTheFeed) {
  ServerProcess s(dir_.Sub("data"), kFastTimers);
  std::string id = Create(s, {{"ttl_seconds", 1}});
  s.Post("/api/v1/jobs/" + id + "/cancel");
  Reply expired = s.Get("/api/v1/events?after=2&wait=15&type=job.expired");
  ASSERT_EQ(expired.body["events"].size(), 1u) << expired.raw;
  EXPECT_EQ(s.Get("/api/v1/jobs/" + id).status, 404);
  std::string keeper = Create(s);
  // Retention (1 s) deletes the expired job's three events at a later compaction.
  json stats;
  for (int i = 0; i < 100; ++i) {
    stats = s.Get("/api/v1/stats").body;
    if (stats["log"]["first_seq"] == 4) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(stats["log"]["first_seq"], 4);
  Reply truncated = s.Get("/api/v1/events?after=0");
  EXPECT_EQ(truncated.status, 410);
  EXPECT_EQ(truncated.body["error"]["code"], "truncated");
  EXPECT_EQ(truncated.body["first"], 4);
  Reply ok = s.Get("/api/v1/events?after=3");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body["events"][0]["job_id"], keeper);
  Reply metrics = s.Get("/metrics");
  EXPECT_NE(metrics.raw.find("jobstore_compaction_jobs_expired_total 1"), std::string::npos);
}

TEST_F(BackgroundE2eTest, RestartWithALeaseAndAHitlTimeoutPending) {
  std::string leased, asking;
  {
    ServerProcess s(dir_.Sub("data"), kFastTimers);
    leased = Create(s);
    s.Post("/api/v1/jobs/" + leased + "/start", {{"lease_seconds", 2}});
    asking = Create(s);
    s.Post("/api/v1/jobs/" + asking + "/start");
    s.Post("/api/v1/jobs/" + asking + "/hitl", {{"timeout_seconds", 1}});
    EXPECT_EQ(s.Terminate(), 0);
  }
  // Stay down past the HITL deadline (the real clock: this is the server's own time).
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  ServerProcess s(dir_.Sub("data"), kFastTimers);
  json h = WaitPast(s, asking, 3);
  EXPECT_EQ(h["status"], "failed");
  EXPECT_EQ(h["error"]["code"], "hitl_timeout");
  json l = s.Get("/api/v1/jobs/" + leased).body;
  EXPECT_EQ(l["status"], "running");  // a fresh lease term after the restart
  l = WaitPast(s, leased, 2);
  EXPECT_EQ(l["status"], "pending");
  bool snapshot_loaded = false;
  for (const auto& line : s.Lines()) {
    snapshot_loaded = snapshot_loaded || line.find("snapshot at seq 5") != std::string::npos;
  }
  EXPECT_TRUE(snapshot_loaded);  // written at the clean shutdown
}

}  // namespace
}  // namespace jobstore
