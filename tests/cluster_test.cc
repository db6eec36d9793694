// Several `jobstore serve --nats` instances on one replicated log, against three real NATS
// servers (a JetStream cluster) on loopback, every process started here and stopped by its PID.
// The writer's lease is 2 s, so failovers take a few seconds.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "support/child_process.h"
#include "support/log_checks.h"
#include "support/metrics.h"
#include "support/nats_cluster.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

namespace jobstore::testing {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

class ClusterTest : public ::testing::Test {
 protected:
  // On a failure, each instance's last log lines say what it was doing.
  void TearDown() override {
    if (!HasFailure()) return;
    for (std::size_t i = 0; i < instances_.size(); ++i) {
      if (!instances_[i]) continue;
      auto lines = instances_[i]->Lines();
      std::string tail;
      for (std::size_t k = lines.size() > 40 ? lines.size() - 40 : 0; k < lines.size(); ++k) {
        tail += lines[k] + "\n";
      }
      std::printf("--- instance %zu (the last 40 lines of its log) ---\n%s", i, tail.c_str());
    }
  }

  // Starts `n` instances and waits until one of them is the writer.
  void StartInstances(int n, std::vector<std::string> extra = {}) {
    for (int i = 0; i < n; ++i) StartInstance(i, extra);
    ASSERT_GE(WaitForWriter(), 0) << "no instance became the writer";
  }
  void StartInstance(int i, std::vector<std::string> extra = {}) {
    if (static_cast<int>(instances_.size()) <= i) instances_.resize(i + 1);
    instances_[i] = std::make_unique<ServerProcess>(dir_.Sub("i" + std::to_string(i)),
                                                    ClusterFlags(nats_, extra));
    if (!instances_[i]->started()) {
      std::string log;
      for (const auto& l : instances_[i]->Lines()) log += l + "\n";
      FAIL() << "instance " << i << " did not start:\n" << log;
    }
  }

  // The index of the instance whose /readyz says "writer", waiting up to `timeout`; -1: none.
  int WaitForWriter(std::chrono::seconds timeout = std::chrono::seconds(30)) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      for (std::size_t i = 0; i < instances_.size(); ++i) {
        if (!instances_[i]) continue;
        Reply r = instances_[i]->Get("/readyz");
        if (r.status == 200 && r.body.value("role", "") == "writer") return static_cast<int>(i);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }

  ServerProcess& at(int i) { return *instances_[i]; }

  // Instance i's `jobstore_cluster_connected` gauge: whether its NATS connection is up.
  bool NatsConnected(int i) {
    return MetricValue(at(i).Get("/metrics").raw, "jobstore_cluster_connected") != 0;
  }

  // `jobstore backup` of instance `from`'s (live) data dir into instance `to`'s; returns what it
  // printed ("... stream seq N"), or "" after a failure the test reports.
  std::string BackUp(int from, int to) {
    ChildProcess backup({JOBSTORE_BINARY, "backup", "--data-dir", dir_.Sub("i" + std::to_string(from)),
                         "--to", dir_.Sub("i" + std::to_string(to))});
    std::string said, line;
    while (backup.ReadLine(&line)) said += line + "\n";
    const int exit_status = backup.Wait();
    EXPECT_TRUE(WIFEXITED(exit_status) && WEXITSTATUS(exit_status) == 0) << said;
    return WIFEXITED(exit_status) && WEXITSTATUS(exit_status) == 0 ? said : "";
  }
  int live_count() const { return static_cast<int>(instances_.size()); }

  // Waits until every running instance has applied `seq`, then checks that each shows the same
  // feed (same seqs, same events) and the same jobs.
  void ExpectSameEverywhere(std::uint64_t seq) {
    std::string feed0, jobs0;
    for (auto& inst : instances_) {
      if (!inst) continue;
      Reply r = inst->Get("/api/v1/stats?min_seq=" + std::to_string(seq));
      ASSERT_EQ(r.status, 200) << r.raw;
      // From the first seq the copy holds (retention deletes expired jobs' history).
      const std::uint64_t first = r.body["log"]["first_seq"];
      ExpectGaplessFeed(*inst, first);
      std::string feed =
          inst->Get("/api/v1/events?limit=1000&after=" + std::to_string(first - 1)).raw;
      std::string jobs = inst->Get("/api/v1/jobs?limit=1000").raw;
      if (feed0.empty()) {
        feed0 = feed;
        jobs0 = jobs;
      } else {
        EXPECT_EQ(feed, feed0) << "feeds differ across instances";
        EXPECT_EQ(jobs, jobs0) << "jobs differ across instances";
      }
    }
  }

  void ExpectVerifiedOffline() {
    for (std::size_t i = 0; i < instances_.size(); ++i) {
      if (!instances_[i]) continue;
      instances_[i]->Terminate();
      int code = -1;
      std::string out = VerifyOffline(dir_.Sub("i" + std::to_string(i)), &code);
      EXPECT_EQ(code, 0) << out;
    }
  }

  static std::uint64_t SeqOf(const Reply& r) {
    const std::string s = r.Header("X-Jobstore-Seq");
    return s.empty() ? 0 : std::stoull(s);
  }

  TempDir dir_;
  NatsCluster nats_;
  std::vector<std::unique_ptr<ServerProcess>> instances_;
};

TEST_F(ClusterTest, AnyInstanceTakesWritesAndEveryInstanceServesTheSameJobs) {
  StartInstances(3);
  const int writer = WaitForWriter();
  std::mt19937 rng(7);
  std::vector<std::string> ids;
  std::uint64_t last_seq = 0;
  for (int i = 0; i < 60; ++i) {
    ServerProcess& s = at(static_cast<int>(rng() % 3));
    Reply r = s.Post("/api/v1/jobs", {{"type", "t"}, {"input", {{"n", i}}}});
    ASSERT_EQ(r.status, 201) << r.raw;
    ids.push_back(r.body["job_id"]);
    // Read-your-writes on the instance written to, even when it forwarded the write.
    Reply again = s.Get("/api/v1/jobs/" + ids.back());
    ASSERT_EQ(again.status, 200);
    EXPECT_EQ(again.body["version"], 1);
    last_seq = std::max(last_seq, SeqOf(r));
  }
  // A whole lifecycle through followers: claim, HITL, answer, complete.
  const int follower = (writer + 1) % 3;
  Reply claimed = at(follower).Post("/api/v1/jobs/claim", {{"worker", "w"}});
  ASSERT_EQ(claimed.status, 200) << claimed.raw;
  const std::string id = claimed.body["job_id"];
  Reply asked = at(follower).Post("/api/v1/jobs/" + id + "/hitl", {{"prompt", {{"q", "ok?"}}}});
  ASSERT_EQ(asked.status, 200) << asked.raw;
  Reply answered = at((writer + 2) % 3).Post(
      "/api/v1/jobs/" + id + "/hitl/response?min_seq=" + std::to_string(SeqOf(asked)),
      {{"request_id", asked.body["hitl"]["request_id"]}, {"response", {{"a", "yes"}}}});
  ASSERT_EQ(answered.status, 200) << answered.raw;
  Reply done = at(follower).Post("/api/v1/jobs/" + id + "/complete", {{"result", {{"r", 1}}}});
  ASSERT_EQ(done.status, 200) << done.raw;
  EXPECT_EQ(done.body["status"], "completed");
  // Another instance may lag; min_seq makes it wait for what was written elsewhere.
  Reply seen = at(writer).Get("/api/v1/jobs/" + id + "?min_seq=" + std::to_string(SeqOf(done)));
  EXPECT_EQ(seen.body["status"], "completed");
  ExpectSameEverywhere(SeqOf(done));
  // Bad min_seq is a clear 400.
  EXPECT_EQ(at(0).Get("/api/v1/jobs?min_seq=abc").status, 400);
  ExpectVerifiedOffline();
}

TEST_F(ClusterTest, AHitlAnswerOnOneInstanceWakesTheWorkerWaitingOnAnother) {
  StartInstances(3);
  const int a = 0, b = 1;
  std::vector<double> ms;
  for (int round = 0; round < 20; ++round) {
    Reply created = at(a).Post("/api/v1/jobs", {{"type", "hitl"}});
    const std::string id = created.body["job_id"];
    ASSERT_EQ(at(a).Post("/api/v1/jobs/" + id + "/start", {{"worker", "w"}}).status, 200);
    Reply asked = at(a).Post("/api/v1/jobs/" + id + "/hitl", {{"prompt", {{"q", round}}}});
    ASSERT_EQ(asked.status, 200) << asked.raw;
    // B must know the question before it takes the answer.
    ASSERT_EQ(at(b).Get("/api/v1/jobs/" + id + "?min_seq=" + std::to_string(SeqOf(asked))).status, 200);
    std::atomic<bool> woke{false};
    Clock::time_point answered_at, woke_at;
    std::thread waiter([&] {
      Reply r = at(a).Get("/api/v1/jobs/" + id + "/hitl/response?wait=20");
      woke_at = Clock::now();
      woke = r.status == 200 && r.body.contains("response") && !r.body["response"].is_null();
    });
    ASSERT_TRUE(at(a).WaitForWaiters(1));
    answered_at = Clock::now();
    ASSERT_EQ(at(b).Post("/api/v1/jobs/" + id + "/hitl/response",
                         {{"request_id", asked.body["hitl"]["request_id"]}, {"response", {{"a", round}}}})
                  .status,
              200);
    waiter.join();
    ASSERT_TRUE(woke) << "round " << round;
    ms.push_back(std::chrono::duration<double, std::milli>(woke_at - answered_at).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("cross-instance HITL wake (answer on B, waiter on A): p50 %.1f ms, max %.1f ms\n",
              ms[ms.size() / 2], ms.back());
  EXPECT_LT(ms[ms.size() / 2], 1000.0);  // a wake, not a poll or a timeout
}

// 16 writers spread over the instances create jobs with their own ids (a retry after an error
// uses the same id: 409 then means the earlier attempt was written). Every job acknowledged
// with 201 must be on every instance afterwards, exactly once.
struct LoadResult {
  std::set<std::string> acknowledged;
  std::set<std::string> maybe;  // answered with an error that says it may have been written
  double longest_outage_s = 0;
};

LoadResult RunWriters(std::vector<std::unique_ptr<ServerProcess>>& instances, std::atomic<bool>& stop,
                      const std::string& prefix) {
  LoadResult total;
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int w = 0; w < 16; ++w) {
    threads.emplace_back([&, w] {
      LoadResult mine;
      Clock::time_point last_ok = Clock::now();
      for (int n = 0; !stop.load(); ++n) {
        const std::string id = prefix + "-" + std::to_string(w) + "-" + std::to_string(n);
        for (int attempt = 0; !stop.load(); ++attempt) {
          ServerProcess* s = nullptr;
          for (std::size_t k = 0; k < instances.size() && !s; ++k) {
            auto& cand = instances[(w + attempt + k) % instances.size()];
            if (cand) s = cand.get();
          }
          Reply r = s->Post("/api/v1/jobs", {{"job_id", id}, {"type", "load"}});
          if (r.status == 201 || r.status == 409) {
            mine.acknowledged.insert(id);
            mine.maybe.erase(id);
            mine.longest_outage_s = std::max(
                mine.longest_outage_s,
                std::chrono::duration<double>(Clock::now() - last_ok).count());
            last_ok = Clock::now();
            break;
          }
          if (r.status != 503) mine.maybe.insert(id);  // 500 or no answer: unknown outcome
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
      }
      // A writer that got nothing through since its last acknowledgement: that gap counts too.
      mine.longest_outage_s = std::max(
          mine.longest_outage_s, std::chrono::duration<double>(Clock::now() - last_ok).count());
      std::lock_guard lock(mu);
      total.acknowledged.insert(mine.acknowledged.begin(), mine.acknowledged.end());
      total.maybe.insert(mine.maybe.begin(), mine.maybe.end());
      total.longest_outage_s = std::max(total.longest_outage_s, mine.longest_outage_s);
    });
  }
  for (auto& t : threads) t.join();
  return total;
}

void ExpectJobsPresent(ServerProcess& s, const LoadResult& load, std::uint64_t min_seq) {
  ASSERT_EQ(s.Get("/api/v1/events?limit=1&min_seq=" + std::to_string(min_seq)).status, 200);
  for (const std::string& id : load.acknowledged) {
    ASSERT_EQ(s.Get("/api/v1/jobs/" + id).status, 200) << "acknowledged job " << id << " is lost";
  }
  // Nothing applied twice: each job has exactly one job.created in the feed.
  std::map<std::string, int> created;
  std::uint64_t after = 0;
  for (;;) {
    json page = s.Get("/api/v1/events?limit=1000&after=" + std::to_string(after)).body;
    for (const auto& e : page["events"]) {
      if (e["type"] == "job.created") ++created[e["job_id"].get<std::string>()];
    }
    if (page["events"].empty()) break;
    after = page["next_after"];
  }
  for (const auto& [id, n] : created) EXPECT_EQ(n, 1) << id << " created " << n << " times";
}

TEST_F(ClusterTest, WriterSigkillUnderLoadLosesNothingAndWritesResume) {
  StartInstances(3);
  for (int round = 0; round < 5; ++round) {  // the five rounds
    std::atomic<bool> stop{false};
    LoadResult load;
    std::thread writers([&] { load = RunWriters(instances_, stop, "r" + std::to_string(round)); });
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    const int writer = WaitForWriter();
    ASSERT_GE(writer, 0);
    const auto killed_at = Clock::now();
    at(writer).Crash();
    instances_[writer].reset();
    ASSERT_GE(WaitForWriter(), 0) << "round " << round << ": no new writer";
    const double takeover_s = std::chrono::duration<double>(Clock::now() - killed_at).count();
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    stop = true;
    writers.join();
    std::printf("round %d: writer killed, new writer after %.1f s, longest write gap %.1f s, %zu "
                "jobs acknowledged\n",
                round, takeover_s, load.longest_outage_s, load.acknowledged.size());
    EXPECT_LT(takeover_s, 2 + 10);  // the lease plus 10 s
    std::uint64_t head = 0;
    for (auto& inst : instances_) {
      if (inst) head = std::max<std::uint64_t>(head, inst->Get("/api/v1/events?limit=1").body["head"]);
    }
    for (auto& inst : instances_) {
      if (inst) ExpectJobsPresent(*inst, load, head);
    }
    StartInstance(writer);  // the killed one restarts from its copy and catches up
    ExpectSameEverywhere(head);
  }
  ExpectVerifiedOffline();
}

// Writes sent to followers only, with server-chosen ids and no Idempotency-Key, while the writer
// is SIGKILLed: a forward the dead writer took but never answered is sent again under its
// request id (X-Jobstore-Request-Id) to the next writer, so every write is answered 2xx once and
// applied exactly once (before request ids, such a write was a 500 "may have been taken").
TEST_F(ClusterTest, ForwardedWritesCutOffByAWriterSigkillAreAnsweredAndAppliedOnce) {
  StartInstances(3);
  for (int round = 0; round < 2; ++round) {
    const int writer = WaitForWriter();
    ASSERT_GE(writer, 0);
    std::vector<int> followers;
    for (int i = 0; i < live_count(); ++i) {
      if (i != writer && instances_[i]) followers.push_back(i);
    }
    const std::string type = "fwd" + std::to_string(round);
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::vector<std::string> acknowledged;
    std::map<int, int> other_answers;  // status -> count
    std::vector<std::thread> threads;
    for (int w = 0; w < 12; ++w) {
      threads.emplace_back([&, w] {
        ServerProcess& s = at(followers[w % followers.size()]);
        while (!stop.load()) {
          Reply r = s.Post("/api/v1/jobs", {{"type", type}});
          std::lock_guard lock(mu);
          if (r.status == 201 || r.status == 200) {
            acknowledged.push_back(r.body["job_id"]);
          } else {
            ++other_answers[r.status];
          }
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    at(writer).Crash();
    instances_[writer].reset();
    ASSERT_GE(WaitForWriter(), 0) << "round " << round << ": no new writer";
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    stop = true;
    for (auto& t : threads) t.join();
    std::uint64_t retried = 0;
    for (int i : followers) {
      const double failures =
          MetricValue(at(i).Get("/metrics").raw, "jobstore_cluster_forward_failures_total");
      if (failures > 0) retried += static_cast<std::uint64_t>(failures);
    }
    std::printf("round %d: %zu writes acknowledged through followers, %llu forward attempts failed "
                "and were sent again\n",
                round, acknowledged.size(), static_cast<unsigned long long>(retried));
    for (const auto& [status, n] : other_answers) {
      ADD_FAILURE() << n << " writes answered " << status << " in round " << round;
    }
    // Each acknowledged job was created exactly once, and no job that was not acknowledged.
    ServerProcess& reader = at(followers.front());
    const std::uint64_t head = reader.Get("/api/v1/events?limit=1").body["head"];
    ASSERT_EQ(reader.Get("/api/v1/stats?min_seq=" + std::to_string(head)).status, 200);
    std::map<std::string, int> created;
    for (std::uint64_t after = 0;;) {
      json page = reader.Get("/api/v1/events?type=job.created&limit=1000&after=" + std::to_string(after)).body;
      for (const auto& e : page["events"]) {
        if (e["data"].value("type", "") == type) ++created[e["job_id"].get<std::string>()];
      }
      if (page["events"].empty()) break;
      after = page["next_after"];
    }
    const std::set<std::string> acked(acknowledged.begin(), acknowledged.end());
    EXPECT_EQ(acked.size(), acknowledged.size()) << "one job answered to two writes";
    EXPECT_EQ(created.size(), acked.size()) << "jobs created that no answer reported, or lost";
    for (const auto& [id, n] : created) {
      EXPECT_EQ(n, 1) << id << " created " << n << " times";
      EXPECT_TRUE(acked.count(id)) << id << " was created but never acknowledged";
    }
    StartInstance(writer);  // the killed one restarts from its copy and catches up
  }
}

// A new instance seeded from a live instance's backup (jobstore backup, which names the stream
// seq the copy reached) follows the stream from there, not from its start, and serves the same
// jobs: the way to add an instance to a long-lived cluster without replaying all its history.
TEST_F(ClusterTest, ANewInstanceSeededFromABackupFollowsTheStreamFromTheBackupsSeq) {
  StartInstances(3);
  const int follower = (WaitForWriter() + 1) % 3;
  std::vector<json> batch;
  for (int i = 0; i < 200; ++i) batch.push_back({{"type", "seed"}, {"input", {{"i", i}}}});
  for (int k = 0; k < 10; ++k) {  // 10 messages of 200 events before the backup
    ASSERT_EQ(at(follower).Post("/api/v1/jobs/batch", {{"jobs", batch}}).status, 201);
  }
  const std::string said = BackUp(follower, 3);
  ASSERT_FALSE(said.empty());
  const auto pos = said.find("stream seq ");
  ASSERT_NE(pos, std::string::npos) << said;
  const std::uint64_t backup_stream_seq = std::stoull(said.substr(pos + 11));
  EXPECT_GE(backup_stream_seq, 10u) << said;
  for (int i = 0; i < 5; ++i) ASSERT_EQ(at(follower).Post("/api/v1/jobs", {{"type", "after"}}).status, 201);
  StartInstance(3);  // on the copy
  ASSERT_TRUE(at(3).WaitForLine("replication: caught up with stream seq", std::chrono::seconds(30)));
  std::string caught_up;
  for (const auto& l : at(3).Lines()) {
    if (l.find("caught up with stream seq") != std::string::npos) caught_up = l;
  }
  std::printf("backup: %s", said.c_str());
  std::printf("seeded instance: %s\n", caught_up.c_str());
  // Only what came after the backup was read from the stream (5 creates), not the 10 batches
  // before it: "caught up with stream seq N: <messages> messages, ...".
  const auto m = caught_up.find(": ", caught_up.find("stream seq"));
  ASSERT_NE(m, std::string::npos);
  EXPECT_LT(std::stoull(caught_up.substr(m + 2)), 10u) << caught_up;
  const std::uint64_t head = at(follower).Get("/api/v1/events?limit=1").body["head"];
  EXPECT_EQ(at(3).Get("/api/v1/stats?min_seq=" + std::to_string(head)).body["jobs"]["total"], 2005);
  ExpectSameEverywhere(head);
}

// --stream-max-age: NATS drops messages older than it (at least 2 minutes, the duplicate
// window; here the old messages are purged through JetStream's API instead of waited for). The
// live instances keep following; a new instance with an empty directory (its next message, seq 1,
// is gone) stops following loudly and names the way out; seeded from a live instance's backup,
// it follows and serves every job.
TEST_F(ClusterTest, ACopyBehindTheStreamsAgedOutStartStopsLoudlyAndABackupSeedsIt) {
  const std::vector<std::string> aged = {"--stream", "AGED", "--stream-max-age", "2m"};
  StartInstances(2, aged);
  const int follower = (WaitForWriter() + 1) % 2;
  for (int i = 0; i < 20; ++i) ASSERT_EQ(at(follower).Post("/api/v1/jobs", {{"type", "old"}}).status, 201);
  const std::string purged = PurgeStreamBefore(nats_, "AGED", 10);
  ASSERT_NE(purged.find("\"success\":true"), std::string::npos) << purged;
  ASSERT_EQ(at(follower).Post("/api/v1/jobs", {{"type", "new"}}).status, 201);  // writes go on
  StartInstance(2, aged);  // empty: it would need seq 1
  Reply ready;
  for (int i = 0; i < 100; ++i) {
    ready = at(2).Get("/readyz");
    if (ready.raw.find("aged out") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(ready.status, 503) << ready.raw;
  EXPECT_NE(ready.raw.find("Seed this instance from a backup"), std::string::npos) << ready.raw;
  EXPECT_TRUE(at(2).WaitForLine("this copy stops following the stream", std::chrono::seconds(1)));
  instances_[2].reset();
  // Seeded from the live follower's backup instead: it follows, and holds all 22 jobs.
  std::filesystem::remove_all(dir_.Sub("i2"));
  ASSERT_FALSE(BackUp(follower, 2).empty());
  ASSERT_EQ(at(follower).Post("/api/v1/jobs", {{"type", "new"}}).status, 201);
  StartInstance(2, aged);
  const std::uint64_t head = at(follower).Get("/api/v1/events?limit=1").body["head"];
  Reply stats = at(2).Get("/api/v1/stats?min_seq=" + std::to_string(head));
  ASSERT_EQ(stats.status, 200) << stats.raw;
  EXPECT_EQ(stats.body["jobs"]["total"], 22);  // 20 old (held by the backup), 2 new
  EXPECT_EQ(at(2).Get("/readyz").status, 200);
  // An instance asking for another max age on this stream is refused, the difference named.
  ServerProcess other(dir_.Sub("other"), ClusterFlags(nats_, {"--stream", "AGED", "--stream-max-age", "1h"}));
  EXPECT_TRUE(other.WaitForLine("max_age (--stream-max-age) is 120000 ms, needs 3600000 ms", std::chrono::seconds(10)));
  // Below the duplicate window is refused before anything starts.
  ServerProcess too_short(dir_.Sub("short"), ClusterFlags(nats_, {"--stream", "AGED", "--stream-max-age", "90s"}));
  EXPECT_TRUE(too_short.WaitForLine("--stream-max-age must be at least 2m", std::chrono::seconds(10)));
}

// Heartbeats without progress extend a lease on the writer only (they are not in the log): a new
// writer must give running leases a fresh term instead of expiring a worker that is alive.
TEST_F(ClusterTest, ALiveWorkersLeaseSurvivesAFailover) {
  StartInstances(3);
  const int writer = WaitForWriter();
  const int follower = (writer + 1) % 3;
  ASSERT_EQ(at(follower).Post("/api/v1/jobs", {{"job_id", "long"}}).status, 201);
  Reply claimed = at(follower).Post("/api/v1/jobs/claim", {{"worker", "w"}, {"lease_seconds", 5}});
  ASSERT_EQ(claimed.status, 200) << claimed.raw;
  // The worker heartbeats every 500 ms, past the lease the log knows of.
  std::atomic<bool> paused{false}, stop{false};
  std::atomic<int> beats_after_takeover{0};
  std::thread heartbeats([&] {
    while (!stop) {
      if (!paused) {
        Reply r = at(follower).Post("/api/v1/jobs/long/heartbeat", json::object());
        if (r.status == 200 && beats_after_takeover >= 0) ++beats_after_takeover;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  });
  std::this_thread::sleep_for(std::chrono::seconds(6));
  // Its next heartbeats are lost while the writer dies; it is back 2 s after the takeover
  // (within a fresh 5 s term, long after the term the log knows of).
  paused = true;
  at(writer).Crash();
  instances_[writer].reset();
  ASSERT_GE(WaitForWriter(), 0);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  beats_after_takeover = 0;
  paused = false;
  std::this_thread::sleep_for(std::chrono::seconds(3));
  stop = true;
  heartbeats.join();
  EXPECT_GT(beats_after_takeover.load(), 0);
  Reply job = at(follower).Get("/api/v1/jobs/long");
  EXPECT_EQ(job.body["status"], "running") << job.raw;
  EXPECT_EQ(job.body["worker"], "w");
  // The reply is kept: a range-for over a temporary's member would read freed memory (ASan).
  const json events = at(follower).Get("/api/v1/jobs/long/events").body;
  for (const auto& e : events["events"]) {
    EXPECT_NE(e["type"], "job.lease_expired");
  }
}

TEST_F(ClusterTest, NatsServerSigkillUnderLoadLosesNothing) {
  StartInstances(3);
  for (int round = 0; round < nats_.size(); ++round) {
    std::atomic<bool> stop{false};
    LoadResult load;
    std::thread writers([&] { load = RunWriters(instances_, stop, "n" + std::to_string(round)); });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    // The stream's leader each round (after the last round's kill, NATS may still be electing).
    int leader = -1;
    for (int t = 0; t < 100 && leader < 0; ++t) {
      leader = StreamLeader(nats_, "JOBSTORE");
      if (leader < 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_GE(leader, 0) << "JetStream named no leader for the stream JOBSTORE";
    const auto killed_at = Clock::now();
    nats_.Kill(leader);
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    nats_.Start(leader);
    // Writes resume within the lease + 10 s + NATS's own election (4-9 s, SCALE-OUT.md).
    const auto bound = std::chrono::seconds(2 + 10 + 9);
    bool resumed = false;
    for (int n = 0; !resumed && Clock::now() - killed_at < bound; ++n) {
      Reply r = at(n % 3).Post("/api/v1/jobs", {{"job_id", "probe-" + std::to_string(round) + "-" + std::to_string(n)}});
      resumed = r.status == 201;
      if (!resumed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    const double resumed_after_s = std::chrono::duration<double>(Clock::now() - killed_at).count();
    std::this_thread::sleep_for(std::chrono::seconds(1));
    stop = true;
    writers.join();
    std::printf("NATS round %d: killed the stream's leader n%d; writes resumed %.1f s after the "
                "kill, %zu jobs acknowledged, longest write gap %.1f s\n",
                round, leader, resumed_after_s, load.acknowledged.size(), load.longest_outage_s);
    ASSERT_TRUE(resumed) << "writes did not resume within " << bound.count() << " s";
    EXPECT_GT(load.acknowledged.size(), 0u);
    std::uint64_t head = 0;
    for (auto& inst : instances_) head = std::max<std::uint64_t>(head, inst->Get("/api/v1/events?limit=1").body["head"]);
    for (auto& inst : instances_) ExpectJobsPresent(*inst, load, head);
    ExpectSameEverywhere(head);
  }
  ExpectVerifiedOffline();
}

TEST_F(ClusterTest, APausedWriterCannotAppendAfterItsLeasePassed) {
  StartInstances(3);
  const int old_writer = WaitForWriter();
  ::kill(at(old_writer).pid(), SIGSTOP);
  // Another instance takes over while the old writer sleeps.
  int new_writer = -1;
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline && new_writer < 0) {
    for (int i = 0; i < 3; ++i) {
      if (i == old_writer) continue;
      Reply r = at(i).Get("/readyz");
      if (r.body.value("role", "") == "writer") new_writer = i;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GE(new_writer, 0);
  ASSERT_EQ(at(new_writer).Post("/api/v1/jobs", {{"job_id", "after-takeover"}}).status, 201);
  // A write sent to the paused writer waits in its socket; it is served after SIGCONT, when
  // the old writer still believes it writes: the fence must refuse it (503) or it goes through
  // the new writer (201). Either way the log shows it once or not at all.
  Reply stale;
  std::thread late([&] { stale = at(old_writer).Post("/api/v1/jobs", {{"job_id", "from-the-paused"}}); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(at(old_writer).pid(), SIGCONT);
  late.join();
  EXPECT_TRUE(stale.status == 503 || stale.status == 201) << stale.status << " " << stale.raw;
  Reply head = at(new_writer).Post("/api/v1/jobs", {{"job_id", "last"}});
  ASSERT_EQ(head.status, 201);
  for (int i = 0; i < 3; ++i) {
    Reply r = at(i).Get("/api/v1/jobs/from-the-paused?min_seq=" + std::to_string(SeqOf(head)));
    EXPECT_EQ(r.status, stale.status == 201 ? 200 : 404) << "instance " << i;
  }
  ExpectSameEverywhere(SeqOf(head));
  EXPECT_EQ(at(old_writer).Get("/readyz").body.value("role", ""), "follower");
  ExpectVerifiedOffline();
}

TEST_F(ClusterTest, ANewInstanceCatchesUpAndAStoppedOneResumesFromItsCopy) {
  StartInstances(2);
  std::vector<json> batch;
  for (int i = 0; i < 500; ++i) batch.push_back({{"type", "bulk"}, {"input", {{"i", i}}}});
  for (int b = 0; b < 10; ++b) {
    Reply r = at(b % 2).Post("/api/v1/jobs/batch", {{"jobs", batch}});
    ASSERT_EQ(r.status, 201) << r.raw;
  }
  at(1).Terminate();
  instances_[1].reset();
  Reply more = at(0).Post("/api/v1/jobs", {{"type", "while-stopped"}});
  ASSERT_EQ(more.status, 201);
  StartInstance(1);  // from its own copy, then the rest from the stream
  StartInstance(2);  // an empty data dir: the whole stream
  ExpectSameEverywhere(SeqOf(more));
  EXPECT_EQ(at(2).Get("/api/v1/stats").body["jobs"]["total"], 5001);
  ExpectVerifiedOffline();
}

TEST_F(ClusterTest, CompactionRunsOnTheWriterAndExpiredJobsVanishEverywhere) {
  StartInstances(3, {"--compaction-interval", "300ms", "--history-retention", "1s"});
  Reply created = at(0).Post("/api/v1/jobs", {{"job_id", "short"}, {"ttl_seconds", 1}});
  ASSERT_EQ(created.status, 201) << created.raw;
  ASSERT_EQ(at(1).Post("/api/v1/jobs/short/start", {{"worker", "w"}}).status, 200);
  Reply done = at(2).Post("/api/v1/jobs/short/complete", {{"result", 1}});
  ASSERT_EQ(done.status, 200);
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  bool gone = false;
  while (Clock::now() < deadline && !gone) {
    gone = true;
    for (int i = 0; i < 3; ++i) gone = gone && at(i).Get("/api/v1/jobs/short").status == 404;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(gone);
  // One instance expired it: one job.expired in the shared log (seq 4, after create, start and
  // complete), counted by that instance's compaction alone.
  const std::uint64_t head = at(0).Get("/api/v1/stats").body["log"]["last_seq"];
  EXPECT_EQ(head, 4u);
  int expired = 0;
  for (int i = 0; i < 3; ++i) {
    const std::string metrics = at(i).Get("/metrics").raw;
    expired += metrics.find("\njobstore_compaction_jobs_expired_total 1") != std::string::npos;
  }
  EXPECT_EQ(expired, 1);
  // Retention is the writer's: it puts a marker in the stream and deletes the expired job's
  // history (its three events and the expiry); every other copy deletes the same when it
  // applies the marker. Every instance then answers 410 below the same new start.
  for (int i = 0; i < 3; ++i) {
    Reply feed_start;
    const auto until = Clock::now() + std::chrono::seconds(20);
    do {
      feed_start = at(i).Get("/api/v1/events?after=0");
      if (feed_start.status == 410) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } while (Clock::now() < until);
    EXPECT_EQ(feed_start.status, 410) << "instance " << i << ": " << feed_start.raw;
    EXPECT_EQ(feed_start.body["first"], 5) << "instance " << i;
  }
  // The writer's compaction deleted the four events; each follower's tail deleted them on the
  // marker, and no follower's own compaction deleted anything.
  // (The counters move when the deletion's RocksDB compaction is done, just after the 410.)
  int deleted_by_compaction = 0, deleted_on_marker = 0;
  for (const auto until = Clock::now() + std::chrono::seconds(10); Clock::now() < until;) {
    deleted_by_compaction = deleted_on_marker = 0;
    for (int i = 0; i < 3; ++i) {
      const std::string metrics = at(i).Get("/metrics").raw;
      deleted_by_compaction += MetricValue(metrics, "jobstore_compaction_events_deleted_total") == 4;
      const double on_marker =
          MetricValue(metrics, "jobstore_cluster_retention_events_deleted_total");
      ASSERT_GE(on_marker, 0) << "instance " << i << " has no retention marker counter";
      deleted_on_marker += on_marker == 4;
    }
    if (deleted_by_compaction == 1 && deleted_on_marker == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(deleted_by_compaction, 1);
  EXPECT_EQ(deleted_on_marker, 2);
  // An instance that joins later with an empty copy applies the marker too.
  StartInstance(3);
  Reply late;
  const auto until = Clock::now() + std::chrono::seconds(20);
  do {
    late = at(3).Get("/api/v1/events?after=0");
    if (late.status == 410) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (Clock::now() < until);
  EXPECT_EQ(late.status, 410) << late.raw;
  EXPECT_EQ(late.body["first"], 5);
  ExpectSameEverywhere(head);
}

TEST_F(ClusterTest, WithNatsDownReadsWorkWritesAnswer503ThenResume) {
  StartInstances(3);
  Reply created = at(0).Post("/api/v1/jobs", {{"job_id", "before"}});
  ASSERT_EQ(created.status, 201);
  for (int i = 0; i < 3; ++i) {  // every copy has it before NATS goes
    ASSERT_EQ(at(i).Get("/api/v1/jobs/before?min_seq=" + std::to_string(SeqOf(created))).status, 200);
  }
  for (int i = 0; i < nats_.size(); ++i) nats_.Kill(i);
  // Once the instances saw their connections drop, a write is refused: nothing is sent, then or
  // later. (A publish already on the wire when NATS died has an unknown outcome: 500, never 503.)
  for (int i = 0; i < 3; ++i) {
    const auto noticed_by = Clock::now() + std::chrono::seconds(30);
    while (NatsConnected(i) && Clock::now() < noticed_by) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_FALSE(NatsConnected(i)) << "instance " << i << " did not notice NATS go in 30 s";
  }
  for (int i = 0; i < 3; ++i) EXPECT_EQ(at(i).Get("/api/v1/jobs/before").status, 200);
  const auto t0 = Clock::now();
  Reply refused = at(1).Post("/api/v1/jobs", {{"job_id", "during"}});
  const double took = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_EQ(refused.status, 503) << refused.raw;
  EXPECT_LT(took, 10.0);
  for (int i = 0; i < nats_.size(); ++i) nats_.Start(i);
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  int status = 0;
  while (Clock::now() < deadline && status != 201) {
    status = at(2).Post("/api/v1/jobs", {{"job_id", "after"}}).status;
    if (status != 201) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(status, 201) << "writes did not resume after NATS came back";
  EXPECT_EQ(at(0).Get("/api/v1/jobs/during").status, 404);
  // Every instance takes writes again once its own NATS connection is back (each reconnects on
  // its own schedule: meanwhile it answers 503, nothing written).
  Reply last;
  std::string first_refusal;
  const auto resumed_at = Clock::now();
  do {
    last = at(0).Post("/api/v1/jobs", {{"job_id", "last"}});
    if (last.status != 503) break;
    if (first_refusal.empty()) first_refusal = last.body.dump();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  } while (Clock::now() < deadline);
  std::printf("instance 0 took writes again %.1f s after instance 2 did%s%s\n",
              std::chrono::duration<double>(Clock::now() - resumed_at).count(),
              first_refusal.empty() ? "" : "; it answered first: ", first_refusal.c_str());
  ASSERT_EQ(last.status, 201) << last.raw;
  ExpectSameEverywhere(SeqOf(last));
  ExpectVerifiedOffline();
}

}  // namespace
}  // namespace jobstore::testing
