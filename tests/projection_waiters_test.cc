// JobProjection's waiters: a herd on one job is woken in turn and none is lost, whatever times
// out, re-parks or joins while the turn passes along; a batch nobody waits on wakes nobody.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "jobstore/projections/job_projection.h"

namespace jobstore {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

JobPtr Version(const std::string& id, std::uint64_t version, std::uint64_t seq) {
  auto job = std::make_shared<Job>();
  job->job_id = id;
  job->version = version;
  job->created_seq = 1;
  job->last_seq = seq;
  return job;
}

void Apply(JobProjection& p, const std::string& id, std::uint64_t version, std::uint64_t seq) {
  p.Replace({{id, Version(id, version, seq)}}, seq);
}

void WaitUntilParked(const JobProjection& p, std::size_t n) {
  const auto give_up = steady_clock::now() + seconds(60);
  while (p.OpenWaiters() < n && steady_clock::now() < give_up) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  ASSERT_EQ(p.OpenWaiters(), n);
}

TEST(ProjectionWaitersTest, OneChangeWakesEveryWaiterOfAHerdInTurn) {
  JobProjection p;
  p.Load({Version("herd", 1, 1)}, 1);
  constexpr int kWaiters = 200;
  std::atomic<int> saw_new{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    waiters.emplace_back([&] {
      JobPtr job = p.WaitForVersion("herd", 1, steady_clock::now() + seconds(60));
      if (job && job->version == 2) ++saw_new;
    });
  }
  WaitUntilParked(p, kWaiters);
  const auto changed = steady_clock::now();
  Apply(p, "herd", 2, 2);
  for (auto& w : waiters) w.join();
  EXPECT_EQ(saw_new.load(), kWaiters);
  EXPECT_LT(steady_clock::now() - changed, seconds(20));  // woken, not timed out
  EXPECT_EQ(p.OpenWaiters(), 0u);
}

// Waiters that time out between the change and their turn, and waiters that want a later
// version (they park again, behind the turn), must not stop the turn reaching the others.
TEST(ProjectionWaitersTest, TheTurnPassesTimedOutAndReparkedWaitersBy) {
  JobProjection p;
  p.Load({Version("j", 1, 1)}, 1);
  std::atomic<int> woken{0}, timed_out{0}, still_waiting_for_3{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 90; ++i) {
    threads.emplace_back([&, i] {
      if (i % 3 == 0) {  // gives up before the change: leaves from among the others
        JobPtr job = p.WaitForVersion("j", 1, steady_clock::now() + milliseconds(300));
        if (job->version == 1) ++timed_out;
        else ++woken;
      } else if (i % 3 == 1) {  // wants version 3: parks again after version 2
        JobPtr job = p.WaitForVersion("j", 2, steady_clock::now() + seconds(60));
        if (job->version == 3) ++still_waiting_for_3;
      } else {
        JobPtr job = p.WaitForVersion("j", 1, steady_clock::now() + seconds(60));
        if (job->version >= 2) ++woken;
      }
    });
  }
  // The short waiters gone (parked first or not: a slow machine may start one after its
  // deadline), the others parked.
  const auto give_up = steady_clock::now() + seconds(60);
  while (timed_out.load() < 30 && steady_clock::now() < give_up) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  ASSERT_EQ(timed_out.load(), 30);
  WaitUntilParked(p, 60);
  Apply(p, "j", 2, 2);
  const auto woken_by = steady_clock::now() + seconds(60);
  while (woken.load() < 30 && steady_clock::now() < woken_by) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  EXPECT_EQ(woken.load(), 30);
  EXPECT_EQ(still_waiting_for_3.load(), 0);
  WaitUntilParked(p, 30);  // the version-3 waiters, parked again
  Apply(p, "j", 3, 3);
  for (auto& t : threads) t.join();
  EXPECT_EQ(still_waiting_for_3.load(), 30);
  EXPECT_EQ(p.OpenWaiters(), 0u);
}

// A waiter that parks while a turn is passing along, and one change after another while it
// does: each waiter sees a version newer than the one it waited after, none is left parked.
TEST(ProjectionWaitersTest, ChangesInARowWhileWaitersComeAndGoLoseNoWakeUp) {
  JobProjection p;
  p.Load({Version("j", 1, 1)}, 1);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> version{1};
  std::atomic<int> answered{0}, stale{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 16; ++i) {
    waiters.emplace_back([&] {
      while (!stop) {
        const std::uint64_t after = p.Get("j")->version;
        JobPtr job = p.WaitForVersion("j", after, steady_clock::now() + seconds(20));
        if (job->version <= after && !stop) ++stale;
        ++answered;
      }
    });
  }
  for (std::uint64_t v = 2; v <= 2000; ++v) {
    Apply(p, "j", v, v);
    if (v % 100 == 0) std::this_thread::sleep_for(milliseconds(1));
  }
  stop = true;
  std::atomic<bool> joined{false};
  std::thread last_rounds([&] {  // wakes whoever parked just before it saw `stop`
    for (std::uint64_t v = 2001; !joined; ++v) {
      Apply(p, "j", v, v);
      std::this_thread::sleep_for(milliseconds(1));
    }
  });
  for (auto& w : waiters) w.join();
  joined = true;
  last_rounds.join();
  EXPECT_EQ(stale.load(), 0);  // nobody waited its 20 s out
  EXPECT_GT(answered.load(), 16);
  EXPECT_EQ(p.OpenWaiters(), 0u);
}

TEST(ProjectionWaitersTest, AFeedFollowingOneJobIsWokenByThatJobOnly) {
  JobProjection p;
  p.Load({Version("watched", 1, 1)}, 1);
  std::atomic<bool> returned{false};
  std::thread reader([&] {
    p.WaitForJobEvent("watched", 1, steady_clock::now() + seconds(60));
    returned = true;
  });
  WaitUntilParked(p, 1);
  for (std::uint64_t seq = 2; seq < 50; ++seq) Apply(p, "other" + std::to_string(seq), 1, seq);
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_FALSE(returned.load());
  Apply(p, "watched", 2, 50);
  reader.join();
  EXPECT_TRUE(returned.load());
}

TEST(ProjectionWaitersTest, ShutdownReleasesAWholeHerdAtOnce) {
  JobProjection p;
  p.Load({Version("j", 1, 1)}, 1);
  std::vector<std::thread> waiters;
  for (int i = 0; i < 50; ++i) {
    waiters.emplace_back([&] { p.WaitForVersion("j", 1, steady_clock::now() + seconds(60)); });
  }
  WaitUntilParked(p, 50);
  const auto start = steady_clock::now();
  p.Shutdown();
  for (auto& w : waiters) w.join();
  EXPECT_LT(steady_clock::now() - start, seconds(20));
  EXPECT_EQ(p.OpenWaiters(), 0u);
}

}  // namespace
}  // namespace jobstore
