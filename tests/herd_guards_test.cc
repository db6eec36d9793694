// The pieces of the server that a woken herd (thousands of long-polls answered at once) passes
// through beside the writes: the turn for rendering woken answers, the request metrics every
// answer counts itself in, and the allocation cache a waiting thread sets aside.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "metrics.h"
#include "thread_cache.h"
#include "woken_answer_gate.h"

namespace jobstore::http {
namespace {

using std::chrono::milliseconds;

TEST(WokenAnswerTurnTest, OneTurnAtATime) {
  std::atomic<int> inside{0}, most{0}, done{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&] {
      for (int round = 0; round < 200; ++round) {
        WokenAnswerTurn turn;
        const int now = ++inside;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        --inside;
      }
      ++done;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(done.load(), 16);
  EXPECT_EQ(most.load(), 1);
}

TEST(WokenAnswerTurnTest, TheNextTurnWaitsForTheOneBefore) {
  std::atomic<bool> second_inside{false};
  std::thread second;
  {
    WokenAnswerTurn first;
    second = std::thread([&] {
      WokenAnswerTurn turn;
      second_inside = true;
    });
    std::this_thread::sleep_for(milliseconds(50));
    EXPECT_FALSE(second_inside.load());
  }
  second.join();
  EXPECT_TRUE(second_inside.load());
}

// Counted from many threads at once, every request is in the scrape, and the histogram's
// buckets read as cumulative with the count at least the last bucket.
TEST(RequestMetricsTest, ConcurrentObservationsAreAllCounted) {
  RequestMetrics metrics;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5000; ++i) {
        const std::string route = i % 2 ? "/api/v1/jobs" : "/api/v1/jobs/{id}";
        metrics.Observe(route, "GET", t % 2 ? 200 : 404,
                        std::chrono::duration<double>((i % 7) * 0.0004));
      }
    });
  }
  std::string during;
  metrics.Render(during);  // while they count: must not crash or tear
  for (auto& t : threads) t.join();
  std::string out;
  metrics.Render(out);
  auto value = [&](const std::string& series) {
    const auto at = out.find(series + " ");
    EXPECT_NE(at, std::string::npos) << series;
    return at == std::string::npos ? 0ULL : std::stoull(out.substr(at + series.size() + 1));
  };
  EXPECT_EQ(value("jobstore_http_requests_total{route=\"/api/v1/jobs\",method=\"GET\",status=\"200\"}"),
            10000u);
  EXPECT_EQ(value("jobstore_http_requests_total{route=\"/api/v1/jobs/{id}\",method=\"GET\",status=\"404\"}"),
            10000u);
  EXPECT_EQ(value("jobstore_http_request_duration_seconds_count{route=\"/api/v1/jobs\"}"), 20000u);
  EXPECT_EQ(value("jobstore_http_request_duration_seconds_bucket{route=\"/api/v1/jobs\",le=\"+Inf\"}"),
            20000u);
  // 0, 0.4 and 0.8 ms are at most 1 ms: 3 of every 7 latencies (i odd: i % 7 spreads evenly).
  const auto le_1ms =
      value("jobstore_http_request_duration_seconds_bucket{route=\"/api/v1/jobs\",le=\"0.001\"}");
  EXPECT_NEAR(static_cast<double>(le_1ms), 20000.0 * 3 / 7, 20);
}

// Each bound holds the latencies at most it (a latency on a bound counts there), every bucket
// the ones before it, +Inf and the count every observation, the slowest beyond every bound too.
TEST(RequestMetricsTest, BucketsAreCumulativeWithInclusiveBounds) {
  RequestMetrics metrics;
  const std::string route = "/api/v1/jobs", method = "POST";
  for (double seconds : {0.0001, 0.001, 0.003, 7.0}) {
    metrics.Observe(route, method, 201, std::chrono::duration<double>(seconds));
  }
  std::string out;
  metrics.Render(out);
  auto bucket = [&](const std::string& le) {
    const std::string series =
        "jobstore_http_request_duration_seconds_bucket{route=\"/api/v1/jobs\",le=\"" + le + "\"} ";
    const auto at = out.find(series);
    EXPECT_NE(at, std::string::npos) << series;
    return at == std::string::npos ? -1LL : std::stoll(out.substr(at + series.size()));
  };
  EXPECT_EQ(bucket("0.0005"), 1);
  EXPECT_EQ(bucket("0.001"), 2);
  EXPECT_EQ(bucket("0.0025"), 2);
  EXPECT_EQ(bucket("0.005"), 3);
  EXPECT_EQ(bucket("1"), 3);
  EXPECT_EQ(bucket("5"), 3);
  EXPECT_EQ(bucket("+Inf"), 4);
  EXPECT_NE(out.find("jobstore_http_request_duration_seconds_count{route=\"/api/v1/jobs\"} 4\n"),
            std::string::npos);
  const std::string requests =
      "jobstore_http_requests_total{route=\"/api/v1/jobs\",method=\"POST\",status=\"201\"} 4\n";
  EXPECT_NE(out.find(requests), std::string::npos);
}

// jemalloc's own answer: whether the calling thread's cache is on.
bool ThreadCacheOn() {
  using Mallctl = int (*)(const char*, void*, std::size_t*, void*, std::size_t);
  const auto mallctl = reinterpret_cast<Mallctl>(dlsym(RTLD_DEFAULT, "mallctl"));
  bool on = false;
  std::size_t size = sizeof on;
  EXPECT_EQ(mallctl("thread.tcache.enabled", &on, &size, nullptr, 0), 0);
  return on;
}

TEST(ThreadCacheTest, AWaitSetsTheThreadsCacheAsideUntilItsNextRequest) {
  if (dlsym(RTLD_DEFAULT, "mallctl") == nullptr) {
    GTEST_SKIP() << "jemalloc is not linked (sanitizer and fuzz builds bring their own allocator)";
  }
  std::thread([] {
    ASSERT_TRUE(ThreadCacheOn());
    SetThreadCacheAsideForWait();
    EXPECT_FALSE(ThreadCacheOn());
    std::thread([] { EXPECT_TRUE(ThreadCacheOn()); }).join();  // another thread keeps its own
    SetThreadCacheAsideForWait();  // a second wait of the same request
    EXPECT_FALSE(ThreadCacheOn());
    RestoreThreadCache();
    EXPECT_TRUE(ThreadCacheOn());
    RestoreThreadCache();  // a request after one that did not wait
    EXPECT_TRUE(ThreadCacheOn());
  }).join();
}

}  // namespace
}  // namespace jobstore::http
