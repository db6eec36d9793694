// The queue features over real HTTP against the real server: retry policies, manual retry,
// scheduled jobs, priorities. The state machine's every transition is core_test's; the timers'
// exact due times are background_test's (with a ManualClock). Here: the contract's shapes, its
// refusals, and what a client sees end to end, with real (short) waits where the server's own
// clock must pass.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support/server_process.h"
#include "support/temp_dir.h"

namespace jobstore {
namespace {

using nlohmann::json;
using testing::Reply;
using testing::ServerProcess;
using testing::TempDir;

class HttpQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(dir_.Sub("data"));
    ASSERT_TRUE(server_->started());
  }
  ServerProcess& s() { return *server_; }
  json Create(json body) {
    Reply r = s().Post("/api/v1/jobs", body);
    EXPECT_EQ(r.status, 201) << r.raw;
    return r.body;
  }
  json Claim(const std::string& query = "") {
    Reply r = s().Post("/api/v1/jobs/claim" + query, {{"worker", "w"}});
    EXPECT_TRUE(r.status == 200 || r.status == 204) << r.raw;
    return r.status == 200 ? r.body : json();
  }
  static void ExpectError(const Reply& r, int status, const std::string& code,
                          const std::string& names = "") {
    EXPECT_EQ(r.status, status) << r.raw;
    EXPECT_EQ(r.body["error"]["code"], code) << r.raw;
    if (!names.empty()) {
      EXPECT_NE(r.body["error"]["message"].get<std::string>().find(names), std::string::npos)
          << r.raw;
    }
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(HttpQueueTest, NewFieldsHaveDefaultsAndBadOnesAreRefusedWithoutAWrite) {
  json plain = Create(json::object());
  EXPECT_EQ(plain["priority"], 0);
  EXPECT_TRUE(plain["run_at"].is_null());
  EXPECT_TRUE(plain["retry"].is_null());
  EXPECT_EQ(plain["errors"], json::array());

  auto bad = [&](json body, const std::string& names) {
    ExpectError(s().Post("/api/v1/jobs", body), 400, "invalid_argument", names);
  };
  bad({{"priority", 1001}}, "priority");
  bad({{"priority", "high"}}, "priority");
  bad({{"run_at", "tomorrow"}}, "run_at");
  bad({{"delay_seconds", -1}}, "delay_seconds");
  bad({{"run_at", "2030-01-01T00:00:00Z"}, {"delay_seconds", 5}}, "not both");
  bad({{"run_at", "2999-01-01T00:00:00Z"}}, "run_at");
  bad({{"retry", {{"backoff", "linear"}}}}, "backoff");
  bad({{"retry", {{"jitter", 2}}}}, "jitter");
  bad({{"retry", {{"initial_seconds", 10}, {"max_seconds", 5}}}}, "max_seconds");
  bad({{"retry", {{"tries", 3}}}}, "tries");
  bad({{"retry", 3}}, "retry");
  bad({{"max_attempts", 2}, {"retry", {{"max_attempts", 3}}}}, "max_attempts");
  ExpectError(s().Post("/api/v1/jobs/" + plain["job_id"].get<std::string>() + "/fail",
                       {{"error", "x"}, {"retryable", "yes"}}),
              400, "invalid_argument", "retryable");
  EXPECT_EQ(s().Get("/api/v1/jobs").body["jobs"].size(), 1u);  // nothing else was written
}

TEST_F(HttpQueueTest, RetryableFailuresBackOffAndTheJobShowsEveryAttemptsError) {
  json job = Create({{"retry",
                      {{"max_attempts", 2}, {"backoff", "fixed"}, {"initial_seconds", 0.2},
                       {"jitter", 0}}}});
  const std::string id = job["job_id"];
  EXPECT_EQ(job["retry"]["max_attempts"], 2);
  EXPECT_EQ(job["retry"]["backoff"], "fixed");
  EXPECT_DOUBLE_EQ(job["retry"]["initial_seconds"].get<double>(), 0.2);
  ASSERT_EQ(Claim()["job_id"], id);
  Reply failed = s().Post("/api/v1/jobs/" + id + "/fail", {{"error", {{"code", "upstream"},
                                                                      {"message", "503"}}}});
  ASSERT_EQ(failed.status, 200) << failed.raw;
  EXPECT_EQ(failed.body["status"], "scheduled");
  EXPECT_FALSE(failed.body["run_at"].is_null());
  ASSERT_EQ(failed.body["errors"].size(), 1u);
  EXPECT_EQ(failed.body["errors"][0]["attempt"], 1);
  EXPECT_EQ(failed.body["errors"][0]["code"], "upstream");
  ExpectError(s().Post("/api/v1/jobs/" + id + "/start", {{"worker", "w"}}), 409,
              "invalid_transition", "scheduled");
  // A claim that waits is woken when the backoff ends, not only by a create.
  const auto start = std::chrono::steady_clock::now();
  json again = Claim("?wait=10");
  ASSERT_EQ(again["job_id"], id);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(again["attempt"], 2);
  Reply last = s().Post("/api/v1/jobs/" + id + "/fail", {{"error", "still 503"}});
  EXPECT_EQ(last.body["status"], "failed");
  EXPECT_EQ(last.body["errors"].size(), 2u);
  const Reply history = s().Get("/api/v1/jobs/" + id + "/events");
  json types;
  for (const json& e : history.body["events"]) types.push_back(e["type"]);
  EXPECT_EQ(types, json({"job.created", "job.started", "job.retry_scheduled", "job.due",
                         "job.started", "job.failed"}));
}

TEST_F(HttpQueueTest, NonRetryableFailureAndJobsWithoutAPolicyFailAtOnce) {
  const std::string with_policy = Create({{"retry", {{"max_attempts", 5}}}})["job_id"];
  ASSERT_EQ(Claim()["job_id"], with_policy);
  Reply r = s().Post("/api/v1/jobs/" + with_policy + "/fail",
                     {{"error", "bad input"}, {"retryable", false}});
  EXPECT_EQ(r.body["status"], "failed") << r.raw;
  const std::string plain = Create(json::object())["job_id"];
  ASSERT_EQ(Claim()["job_id"], plain);
  EXPECT_EQ(s().Post("/api/v1/jobs/" + plain + "/fail", {{"error", "x"}}).body["status"],
            "failed");
}

TEST_F(HttpQueueTest, ManualRetryOfFailedOrCancelledJobsWithIfMatchAndOwnership) {
  const std::string id = Create({{"user_id", "alice"}})["job_id"];
  ASSERT_EQ(Claim()["job_id"], id);
  ASSERT_EQ(s().Post("/api/v1/jobs/" + id + "/fail", {{"error", "boom"}}).status, 200);
  ExpectError(s().Post("/api/v1/jobs/" + id + "/retry", json::object(), {{"X-User-Id", "bob"}}),
              403, "forbidden");
  ExpectError(s().Post("/api/v1/jobs/" + id + "/retry", json::object(), {{"If-Match", "\"2\""}}),
              412, "version_mismatch");
  ExpectError(s().Post("/api/v1/jobs/" + id + "/retry", {{"now", true}}), 400, "invalid_argument");
  Reply retried = s().Post("/api/v1/jobs/" + id + "/retry", json::object(),
                           {{"If-Match", "\"3\""}, {"X-User-Id", "alice"}});
  ASSERT_EQ(retried.status, 200) << retried.raw;
  EXPECT_EQ(retried.body["status"], "pending");
  EXPECT_EQ(retried.body["attempt"], 0);
  EXPECT_TRUE(retried.body["error"].is_null());
  EXPECT_TRUE(retried.body["finished_at"].is_null());
  EXPECT_EQ(retried.body["errors"].size(), 1u);  // the history stays
  EXPECT_EQ(Claim()["job_id"], id);

  const std::string cancelled = Create(json::object())["job_id"];
  ASSERT_EQ(s().Post("/api/v1/jobs/" + cancelled + "/cancel").status, 200);
  EXPECT_EQ(s().Post("/api/v1/jobs/" + cancelled + "/retry").body["status"], "pending");
  ExpectError(s().Post("/api/v1/jobs/" + cancelled + "/retry"), 409, "invalid_transition",
              "pending");
  ExpectError(s().Post("/api/v1/jobs/nope/retry"), 404, "not_found");
}

TEST_F(HttpQueueTest, ScheduledJobsWaitForRunAtAndListAsScheduled) {
  const std::string later = Create({{"delay_seconds", 3600}})["job_id"];
  json soon = Create({{"delay_seconds", 0.3}});
  EXPECT_EQ(soon["status"], "scheduled");
  const std::string now_job = Create({{"run_at", "2020-01-01T00:00:00Z"}})["job_id"];  // past
  Reply scheduled = s().Get("/api/v1/jobs?status=scheduled");
  ASSERT_EQ(scheduled.status, 200);
  EXPECT_EQ(scheduled.body["jobs"].size(), 2u);
  EXPECT_EQ(s().Get("/api/v1/stats").body["jobs"]["scheduled"], 2);
  EXPECT_EQ(Claim()["job_id"], now_job);  // a run_at in the past schedules nothing
  // The waiting claim is woken by the scheduled job's due time.
  ASSERT_TRUE(s().Post("/api/v1/jobs/claim?wait=10", {{"worker", "w"}}).status == 200);
  Reply gone = s().Post("/api/v1/jobs/claim", {{"worker", "w"}});
  EXPECT_EQ(gone.status, 204);  // "later" is not due for an hour
  EXPECT_EQ(s().Get("/api/v1/jobs/" + later).body["status"], "scheduled");
  // A scheduled job can be cancelled and its priority changed.
  Reply raised = s().Patch("/api/v1/jobs/" + later, {{"priority", 5}});
  EXPECT_EQ(raised.body["priority"], 5) << raised.raw;
  EXPECT_EQ(s().Post("/api/v1/jobs/" + later + "/cancel").body["status"], "cancelled");
}

TEST_F(HttpQueueTest, ClaimOrderIsPriorityThenDueTimeThenCreation) {
  Create({{"job_id", "normal-1"}});
  Create({{"job_id", "urgent"}, {"priority", 100}});
  Create({{"job_id", "normal-2"}});
  Create({{"job_id", "background"}, {"priority", -100}});
  Create({{"job_id", "raised"}});
  Reply raised = s().Patch("/api/v1/jobs/raised", {{"priority", 50}});
  ASSERT_EQ(raised.status, 200) << raised.raw;
  std::vector<std::string> order;
  for (int i = 0; i < 5; ++i) order.push_back(Claim()["job_id"]);
  EXPECT_EQ(order, (std::vector<std::string>{"urgent", "raised", "normal-1", "normal-2",
                                             "background"}));
  ExpectError(s().Patch("/api/v1/jobs/urgent", {{"priority", 1}}), 409, "invalid_transition",
              "priority");
}

TEST_F(HttpQueueTest, DueTimesAndRetryStateSurviveARestart) {
  const std::string later = Create({{"delay_seconds", 1.5}, {"priority", 2}})["job_id"];
  const std::string flaky =
      Create({{"retry", {{"max_attempts", 3}, {"backoff", "fixed"}, {"initial_seconds", 1}}}})
          ["job_id"];
  ASSERT_EQ(Claim()["job_id"], flaky);
  ASSERT_EQ(s().Post("/api/v1/jobs/" + flaky + "/fail", {{"error", "x"}}).body["status"],
            "scheduled");
  ASSERT_EQ(s().Terminate(), 0);
  server_ = std::make_unique<ServerProcess>(dir_.Sub("data"));
  ASSERT_TRUE(server_->started());
  json job = s().Get("/api/v1/jobs/" + later).body;
  EXPECT_EQ(job["priority"], 2);
  EXPECT_EQ(s().Get("/api/v1/jobs/" + flaky).body["errors"].size(), 1u);
  // Both become claimable on their own timers after the restart (both were due within 1.5 s).
  std::set<std::string> claimed;
  for (int i = 0; i < 2; ++i) claimed.insert(Claim("?wait=10")["job_id"].get<std::string>());
  EXPECT_EQ(claimed, (std::set<std::string>{later, flaky}));
}

TEST_F(HttpQueueTest, CompleteOrFailWithNextClaimsTheNextJobInTheSameWrite) {
  Create({{"job_id", "a"}, {"type", "w"}});
  Create({{"job_id", "b"}, {"type", "w"}});
  Create({{"job_id", "c"}, {"type", "w"}});
  ASSERT_EQ(Claim()["job_id"], "a");
  Reply done = s().Post("/api/v1/jobs/a/complete",
                        {{"result", 1}, {"next", {{"worker", "w2"}, {"types", {"w"}}}}});
  ASSERT_EQ(done.status, 200) << done.raw;
  EXPECT_EQ(done.body["job"]["status"], "completed");
  EXPECT_EQ(done.body["next"]["job_id"], "b");
  EXPECT_EQ(done.body["next"]["worker"], "w2");
  EXPECT_EQ(done.body["job"]["last_seq"].is_null(), true);  // the API's job, not internals
  // The finish and the claim are one write: a refused finish claims nothing.
  ExpectError(s().Post("/api/v1/jobs/a/complete", {{"next", {{"worker", "w2"}}}}), 409,
              "invalid_transition");
  EXPECT_EQ(s().Get("/api/v1/jobs/c").body["status"], "pending");
  ExpectError(s().Post("/api/v1/jobs/b/fail", {{"error", "x"}, {"next", {{"types", {"w"}}}}}),
              400, "invalid_argument", "next: worker");
  EXPECT_EQ(s().Get("/api/v1/jobs/b").body["status"], "running");  // nothing written
  Reply failed = s().Post("/api/v1/jobs/b/fail", {{"error", "x"}, {"next", {{"worker", "w2"}}}});
  EXPECT_EQ(failed.body["job"]["status"], "failed") << failed.raw;
  EXPECT_EQ(failed.body["next"]["job_id"], "c");
  Reply last = s().Post("/api/v1/jobs/c/complete", {{"next", {{"worker", "w2"}}}});
  EXPECT_EQ(last.body["job"]["status"], "completed") << last.raw;
  EXPECT_TRUE(last.body["next"].is_null());  // none pending: no long-poll, null
  const Reply feed = s().Get("/api/v1/events?after=0&limit=100");
  std::uint64_t completed_seq = 0, started_seq = 0;
  for (const json& e : feed.body["events"]) {
    if (e["job_id"] == "a" && e["type"] == "job.completed") completed_seq = e["seq"];
    if (e["job_id"] == "b" && e["type"] == "job.started") started_seq = e["seq"];
  }
  EXPECT_EQ(started_seq, completed_seq + 1);  // adjacent: the same group commit
}

TEST_F(HttpQueueTest, ClaimMaxJobsTakesSeveralInClaimOrderInOneWrite) {
  for (int i = 0; i < 5; ++i) Create({{"job_id", "m" + std::to_string(i)}, {"type", "many"}});
  Create({{"job_id", "m-urgent"}, {"type", "many"}, {"priority", 9}});
  Reply three = s().Post("/api/v1/jobs/claim", {{"worker", "w"}, {"types", {"many"}}, {"max_jobs", 3}});
  ASSERT_EQ(three.status, 200) << three.raw;
  ASSERT_EQ(three.body["jobs"].size(), 3u);
  EXPECT_EQ(three.body["jobs"][0]["job_id"], "m-urgent");
  EXPECT_EQ(three.body["jobs"][1]["job_id"], "m0");
  EXPECT_EQ(three.body["jobs"][2]["job_id"], "m1");
  Reply rest = s().Post("/api/v1/jobs/claim", {{"worker", "w"}, {"types", {"many"}}, {"max_jobs", 100}});
  EXPECT_EQ(rest.body["jobs"].size(), 3u) << rest.raw;
  Reply none = s().Post("/api/v1/jobs/claim", {{"worker", "w"}, {"types", {"many"}}, {"max_jobs", 5}});
  EXPECT_EQ(none.status, 200);
  EXPECT_EQ(none.body["jobs"], json::array());
  EXPECT_EQ(s().Post("/api/v1/jobs/claim?wait=0.1", {{"worker", "w"}, {"max_jobs", 5}}).status, 204);
  ExpectError(s().Post("/api/v1/jobs/claim", {{"worker", "w"}, {"max_jobs", 101}}), 400,
              "invalid_argument", "max_jobs");
}

TEST_F(HttpQueueTest, FinishTakesEachJobOnItsOwnAndClaimsTheNextOnesInTheSameWrite) {
  for (const char* id : {"f1", "f2", "f3", "f4", "f5", "f6"}) Create({{"job_id", id}, {"type", "fin"}});
  Reply taken = s().Post("/api/v1/jobs/claim", {{"worker", "w"}, {"types", {"fin"}}, {"max_jobs", 3}});
  ASSERT_EQ(taken.body["jobs"].size(), 3u) << taken.raw;  // f1, f2, f3 at version 2
  const json body = {
      {"jobs",
       {{{"job_id", "f1"}, {"if_match", 2}, {"complete", {{"result", {{"n", 1}}}}}},
        {{"job_id", "f2"}, {"if_match", 1}, {"complete", json::object()}},  // stale version
        {{"job_id", "f3"}, {"fail", {{"error", {{"code", "E"}, {"message", "m"}}}, {"retryable", false}}}},
        {{"job_id", "f4"}, {"complete", json::object()}},    // pending: not this worker's
        {{"job_id", "nope"}, {"complete", json::object()}}}},
      {"next", {{"worker", "w2"}, {"types", {"fin"}}, {"max_jobs", 5}}}};
  Reply done = s().Post("/api/v1/jobs/finish", body);
  ASSERT_EQ(done.status, 200) << done.raw;
  const json& results = done.body["results"];
  ASSERT_EQ(results.size(), 5u) << done.raw;
  EXPECT_EQ(results[0]["job_id"], "f1");
  EXPECT_EQ(results[0]["status"], 200);
  EXPECT_EQ(results[0]["version"], 3);
  EXPECT_EQ(results[0]["job"]["status"], "completed");
  EXPECT_EQ(results[0]["job"]["result"], (json{{"n", 1}}));
  EXPECT_EQ(results[1]["status"], 412);
  EXPECT_EQ(results[1]["error"]["code"], "version_mismatch");
  EXPECT_FALSE(results[1].contains("job"));
  EXPECT_EQ(results[2]["job"]["status"], "failed");
  EXPECT_EQ(results[3]["status"], 409);
  EXPECT_EQ(results[3]["error"]["code"], "invalid_transition");
  EXPECT_EQ(results[4]["status"], 404);
  // The claim comes after the finishes: f4, f5, f6 were pending (f2 stays running with w).
  ASSERT_EQ(done.body["next"].size(), 3u) << done.raw;
  EXPECT_EQ(done.body["next"][0]["job_id"], "f4");
  EXPECT_EQ(done.body["next"][0]["worker"], "w2");
  EXPECT_EQ(done.body["next"][2]["job_id"], "f6");
  EXPECT_EQ(s().Get("/api/v1/jobs/f2").body["status"], "running");
  // One group commit: f1's completion, f3's failure and the three starts are adjacent.
  const Reply feed = s().Get("/api/v1/events?after=0&limit=100");
  std::vector<std::string> tail;
  for (const json& e : feed.body["events"]) tail.push_back(e["job_id"].get<std::string>() + " " + e["type"].get<std::string>());
  ASSERT_GE(tail.size(), 5u);
  EXPECT_EQ(std::vector<std::string>(tail.end() - 5, tail.end()),
            (std::vector<std::string>{"f1 job.completed", "f3 job.failed", "f4 job.started",
                                      "f5 job.started", "f6 job.started"}));

  // Minimal: versions, no jobs; without next: no "next".
  Reply lean = s().Post("/api/v1/jobs/finish",
                        {{"jobs", {{{"job_id", "f4"}, {"complete", json::object()}}}}},
                        {{"Prefer", "return=minimal"}});
  ASSERT_EQ(lean.status, 200) << lean.raw;
  EXPECT_EQ(lean.body, (json{{"results", {{{"job_id", "f4"}, {"status", 200}, {"version", 3}}}}}));
  EXPECT_EQ(lean.raw, R"({"results":[{"job_id":"f4","status":200,"version":3}]})");  // in this order
}

TEST_F(HttpQueueTest, FinishRefusesABadEntryWholeAndWritesNothing) {
  Create({{"job_id", "g1"}, {"type", "g"}});
  Create({{"job_id", "g2"}, {"type", "g"}});
  ASSERT_EQ(Claim()["job_id"], "g1");
  const std::uint64_t head = s().Get("/api/v1/events?after=0&limit=1000").body["events"].size();
  const json good = {{"job_id", "g1"}, {"complete", json::object()}};
  ExpectError(s().Post("/api/v1/jobs/finish", {{"jobs", json::array()}}), 400, "invalid_argument", "jobs");
  ExpectError(s().Post("/api/v1/jobs/finish", json::object()), 400, "invalid_argument", "jobs");
  ExpectError(s().Post("/api/v1/jobs/finish", {{"jobs", {good, {{"job_id", "g2"}}}}}), 400,
              "invalid_argument", "jobs[1]: give either complete or fail");
  ExpectError(s().Post("/api/v1/jobs/finish",
                       {{"jobs", {good, {{"job_id", "g2"}, {"complete", json::object()}, {"fail", {{"error", "x"}}}}}}}),
              400, "invalid_argument", "jobs[1]");
  ExpectError(s().Post("/api/v1/jobs/finish", {{"jobs", {good, {{"job_id", "g2"}, {"fail", json::object()}}}}}),
              400, "invalid_argument", "jobs[1]: fail: error is required");
  ExpectError(s().Post("/api/v1/jobs/finish",
                       {{"jobs", {{{"job_id", "g1"}, {"complete", {{"next", {{"worker", "w"}}}}}}}}}),
              400, "invalid_argument", "next belongs to the request");
  ExpectError(s().Post("/api/v1/jobs/finish", {{"jobs", {good}}, {"next", {{"max_jobs", 2}}}}), 400,
              "invalid_argument", "next: worker");
  ExpectError(s().Post("/api/v1/jobs/finish", {{"jobs", {{{"job_id", 5}, {"complete", json::object()}}}}}),
              400, "invalid_argument", "job_id");
  ExpectError(s().Post("/api/v1/jobs/finish", {{"jobs", {{{"job_id", "g1"}, {"if_match", "2"}, {"complete", json::object()}}}}}),
              400, "invalid_argument", "if_match");
  ExpectError(s().Post("/api/v1/jobs/finish", {{"jobs", {good}}, {"extra", 1}}), 400,
              "invalid_argument", "unknown field 'extra'");
  json many = json::array();
  for (int i = 0; i < 1001; ++i) many.push_back(good);
  ExpectError(s().Post("/api/v1/jobs/finish", {{"jobs", many}}), 400, "invalid_argument", "1 to 1000");
  EXPECT_EQ(s().Get("/api/v1/events?after=0&limit=1000").body["events"].size(), head);  // nothing written
  EXPECT_EQ(s().Get("/api/v1/jobs/g1").body["status"], "running");
  EXPECT_EQ(s().Get("/api/v1/jobs/g2").body["status"], "pending");
}

TEST_F(HttpQueueTest, PreferReturnMinimalAnswersWithoutTheJob) {
  Reply created = s().Post("/api/v1/jobs", {{"job_id", "lean"}}, {{"Prefer", "return=minimal"}});
  ASSERT_EQ(created.status, 201) << created.raw;
  EXPECT_EQ(created.body, (json{{"job_id", "lean"}, {"version", 1}}));
  EXPECT_EQ(created.Header("Location"), "/api/v1/jobs/lean");
  Reply started = s().Post("/api/v1/jobs/lean/start", {{"worker", "w"}}, {{"Prefer", "return=minimal"}});
  EXPECT_EQ(started.status, 204) << started.raw;
  EXPECT_EQ(started.Header("ETag"), "\"2\"");
  EXPECT_TRUE(started.raw.empty());
  EXPECT_EQ(s().Get("/api/v1/jobs/lean").body["status"], "running");
  // Errors are answered in full whatever the preference.
  ExpectError(s().Post("/api/v1/jobs/lean/start", {{"worker", "w"}}, {{"Prefer", "return=minimal"}}),
              409, "invalid_transition");
}

TEST_F(HttpQueueTest, ABatchWithPreferReturnMinimalAnswersIdsAndVersions) {
  json jobs = {{{"job_id", "b1"}, {"type", "t"}}, {{"job_id", "b2"}, {"input", {{"n", 2}}}}};
  Reply lean = s().Post("/api/v1/jobs/batch", {{"jobs", jobs}}, {{"Prefer", "return=minimal"}});
  ASSERT_EQ(lean.status, 201) << lean.raw;
  EXPECT_EQ(lean.raw, R"({"jobs":[{"job_id":"b1","version":1},{"job_id":"b2","version":1}]})");
  EXPECT_EQ(s().Get("/api/v1/jobs/b2").body["input"], (json{{"n", 2}}));
  // Without the preference the whole jobs come back, in order, as the projection renders them.
  Reply full = s().Post("/api/v1/jobs/batch", {{"jobs", {{{"job_id", "b3"}, {"type", "t"}}, {{"job_id", "b4"}}}}});
  ASSERT_EQ(full.status, 201) << full.raw;
  ASSERT_EQ(full.body["jobs"].size(), 2u);
  EXPECT_EQ(full.body["jobs"][0], s().Get("/api/v1/jobs/b3").body);
  EXPECT_EQ(full.body["jobs"][1]["job_id"], "b4");
}

TEST_F(HttpQueueTest, AWriteRepeatedWithItsRequestIdIsAnsweredFromTheFirstNeverAppliedTwice) {
  // X-Jobstore-Request-Id is what an instance sends when it forwards a write to the writer, so
  // that a repeat after a lost answer is not applied twice; a client may send it too.
  const httplib::Headers id1 = {{"X-Jobstore-Request-Id", "test-create-1"}};
  Reply first = s().Post("/api/v1/jobs", {{"type", "rid"}}, id1);
  ASSERT_EQ(first.status, 201) << first.raw;
  Reply again = s().Post("/api/v1/jobs", {{"type", "rid"}}, id1);
  ASSERT_EQ(again.status, 200) << again.raw;
  EXPECT_EQ(again.body["job_id"], first.body["job_id"]);
  const std::string id = first.body["job_id"];
  // A claim, then its repeat: the same job, nothing else taken.
  ASSERT_EQ(s().Post("/api/v1/jobs", {{"type", "rid"}}).status, 201);
  const httplib::Headers id2 = {{"X-Jobstore-Request-Id", "test-claim-1"}};
  Reply claimed = s().Post("/api/v1/jobs/claim", {{"worker", "w"}, {"types", {"rid"}}}, id2);
  ASSERT_EQ(claimed.status, 200) << claimed.raw;
  Reply reclaimed = s().Post("/api/v1/jobs/claim", {{"worker", "w"}, {"types", {"rid"}}}, id2);
  ASSERT_EQ(reclaimed.status, 200) << reclaimed.raw;
  EXPECT_EQ(reclaimed.body["job_id"], claimed.body["job_id"]);
  const std::string claimed_id = claimed.body["job_id"];
  // The finish, repeated: 200 both times, one job.completed.
  const httplib::Headers id3 = {{"X-Jobstore-Request-Id", "test-complete-1"}};
  ASSERT_EQ(s().Post("/api/v1/jobs/" + claimed_id + "/complete", {{"result", 1}}, id3).status, 200);
  Reply recompleted = s().Post("/api/v1/jobs/" + claimed_id + "/complete", {{"result", 1}}, id3);
  EXPECT_EQ(recompleted.status, 200) << recompleted.raw;
  EXPECT_EQ(recompleted.body["version"], 3);
  // Counted from the feed: one create per job, one start, one complete.
  Reply events = s().Get("/api/v1/events?type=job.created&limit=1000");
  int rid_creates = 0;
  for (const auto& e : events.body["events"]) rid_creates += e["data"].value("type", "") == "rid";
  EXPECT_EQ(rid_creates, 2);
  EXPECT_EQ(s().Get("/api/v1/jobs/" + claimed_id + "/events").body["events"].size(), 3u);
  ExpectError(s().Post("/api/v1/jobs", json::object(), {{"X-Jobstore-Request-Id", "bad id"}}), 400,
              "invalid_argument", "X-Jobstore-Request-Id");
}

TEST_F(HttpQueueTest, SchedulesAreCreatedListedChangedAndDeletedWithTheContractsErrors) {
  json body = {{"schedule_id", "nightly"},
               {"cron", "0 2 * * *"},
               {"timezone", "Europe/Berlin"},
               {"job", {{"type", "report"}, {"priority", 3}, {"labels", {{"team", "ml"}}}}}};
  Reply created = s().Post("/api/v1/schedules", body);
  ASSERT_EQ(created.status, 201) << created.raw;
  EXPECT_EQ(created.Header("Location"), "/api/v1/schedules/nightly");
  EXPECT_EQ(created.Header("ETag"), "\"1\"");
  EXPECT_EQ(created.body["timezone"], "Europe/Berlin");
  EXPECT_FALSE(created.body["next_run_at"].is_null());
  EXPECT_TRUE(created.body["last_run_at"].is_null());
  ExpectError(s().Post("/api/v1/schedules", body), 409, "already_exists");
  auto bad = [&](json b, const std::string& names) {
    ExpectError(s().Post("/api/v1/schedules", b), 400, "invalid_argument", names);
  };
  bad({{"cron", "* * * * *"}}, "schedule_id");
  bad({{"schedule_id", "x"}}, "cron");
  bad({{"schedule_id", "has space"}, {"cron", "* * * * *"}}, "schedule_id");
  bad({{"schedule_id", "x"}, {"cron", "61 * * * *"}}, "minute");
  bad({{"schedule_id", "x"}, {"cron", "0 0 30 2 *"}}, "never");
  bad({{"schedule_id", "x"}, {"cron", "* * * * *"}, {"timezone", "Mars/Base"}}, "time zone");
  bad({{"schedule_id", "x"}, {"cron", "* * * * *"}, {"job", {{"job_id", "fixed"}}}}, "job.job_id");
  bad({{"schedule_id", "x"}, {"cron", "* * * * *"}, {"job", {{"priority", 5000}}}}, "priority");
  bad({{"schedule_id", "x"}, {"cron", "* * * * *"}, {"every", "minute"}}, "every");
  Reply list = s().Get("/api/v1/schedules");
  ASSERT_EQ(list.body["schedules"].size(), 1u) << list.raw;  // the refusals wrote nothing

  ExpectError(s().Patch("/api/v1/schedules/nightly", {{"paused", true}}, {{"If-Match", "\"9\""}}),
              412, "version_mismatch");
  Reply paused = s().Patch("/api/v1/schedules/nightly", {{"paused", true}}, {{"If-Match", "\"1\""}});
  ASSERT_EQ(paused.status, 200) << paused.raw;
  EXPECT_TRUE(paused.body["paused"].get<bool>());
  EXPECT_TRUE(paused.body["next_run_at"].is_null());
  ExpectError(s().Patch("/api/v1/schedules/nightly", json::object()), 400, "invalid_argument");
  Reply moved = s().Patch("/api/v1/schedules/nightly", {{"paused", false}, {"cron", "@hourly"}});
  EXPECT_EQ(moved.body["cron"], "@hourly") << moved.raw;
  const Reply now = s().Get("/api/v1/schedules/nightly");
  EXPECT_EQ(now.body["version"], 3) << now.raw;
  ExpectError(s().Get("/api/v1/schedules/nope"), 404, "not_found");
  ExpectError(s().Patch("/api/v1/schedules/nope", {{"paused", true}}), 404, "not_found");
  // The feed shows the schedule's events under schedule/<id>.
  const Reply feed = s().Get("/api/v1/events?after=0&limit=100");
  std::vector<std::string> schedule_events;
  for (const json& e : feed.body["events"]) {
    if (e["job_id"] == "schedule/nightly") schedule_events.push_back(e["type"]);
  }
  EXPECT_EQ(schedule_events, (std::vector<std::string>{"schedule.set", "schedule.set",
                                                       "schedule.set"}));
  Reply deleted = s().Call("DELETE", "/api/v1/schedules/nightly", "");
  EXPECT_EQ(deleted.status, 204) << deleted.raw;
  ExpectError(s().Call("DELETE", "/api/v1/schedules/nightly", ""), 404, "not_found");
  EXPECT_TRUE(s().Get("/api/v1/schedules").body["schedules"].empty());
}

// End to end with the server's own clock: the next minute's occurrence creates its job from the
// template, once, and a crash (SIGKILL) right after and a start create nothing again. Waits up
// to a minute.
TEST_F(HttpQueueTest, AScheduleCreatesItsJobAtTheMinuteOnceAcrossACrash) {
  Reply created = s().Post("/api/v1/schedules",
                           {{"schedule_id", "tick"},
                            {"cron", "* * * * *"},
                            {"job", {{"type", "tick"}, {"input", {{"n", 1}}}}}});
  ASSERT_EQ(created.status, 201) << created.raw;
  const std::string due = created.body["next_run_at"];
  // The occurrence's job: "tick:yyyymmddThhmmZ" from next_run_at "yyyy-mm-ddThh:mm:00.000Z".
  const std::string job_id = "tick:" + due.substr(0, 4) + due.substr(5, 2) + due.substr(8, 2) +
                             "T" + due.substr(11, 2) + due.substr(14, 2) + "Z";
  Reply job;
  for (int i = 0; i < 70 * 10; ++i) {
    job = s().Get("/api/v1/jobs/" + job_id + "?wait=0.1");
    if (job.status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(job.status, 200) << job.raw;
  EXPECT_EQ(job.body["type"], "tick");
  EXPECT_EQ(job.body["input"]["n"], 1);
  EXPECT_EQ(job.body["labels"]["schedule"], "tick");
  EXPECT_EQ(s().Get("/api/v1/schedules/tick").body["last_job_id"], job_id);
  s().Crash();  // SIGKILL: no snapshot, no clean close; the start replays the log
  server_ = std::make_unique<ServerProcess>(dir_.Sub("data"));
  ASSERT_TRUE(server_->started());
  EXPECT_EQ(s().Get("/api/v1/schedules/tick").body["last_job_id"], job_id);
  EXPECT_EQ(s().Get("/api/v1/jobs?label=schedule:tick").body["jobs"].size(), 1u);
}

}  // namespace
}  // namespace jobstore
