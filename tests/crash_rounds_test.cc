// Crash rounds: the real server SIGKILLed at a random moment while 16 writers run jobs through
// their whole lifecycle over HTTP, JOBSTORE_CRASH_ROUNDS times (default 20) on one data dir.
// After each kill: `jobstore inspect verify` is clean on the crashed log; after each restart
// every acknowledged mutation of every round is there and the feed is gapless.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "support/log_checks.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

namespace jobstore {
namespace {

using testing::ExpectGaplessFeed;
using testing::Reply;
using testing::ServerProcess;
using testing::TempDir;
using testing::VerifyOffline;

int Rounds() {
  const char* env = std::getenv("JOBSTORE_CRASH_ROUNDS");
  return env ? std::atoi(env) : 20;
}

// One writer: full lifecycles until the server stops answering. Records the newest acknowledged
// version of each job.
void RunLifecycles(const ServerProcess& s, const std::string& prefix, std::mutex& mu,
                   std::map<std::string, std::uint64_t>& acked) {
  auto ack = [&](const std::string& id, const Reply& r) {
    if (r.status != 200 && r.status != 201) return false;
    std::lock_guard lock(mu);
    acked[id] = r.body["version"].get<std::uint64_t>();
    return true;
  };
  for (int i = 0;; ++i) {
    std::string id = prefix + std::to_string(i);
    std::string path = "/api/v1/jobs/" + id;
    if (!ack(id, s.Post("/api/v1/jobs", {{"job_id", id}, {"input", {{"n", i}}}}))) return;
    if (!ack(id, s.Post(path + "/start", {{"worker", prefix}, {"lease_seconds", 60}}))) return;
    if (!ack(id, s.Call("PATCH", path, R"({"progress":{"percent":50},"data":{"step":1}})"))) return;
    if (!ack(id, s.Post(path + "/hitl", {{"prompt", {{"question", "ok?"}}}}))) return;
    if (!ack(id, s.Post(path + "/hitl/response", {{"request_id", "h-1"}, {"response", {{"ok", true}}}}))) return;
    if (i % 3 == 0) {
      if (!ack(id, s.Post(path + "/fail", {{"error", {{"code", "x"}, {"message", "m"}}}}))) return;
    } else {
      if (!ack(id, s.Post(path + "/complete", {{"result", {{"n", i}}}}))) return;
    }
  }
}

TEST(CrashRounds, SigkillUnderSixteenLifecycleWritersLosesNothingAndVerifiesClean) {
  TempDir dir;
  const std::string data = dir.Sub("data");
  std::random_device seed_source;
  const unsigned seed = seed_source();
  std::mt19937 rng(seed);
  std::printf("[ seed ] %u\n", seed);
  std::map<std::string, std::uint64_t> acked;  // every round's acknowledgements
  std::mutex mu;
  const int rounds = Rounds();
  for (int round = 0; round < rounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round) + " seed " + std::to_string(seed));
    {
      ServerProcess s(data);
      ASSERT_TRUE(s.started());
      for (const auto& [id, version] : acked) {
        Reply r = s.Get("/api/v1/jobs/" + id);
        ASSERT_EQ(r.status, 200) << id;
        ASSERT_GE(r.body["version"].get<std::uint64_t>(), version) << id;
      }
      ExpectGaplessFeed(s);
      std::vector<std::thread> writers;
      for (int t = 0; t < 16; ++t) {
        std::string prefix = "r" + std::to_string(round) + "w" + std::to_string(t) + "-";
        writers.emplace_back([&, prefix] { RunLifecycles(s, prefix, mu, acked); });
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 450));
      s.Crash();  // SIGKILL at a random moment of the writers' traffic
      for (auto& w : writers) w.join();
    }
    int code = -1;
    std::string report = VerifyOffline(data, &code);
    ASSERT_EQ(code, 0) << report;
  }
  ServerProcess s(data);
  ASSERT_TRUE(s.started());
  for (const auto& [id, version] : acked) {
    ASSERT_GE(s.Get("/api/v1/jobs/" + id).body["version"].get<std::uint64_t>(), version) << id;
  }
  ExpectGaplessFeed(s);
  std::printf("[ measured ] %d rounds, %zu jobs acknowledged, none lost\n", rounds, acked.size());
}

}  // namespace
}  // namespace jobstore
