// The REST contract (http/openapi.json) against the real server over real HTTP.
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <thread>

#include "support/metrics.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

namespace jobstore {
namespace {

using nlohmann::json;
using testing::MetricValue;
using testing::Reply;
using testing::ServerProcess;
using testing::TempDir;

class HttpApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(dir_.Sub("data"), ExtraFlags());
    ASSERT_TRUE(server_->started());
  }
  virtual std::vector<std::string> ExtraFlags() { return {"--sse-heartbeat", "200ms"}; }

  ServerProcess& s() { return *server_; }
  // Creates a job and returns its id.
  std::string NewJob(json body = json::object()) {
    Reply r = s().Post("/api/v1/jobs", body);
    EXPECT_EQ(r.status, 201) << r.raw;
    return r.body.value("job_id", "");
  }
  std::string Running(json create = json::object()) {
    std::string id = NewJob(create);
    EXPECT_EQ(s().Post("/api/v1/jobs/" + id + "/start", {{"worker", "w1"}}).status, 200);
    return id;
  }
  std::string InHitl() {
    std::string id = Running();
    Reply r = s().Post("/api/v1/jobs/" + id + "/hitl",
                       {{"type", "clarify"}, {"prompt", {{"questions", {{{"text", "Which?"}}}}}}});
    EXPECT_EQ(r.status, 200) << r.raw;
    return id;
  }
  static void ExpectError(const Reply& r, int status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.raw;
    EXPECT_EQ(r.body["error"]["code"], code) << r.raw;
    EXPECT_FALSE(r.body["error"]["message"].get<std::string>().empty());
  }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(HttpApiTest, CreateWithEmptyBodyGivesDefaultsLocationAndEtag) {
  Reply r = s().Post("/api/v1/jobs");
  ASSERT_EQ(r.status, 201) << r.raw;
  const std::string id = r.body["job_id"];
  EXPECT_EQ(id.size(), 36u);  // a UUID
  EXPECT_EQ(id[14], '4');     // version 4
  EXPECT_EQ(r.Header("Location"), "/api/v1/jobs/" + id);
  EXPECT_EQ(r.Header("ETag"), "\"1\"");
  EXPECT_EQ(r.body["status"], "pending");
  EXPECT_EQ(r.body["type"], "default");
  EXPECT_EQ(r.body["user_id"], "default");
  EXPECT_EQ(r.body["ttl_seconds"], 3600);
  EXPECT_EQ(r.body["version"], 1);
  EXPECT_TRUE(r.body["hitl"].is_null());
  EXPECT_EQ(r.Header("Content-Type"), "application/json; charset=utf-8");
}

TEST_F(HttpApiTest, ClientIdsAreValidatedAndUnique) {
  EXPECT_EQ(NewJob({{"job_id", "order-42"}, {"type", "skill_creation"}}), "order-42");
  ExpectError(s().Post("/api/v1/jobs", {{"job_id", "order-42"}}), 409, "already_exists");
  ExpectError(s().Post("/api/v1/jobs", {{"job_id", "has space"}}), 400, "invalid_argument");
  ExpectError(s().Post("/api/v1/jobs", {{"job_id", "batch"}}), 400, "invalid_argument");
  ExpectError(s().Post("/api/v1/jobs", {{"job_id", std::string(129, 'a')}}), 400,
              "invalid_argument");
  ExpectError(s().Get("/api/v1/jobs/bad%20id"), 400, "invalid_argument");
  ExpectError(s().Get("/api/v1/jobs/nope"), 404, "not_found");
}

TEST_F(HttpApiTest, IdempotencyKeyReturnsTheFirstJob) {
  Reply first = s().Post("/api/v1/jobs", {{"type", "a"}}, {{"Idempotency-Key", "k-1"}});
  ASSERT_EQ(first.status, 201);
  Reply again = s().Post("/api/v1/jobs", {{"type", "a"}}, {{"Idempotency-Key", "k-1"}});
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body["job_id"], first.body["job_id"]);
  EXPECT_EQ(s().Get("/api/v1/jobs").body["jobs"].size(), 1u);
}

TEST_F(HttpApiTest, FieldsAreValidatedWithTheirNames) {
  struct Case {
    json body;
    std::string names;
  } cases[] = {
      {{{"type", 5}}, "type"},
      {{{"ttl_seconds", -1}}, "ttl_seconds"},
      {{{"ttl_seconds", 1.5}}, "ttl_seconds"},
      {{{"max_attempts", 0}}, "max_attempts"},
      {{{"labels", {{"k", 1}}}}, "label"},
      {{{"labels", "x"}}, "labels"},
      {{{"user_id", ""}}, "user_id"},
      {{{"tyep", "x"}}, "tyep"},
  };
  for (const auto& c : cases) {
    Reply r = s().Post("/api/v1/jobs", c.body);
    ExpectError(r, 400, "invalid_argument");
    EXPECT_NE(r.body["error"]["message"].get<std::string>().find(c.names), std::string::npos)
        << r.raw;
  }
  ExpectError(s().Call("POST", "/api/v1/jobs", "{\"type\": "), 400, "invalid_argument");
  ExpectError(s().Call("POST", "/api/v1/jobs", "[1,2]"), 400, "invalid_argument");
  std::string deep = std::string(100, '[') + std::string(100, ']');
  ExpectError(s().Call("POST", "/api/v1/jobs", "{\"input\": " + deep + "}"), 400,
              "invalid_argument");
  // Found by fuzz_mutation_requests: a number beyond double's range threw nlohmann's
  // out_of_range (not a parse_error) past the parser and came back as 500.
  ExpectError(s().Call("POST", "/api/v1/jobs", "{\"input\": 1e900}"), 400, "invalid_argument");
  EXPECT_TRUE(s().Get("/api/v1/jobs").body["jobs"].empty());  // nothing was written
}

TEST_F(HttpApiTest, BatchIsAllOrNoneAndNamesTheBadIndex) {
  Reply bad = s().Post("/api/v1/jobs/batch",
                       {{"jobs", {{{"type", "a"}}, {{"type", "b"}}, {{"ttl_seconds", "x"}}}}});
  ExpectError(bad, 400, "invalid_argument");
  EXPECT_NE(bad.body["error"]["message"].get<std::string>().find("jobs[2]"), std::string::npos);
  EXPECT_TRUE(s().Get("/api/v1/jobs").body["jobs"].empty());
  json many = json::array();
  for (int i = 0; i < 1000; ++i) many.push_back({{"type", "t" + std::to_string(i % 3)}});
  Reply ok = s().Post("/api/v1/jobs/batch", {{"jobs", many}});
  ASSERT_EQ(ok.status, 201) << ok.raw.substr(0, 300);
  ASSERT_EQ(ok.body["jobs"].size(), 1000u);
  EXPECT_EQ(ok.body["jobs"][2]["type"], "t2");
  // Each id a distinct random UUID: version 4, RFC 4122 variant.
  const std::regex uuid4("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> ids;
  for (const json& j : ok.body["jobs"]) {
    const std::string id = j["job_id"];
    EXPECT_TRUE(std::regex_match(id, uuid4)) << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
  many.push_back({{"type", "x"}});
  ExpectError(s().Post("/api/v1/jobs/batch", {{"jobs", many}}), 400, "invalid_argument");
  ExpectError(s().Post("/api/v1/jobs/batch", {{"jobs", json::array()}}), 400, "invalid_argument");
}

TEST_F(HttpApiTest, FullLifecycleWithHitlRoundTrip) {
  std::string id = NewJob({{"type", "skill_creation"}, {"user_id", "alice"}});
  Reply started = s().Post("/api/v1/jobs/" + id + "/start", {{"worker", "w7"}, {"lease_seconds", 60}});
  ASSERT_EQ(started.status, 200);
  EXPECT_EQ(started.body["status"], "running");
  EXPECT_EQ(started.body["worker"], "w7");
  EXPECT_EQ(started.body["attempt"], 1);
  EXPECT_FALSE(started.body["lease_expires_at"].is_null());
  Reply asked = s().Post("/api/v1/jobs/" + id + "/hitl",
                         {{"type", "clarify"}, {"prompt", {{"q", "Which formats?"}}}, {"timeout_seconds", 600}});
  ASSERT_EQ(asked.status, 200);
  EXPECT_EQ(asked.body["status"], "pending_hitl");
  EXPECT_EQ(asked.body["hitl"]["request_id"], "h-1");
  EXPECT_FALSE(asked.body["hitl"]["expires_at"].is_null());
  EXPECT_EQ(s().Get("/api/v1/jobs/" + id + "/hitl/response").status, 204);

  // The worker waits; a person answers; the worker wakes with the answer.
  Reply waited;
  std::thread worker([&] { waited = s().Get("/api/v1/jobs/" + id + "/hitl/response?wait=30"); });
  EXPECT_TRUE(s().WaitForWaiters(1));
  ExpectError(s().Post("/api/v1/jobs/" + id + "/hitl/response",
                       {{"request_id", "h-1"}, {"response", "pdf"}}, {{"X-User-Id", "bob"}}),
              403, "forbidden");
  ExpectError(s().Post("/api/v1/jobs/" + id + "/hitl/response",
                       {{"request_id", "h-9"}, {"response", "pdf"}}, {{"X-User-Id", "alice"}}),
              409, "stale_request");
  Reply answered = s().Post("/api/v1/jobs/" + id + "/hitl/response",
                            {{"request_id", "h-1"}, {"response", {{"formats", {"pdf"}}}}},
                            {{"X-User-Id", "alice"}});
  ASSERT_EQ(answered.status, 200) << answered.raw;
  EXPECT_EQ(answered.body["status"], "running");
  EXPECT_EQ(answered.body["hitl"]["responded_by"], "alice");
  worker.join();
  ASSERT_EQ(waited.status, 200) << waited.raw;
  EXPECT_EQ(waited.body["request_id"], "h-1");
  EXPECT_EQ(waited.body["response"]["formats"][0], "pdf");

  Reply patched = s().Patch("/api/v1/jobs/" + id,
                            {{"progress", {{"percent", 40.0}, {"phase", "drafting"}}},
                             {"data", {{"a", {{"b", 1}}}}},
                             {"labels", {{"team", "ml"}}}});
  ASSERT_EQ(patched.status, 200) << patched.raw;
  patched = s().Patch("/api/v1/jobs/" + id, {{"data", {{"a", {{"b", nullptr}, {"c", 2}}}}}});
  EXPECT_EQ(patched.body["data"], json({{"a", {{"c", 2}}}}));
  EXPECT_EQ(patched.body["progress"]["phase"], "drafting");

  Reply done = s().Post("/api/v1/jobs/" + id + "/complete", {{"result", {{"skill", "invoices"}}}});
  ASSERT_EQ(done.status, 200);
  EXPECT_EQ(done.body["status"], "completed");
  EXPECT_FALSE(done.body["finished_at"].is_null());
  Reply again = s().Post("/api/v1/jobs/" + id + "/cancel");
  ExpectError(again, 409, "invalid_transition");
  EXPECT_NE(again.raw.find("completed"), std::string::npos);
  ExpectError(s().Patch("/api/v1/jobs/" + id, {{"data", {{"x", 1}}}}), 409, "invalid_transition");

  Reply history = s().Get("/api/v1/jobs/" + id + "/events");
  ASSERT_EQ(history.status, 200);
  std::vector<std::string> types;
  for (std::size_t i = 0; i < history.body["events"].size(); ++i) {
    EXPECT_EQ(history.body["events"][i]["version"], i + 1);
    types.push_back(history.body["events"][i]["type"]);
  }
  EXPECT_EQ(types, (std::vector<std::string>{"job.created", "job.started", "job.hitl_requested",
                                             "job.hitl_answered", "job.updated", "job.updated",
                                             "job.completed"}));
}

TEST_F(HttpApiTest, FailAndCancel) {
  std::string a = Running();
  Reply failed = s().Post("/api/v1/jobs/" + a + "/fail", {{"error", "model timed out"}});
  ASSERT_EQ(failed.status, 200);
  EXPECT_EQ(failed.body["error"]["message"], "model timed out");
  std::string b = InHitl();
  failed = s().Post("/api/v1/jobs/" + b + "/fail", {{"error", {{"code", "quota"}, {"message", "no"}}}});
  EXPECT_EQ(failed.body["error"]["code"], "quota");
  ExpectError(s().Post("/api/v1/jobs/" + b + "/fail"), 400, "invalid_argument");
  std::string c = NewJob();
  Reply cancelled = s().Post("/api/v1/jobs/" + c + "/cancel", {{"reason", "duplicate"}});
  EXPECT_EQ(cancelled.body["status"], "cancelled");
  EXPECT_EQ(cancelled.body["error"]["message"], "duplicate");
  ExpectError(s().Post("/api/v1/jobs/" + NewJob() + "/complete"), 409, "invalid_transition");
  ExpectError(s().Post("/api/v1/jobs/" + NewJob() + "/hitl"), 409, "invalid_transition");
}

TEST_F(HttpApiTest, StaleIfMatchGets412AndWritesNothing) {
  std::string id = NewJob();
  ExpectError(s().Post("/api/v1/jobs/" + id + "/start", nullptr, {{"If-Match", "\"7\""}}), 412,
              "version_mismatch");
  EXPECT_EQ(s().Get("/api/v1/jobs/" + id).body["version"], 1);
  ExpectError(s().Post("/api/v1/jobs/" + id + "/start", nullptr, {{"If-Match", "seven"}}), 400,
              "invalid_argument");
  Reply ok = s().Post("/api/v1/jobs/" + id + "/start", nullptr, {{"If-Match", "\"1\""}});
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.Header("ETag"), "\"2\"");
}

TEST_F(HttpApiTest, GetLongPollWakesOnChangeAndTimesOut) {
  std::string id = NewJob();
  Reply waited;
  auto start = std::chrono::steady_clock::now();
  std::thread poller([&] { waited = s().Get("/api/v1/jobs/" + id + "?wait=30&after_version=1"); });
  EXPECT_TRUE(s().WaitForWaiters(1));
  s().Post("/api/v1/jobs/" + id + "/start");
  poller.join();
  EXPECT_EQ(waited.body["version"], 2);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));

  start = std::chrono::steady_clock::now();
  Reply timed_out = s().Get("/api/v1/jobs/" + id + "?wait=0.3");
  EXPECT_EQ(timed_out.status, 200);
  EXPECT_EQ(timed_out.body["version"], 2);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300));
  ExpectError(s().Get("/api/v1/jobs/" + id + "?wait=61"), 400, "invalid_argument");
  ExpectError(s().Get("/api/v1/jobs/" + id + "?wait=abc"), 400, "invalid_argument");
}

TEST_F(HttpApiTest, ListFiltersAndPagesWithAStableCursor) {
  for (int i = 0; i < 12; ++i) {
    NewJob({{"job_id", "j" + std::to_string(i)}, {"type", i % 2 ? "odd" : "even"},
            {"user_id", i < 6 ? "alice" : "bob"}, {"labels", {{"team", i % 3 ? "web" : "ml"}}}});
  }
  s().Post("/api/v1/jobs/j0/start");
  Reply page = s().Get("/api/v1/jobs?type=even&limit=2");
  ASSERT_EQ(page.status, 200);
  ASSERT_EQ(page.body["jobs"].size(), 2u);
  EXPECT_EQ(page.body["jobs"][0]["job_id"], "j10");
  std::string cursor = page.body["next_cursor"];
  NewJob({{"job_id", "j99"}, {"type", "even"}});
  Reply next = s().Get("/api/v1/jobs?type=even&limit=2&cursor=" + cursor);
  EXPECT_EQ(next.body["jobs"][0]["job_id"], "j6");
  EXPECT_EQ(s().Get("/api/v1/jobs?status=running").body["jobs"].size(), 1u);
  EXPECT_EQ(s().Get("/api/v1/jobs?status=pending,running").body["jobs"].size(), 13u);
  EXPECT_EQ(s().Get("/api/v1/jobs?label=team:ml&user_id=alice").body["jobs"].size(), 2u);
  Reply last = s().Get("/api/v1/jobs?user_id=bob&limit=1000");
  EXPECT_EQ(last.body["jobs"].size(), 6u);
  EXPECT_TRUE(last.body["next_cursor"].is_null());
  ExpectError(s().Get("/api/v1/jobs?status=bogus"), 400, "invalid_argument");
  ExpectError(s().Get("/api/v1/jobs?limit=1001"), 400, "invalid_argument");
  ExpectError(s().Get("/api/v1/jobs?cursor=zzz"), 400, "invalid_argument");
  ExpectError(s().Get("/api/v1/jobs?label=nocolon"), 400, "invalid_argument");
}

TEST_F(HttpApiTest, GlobalFeedPagesFiltersAndLongPolls) {
  std::string a = NewJob(), b = NewJob();
  s().Post("/api/v1/jobs/" + a + "/start");
  Reply feed = s().Get("/api/v1/events?after=0&limit=2");
  ASSERT_EQ(feed.status, 200);
  ASSERT_EQ(feed.body["events"].size(), 2u);
  EXPECT_EQ(feed.body["events"][0]["seq"], 1);
  EXPECT_EQ(feed.body["next_after"], 2);
  EXPECT_EQ(feed.body["head"], 3);
  EXPECT_EQ(feed.body["first"], 1);
  Reply tail = s().Get("/api/v1/events?after=2");
  EXPECT_EQ(tail.body["events"][0]["type"], "job.started");
  EXPECT_EQ(s().Get("/api/v1/events?type=job.created").body["events"].size(), 2u);
  EXPECT_EQ(s().Get("/api/v1/events?job_id=" + b).body["events"].size(), 1u);
  Reply empty = s().Get("/api/v1/events?after=3");
  EXPECT_TRUE(empty.body["events"].empty());
  EXPECT_EQ(empty.body["next_after"], 3);

  Reply waited;
  std::thread poller([&] { waited = s().Get("/api/v1/events?after=3&wait=30"); });
  EXPECT_TRUE(s().WaitForWaiters(1));
  NewJob();
  poller.join();
  ASSERT_EQ(waited.body["events"].size(), 1u);
  EXPECT_EQ(waited.body["events"][0]["seq"], 4);
  ExpectError(s().Get("/api/v1/events?type=job.bogus"), 400, "invalid_argument");
  ExpectError(s().Get("/api/v1/events?limit=0"), 400, "invalid_argument");
  ExpectError(s().Get("/api/v1/events?after=-1"), 400, "invalid_argument");
}

// Reads SSE frames from `path` until `count` events arrived (or `comments` comment lines).
std::vector<std::string> ReadSse(ServerProcess& s, const std::string& path, std::size_t count,
                                 httplib::Headers headers = {}, int* comments = nullptr) {
  auto client = s.Client();
  client->set_read_timeout(10, 0);
  std::string buffer;
  std::vector<std::string> ids;
  int seen_comments = 0;
  client->Get(path, headers, [&](const char* data, std::size_t n) {
    buffer.append(data, n);
    std::size_t end;
    while ((end = buffer.find("\n\n")) != std::string::npos) {
      std::string frame = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      if (frame.rfind(":", 0) == 0) {
        ++seen_comments;
      } else if (frame.rfind("id: ", 0) == 0) {
        ids.push_back(frame.substr(4, frame.find('\n') - 4));
      }
    }
    return ids.size() < count && (comments == nullptr || seen_comments < 1);
  });
  if (comments) *comments = seen_comments;
  return ids;
}

TEST_F(HttpApiTest, SseStreamsResumeFromLastEventIdAndSendHeartbeats) {
  std::string id = NewJob();
  NewJob();
  s().Post("/api/v1/jobs/" + id + "/start");
  auto ids = ReadSse(s(), "/api/v1/events/stream", 3);
  EXPECT_EQ(ids, (std::vector<std::string>{"1", "2", "3"}));
  auto resumed = ReadSse(s(), "/api/v1/events/stream", 1, {{"Last-Event-ID", "2"}});
  EXPECT_EQ(resumed, (std::vector<std::string>{"3"}));
  auto job_only = ReadSse(s(), "/api/v1/jobs/" + id + "/stream", 2);
  EXPECT_EQ(job_only, (std::vector<std::string>{"1", "3"}));
  // A live event reaches an open stream.
  std::thread writer([&] {
    EXPECT_TRUE(s().WaitForWaiters(1));  // the stream below is open and waiting
    s().Post("/api/v1/jobs/" + id + "/complete");
  });
  auto live = ReadSse(s(), "/api/v1/events/stream?after=3", 1);
  writer.join();
  EXPECT_EQ(live, (std::vector<std::string>{"4"}));
  int comments = 0;
  ReadSse(s(), "/api/v1/events/stream?after=4", 1, {}, &comments);
  EXPECT_GE(comments, 1);  // the heartbeat (200 ms in this test)
}

TEST_F(HttpApiTest, OpsRoutesAnswer) {
  EXPECT_EQ(s().Get("/healthz").status, 200);
  Reply ready = s().Get("/readyz");
  EXPECT_EQ(ready.status, 200);
  NewJob();
  Reply stats = s().Get("/api/v1/stats");
  EXPECT_EQ(stats.body["jobs"]["pending"], 1);
  EXPECT_EQ(stats.body["log"]["last_seq"], 1);
  Reply metrics = s().Get("/metrics");
  EXPECT_EQ(metrics.status, 200);
  for (const char* family : {"jobstore_http_requests_total", "jobstore_http_request_duration_seconds_bucket",
                             "jobstore_events_appended_total", "jobstore_append_batches_total",
                             "jobstore_log_last_seq", "jobstore_log_bytes", "jobstore_jobs{status=\"pending\"} 1",
                             "jobstore_waiters"}) {
    EXPECT_NE(metrics.raw.find(family), std::string::npos) << family;
  }
  ExpectError(s().Get("/nowhere"), 404, "not_found");
  Reply doc = s().Get("/api/v1/openapi.json");
  EXPECT_EQ(doc.body["openapi"], "3.1.0");
}

TEST_F(HttpApiTest, MetricsForTheAlertRulesTellOpenQuestionsDiskDurableWritesAndCompaction) {
  Reply before = s().Get("/metrics");
  EXPECT_EQ(MetricValue(before.raw, "jobstore_hitl_oldest_open_seconds"), 0);
  EXPECT_GT(MetricValue(before.raw, "jobstore_data_dir_free_bytes"), 0);
  EXPECT_GT(MetricValue(before.raw, "jobstore_compaction_interval_seconds"), 0);
  EXPECT_GE(MetricValue(before.raw, "jobstore_compaction_last_run_timestamp_seconds"), 0);
  const std::string id = NewJob();
  ASSERT_EQ(s().Post("/api/v1/jobs/" + id + "/start").status, 200);
  ASSERT_EQ(s().Post("/api/v1/jobs/" + id + "/hitl", {{"prompt", "ok?"}}).status, 200);
  Reply open = s().Get("/metrics");
  const double age = MetricValue(open.raw, "jobstore_hitl_oldest_open_seconds");
  EXPECT_GE(age, 0);
  EXPECT_LT(age, 60);  // asked a moment ago (by the server's clock)
  if (testing::ServerProcess::InstancesRequested() == 1) {  // a follower's copy writes nothing of its own
    EXPECT_GT(MetricValue(open.raw, "jobstore_append_seconds_total"), 0);  // three durable writes
  }
  ASSERT_EQ(s().Post("/api/v1/jobs/" + id + "/hitl/response",
                     {{"request_id", "h-1"}, {"response", true}}).status, 200);
  EXPECT_EQ(MetricValue(s().Get("/metrics").raw, "jobstore_hitl_oldest_open_seconds"), 0);
}

TEST_F(HttpApiTest, LabelLimitsHoldAtTheirBoundaries) {
  json at_limit = json::object(), over_count = json::object();
  for (int i = 0; i < 64; ++i) at_limit["k" + std::to_string(i)] = "v";
  over_count = at_limit;
  over_count["one-more"] = "v";
  EXPECT_EQ(s().Post("/api/v1/jobs", {{"labels", at_limit}}).status, 201);
  ExpectError(s().Post("/api/v1/jobs", {{"labels", over_count}}), 400, "invalid_argument");
  EXPECT_EQ(s().Post("/api/v1/jobs", {{"labels", {{std::string(128, 'k'), std::string(1024, 'v')}}}}).status, 201);
  ExpectError(s().Post("/api/v1/jobs", {{"labels", {{std::string(129, 'k'), "v"}}}}), 400, "invalid_argument");
  ExpectError(s().Post("/api/v1/jobs", {{"labels", {{"k", std::string(1025, 'v')}}}}), 400, "invalid_argument");
  // A PATCH that would take a job past 64 labels is refused too, and changes nothing.
  std::string id = s().Post("/api/v1/jobs", {{"labels", at_limit}}).body["job_id"];
  ExpectError(s().Call("PATCH", "/api/v1/jobs/" + id, R"({"labels":{"another":"v"}})"), 400, "invalid_argument");
  EXPECT_EQ(s().Get("/api/v1/jobs/" + id).body["labels"].size(), 64u);
  EXPECT_EQ(s().Get("/api/v1/jobs/" + id).body["version"], 1);
}

TEST_F(HttpApiTest, OversizeBodiesAre413AndNothingIsWritten) {
  std::string big = "{\"input\": \"" + std::string(2 << 20, 'x') + "\"}";
  ExpectError(s().Call("POST", "/api/v1/jobs", big), 413, "payload_too_large");
  EXPECT_EQ(s().Get("/api/v1/stats").body["log"]["last_seq"], 0);
  EXPECT_EQ(s().Get("/healthz").status, 200);
}

TEST_F(HttpApiTest, RandomBodiesToEveryMutationNeverGive5xx) {
  std::string running = Running(), hitl = InHitl();
  const std::vector<std::string> routes = {
      "/api/v1/jobs", "/api/v1/jobs/batch", "/api/v1/jobs/claim", "/api/v1/jobs/finish",
      "/api/v1/jobs/" + running + "/start", "/api/v1/jobs/" + running + "/heartbeat",
      "/api/v1/jobs/" + running + "/hitl", "/api/v1/jobs/" + hitl + "/hitl/response",
      "/api/v1/jobs/" + running + "/fail", "/api/v1/jobs/" + running + "/complete",
      "/api/v1/jobs/" + hitl + "/cancel"};
  std::mt19937 rng(42);
  const std::vector<std::string> atoms = {"null", "true", "-1", "0", "1e308", "-1e999", "3.5", "\"\"", "\"x\"",
                                          "[]", "{}", "\"\\ud800\"", "18446744073709551616",
                                          "[[[[[]]]]]", "{\"a\":{\"b\":[1,{}]}}"};
  const std::vector<std::string> keys = {"job_id", "type", "input", "labels", "ttl_seconds",
                                         "max_attempts", "worker", "lease_seconds", "progress",
                                         "prompt", "timeout_seconds", "request_id", "response",
                                         "result", "error", "reason", "jobs", "types", "data",
                                         "complete", "fail", "next", "if_match"};
  int answered = 0;
  for (int i = 0; i < 400; ++i) {
    std::string body;
    switch (rng() % 4) {
      case 0: {  // an object of random known keys and values
        body = "{";
        int n = rng() % 4;
        for (int k = 0; k < n; ++k) {
          if (k) body += ",";
          body += "\"" + keys[rng() % keys.size()] + "\":" + atoms[rng() % atoms.size()];
        }
        body += "}";
        break;
      }
      case 1:
        body = atoms[rng() % atoms.size()];
        break;
      case 2: {  // random bytes
        int n = rng() % 64;
        for (int k = 0; k < n; ++k) body.push_back(static_cast<char>(rng() % 256));
        break;
      }
      default:
        body = "{\"jobs\": [" + atoms[rng() % atoms.size()] + "]}";
    }
    const std::string& route = routes[rng() % routes.size()];
    Reply r = s().Call(i % 7 == 0 ? "PATCH" : "POST", i % 7 == 0 ? "/api/v1/jobs/" + running : route, body);
    ASSERT_NE(r.status, 0) << "no answer for " << route << " " << body;
    EXPECT_LT(r.status, 500) << route << " " << body << " -> " << r.raw;
    if (r.status >= 400) {
      EXPECT_TRUE(r.body["error"].is_object()) << r.raw;
    }
    ++answered;
  }
  EXPECT_EQ(answered, 400);
  EXPECT_EQ(s().Get("/readyz").status, 200);
}

}  // namespace
}  // namespace jobstore
