// RecentSubmitters: the threads that wrote lately, for the delayed group commit. Time points are
// passed in, so the window is tested without waiting for it.
#include "jobstore/store/internal/recent_submitters.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

namespace jobstore::internal {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

TEST(RecentSubmittersTest, CountsEachThreadOnceWithinTheWindow) {
  RecentSubmitters recent(milliseconds(4));
  const RecentSubmitters::TimePoint t0{};
  EXPECT_EQ(recent.Count(t0), 0u);
  recent.Saw(1, t0);
  recent.Saw(2, t0 + milliseconds(1));
  recent.Saw(1, t0 + milliseconds(1));  // again: still one thread
  EXPECT_EQ(recent.Count(t0 + milliseconds(2)), 2u);
  EXPECT_EQ(recent.Count(t0 + milliseconds(5)), 2u) << "a window ends inclusively";
}

TEST(RecentSubmittersTest, ForgetsAThreadThatWroteNothingForAWindow) {
  RecentSubmitters recent(milliseconds(4));
  const RecentSubmitters::TimePoint t0{};
  recent.Saw(1, t0);
  recent.Saw(2, t0 + milliseconds(3));
  EXPECT_EQ(recent.Count(t0 + milliseconds(4) + microseconds(1)), 1u);
  recent.Saw(1, t0 + milliseconds(6));  // comes back: counts again
  EXPECT_EQ(recent.Count(t0 + milliseconds(7)), 2u);
  EXPECT_EQ(recent.Count(t0 + milliseconds(20)), 0u);
}

// A pool's threads come and go: a writer that never counts (no backlog) still forgets them.
TEST(RecentSubmittersTest, RemembersAtMostTwiceTheWindowsThreadsPlus64) {
  RecentSubmitters recent(milliseconds(4));
  const RecentSubmitters::TimePoint t0{};
  for (std::uint64_t id = 1; id <= 10000; ++id) {
    recent.Saw(id, t0 + milliseconds(id));  // a new thread every millisecond: ~4 in the window
    ASSERT_LE(recent.remembered(), 2 * 5 + 64u) << id;
  }
  for (std::uint64_t id = 20000; id < 20200; ++id) recent.Saw(id, t0 + milliseconds(20000));
  EXPECT_EQ(recent.Count(t0 + milliseconds(20000)), 200u) << "a crowd in the window stays whole";
}

TEST(RecentSubmittersTest, EachThreadHasItsOwnLastingId) {
  const std::uint64_t mine = SubmitterId();
  EXPECT_EQ(SubmitterId(), mine);
  std::vector<std::uint64_t> ids(8);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    threads.emplace_back([&ids, i] { ids[i] = SubmitterId(); });
  }
  for (auto& t : threads) t.join();
  std::set<std::uint64_t> distinct(ids.begin(), ids.end());
  distinct.insert(mine);
  EXPECT_EQ(distinct.size(), ids.size() + 1);
}

}  // namespace
}  // namespace jobstore::internal
