// store + projections: the one write path, group commit under concurrency, reopen, waiters,
// listing, claims, faults and crashes.
#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "jobstore/core/json_codec.h"
#include "jobstore/store/job_store.h"
#include "support/child_process.h"
#include "support/faulty_fs.h"
#include "support/temp_dir.h"

namespace jobstore {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::TempDir;

Command Cmd(std::string id, CommandBody body) { return Command{std::move(id), {}, {}, std::move(body)}; }

Command CreateCmd(const std::string& id, const std::string& type = "default",
                  Json labels = Json::object()) {
  CreateJob c;
  c.job_id = id;
  c.type = type;
  c.labels = std::move(labels);
  return Cmd(id, c);
}

class StoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<JobStore> OpenStore() {
    StoreOptions o;
    o.data_dir = dir_.Sub("data");
    o.clock = &clock_;
    o.log.env = env_;
    o.commit_delay = commit_delay_;
    auto s = JobStore::Open(o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  JobPtr MustSubmit(JobStore& s, Command c) {
    auto out = s.Submit(std::move(c));
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? out->job : nullptr;
  }
  std::vector<Event> Log(JobStore& s) {
    std::vector<Event> all;
    EXPECT_TRUE(s.log().Scan(1, UINT64_MAX, [&](Event&& e) { all.push_back(e); return true; }).ok());
    return all;
  }

  TempDir dir_;
  ManualClock clock_{1'795'867'200'000};
  rocksdb::Env* env_ = nullptr;
  std::chrono::microseconds commit_delay_{0};
};

TEST_F(StoreTest, SubmitIsDurableAppliedAndVisible) {
  auto store = OpenStore();
  JobPtr job = MustSubmit(*store, CreateCmd("a"));
  ASSERT_TRUE(job);
  EXPECT_EQ(job->version, 1u);
  EXPECT_EQ(job->created_at, clock_.NowMs());
  EXPECT_EQ(store->projection().Get("a"), job);
  EXPECT_EQ(store->log().LastSeq(), 1u);
  EXPECT_EQ(store->projection().AppliedSeq(), 1u);
}

// A replicated copy applies batches from the moment it joins, so the listener may be set while
// the writer thread runs; once it is cleared, the old one is never called again (under TSan
// this is also the race check).
TEST_F(StoreTest, ChangeListenerMaySwapWhileWritesRunAndIsNotCalledAfterClearing) {
  auto store = OpenStore();
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) {
      MustSubmit(*store, CreateCmd("j" + std::to_string(i)));
      written.fetch_add(1);
    }
  });
  std::atomic<bool> cleared{false};
  std::atomic<int> calls_after_clearing{0};
  // Swaps until 50 writes went through (however slow the build), at least 200 times.
  for (int round = 0; round < 200 || written.load() < 50; ++round) {
    cleared.store(false);
    store->SetChangeListener([&](const StoreChanges&) {
      if (cleared.load()) calls_after_clearing.fetch_add(1);
    });
    std::this_thread::yield();
    store->SetChangeListener(nullptr);
    cleared.store(true);
  }
  stop.store(true);
  writer.join();
  EXPECT_GE(store->log().LastSeq(), 50u);
  EXPECT_EQ(calls_after_clearing.load(), 0);
}

// A copy of a replicated log applies the source's batches as they come: it must then hold what
// the source holds (jobs and schedules alike, each schedule under its id).
TEST_F(StoreTest, AppliedReplicatedBatchesRebuildTheSourcesJobsAndSchedules) {
  auto source = OpenStore();
  MustSubmit(*source, CreateCmd("a"));
  SetSchedule create{true, "0 2 * * *", "UTC", Json{{"type", "report"}}, std::nullopt};
  ASSERT_TRUE(source->Submit(Command{"nightly", {}, {}, create}).ok());
  SetSchedule pause{false, std::nullopt, std::nullopt, std::nullopt, true};
  ASSERT_TRUE(source->Submit(Command{"nightly", {}, {}, pause}).ok());
  MustSubmit(*source, Cmd("a", StartJob{}));

  StoreOptions o;
  o.data_dir = dir_.Sub("copy");
  o.clock = &clock_;
  auto copy = JobStore::Open(o);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  std::uint64_t stream_seq = 0;
  for (const Event& e : Log(*source)) {  // one batch per event, as a stream's messages
    ReplicatedBatch batch;
    batch.events.push_back(e);
    batch.records.push_back(eventlog::Serialize(e));
    batch.source_seq = ++stream_seq;
    ASSERT_TRUE((*copy)->ApplyReplicated(std::move(batch)).ok());
  }
  SchedulePtr nightly = (*copy)->schedules().Get("nightly");
  ASSERT_TRUE(nightly) << "the copy does not know the schedule by its id";
  EXPECT_EQ(nightly->version, 2u);
  EXPECT_TRUE(nightly->paused);
  EXPECT_EQ((*copy)->schedules().List().size(), 1u);
  ASSERT_TRUE((*copy)->projection().Get("a"));
  EXPECT_EQ((*copy)->projection().Get("a")->status, JobStatus::kRunning);
  EXPECT_EQ((*copy)->log().LastSeq(), source->log().LastSeq());
}

TEST_F(StoreTest, PendingReplicatedAppliesRunInOrderAndAnOverlapAppliesOnlyWhatIsNew) {
  auto source = OpenStore();
  for (int i = 0; i < 20; ++i) MustSubmit(*source, CreateCmd("j" + std::to_string(i)));
  MustSubmit(*source, Cmd("j0", StartJob{}));
  const std::vector<Event> events = Log(*source);
  auto batch_of = [&](std::size_t from, std::size_t to, std::uint64_t stream_seq) {
    ReplicatedBatch b;
    for (std::size_t i = from; i < to; ++i) {
      b.events.push_back(events[i]);
      b.records.push_back(eventlog::Serialize(events[i]));
    }
    b.source_seq = stream_seq;
    return b;
  };
  StoreOptions o;
  o.data_dir = dir_.Sub("copy");
  o.clock = &clock_;
  auto copy = JobStore::Open(o);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  // Four batches queued before any is waited for; the third repeats part of the second (a
  // message the stream delivered again), as a tail with a batch in flight may hand over.
  std::vector<JobStore::PendingApply> pending;
  pending.push_back((*copy)->ApplyReplicatedAsync(batch_of(0, 8, 1)));
  pending.push_back((*copy)->ApplyReplicatedAsync(batch_of(8, 15, 2)));
  pending.push_back((*copy)->ApplyReplicatedAsync(batch_of(12, 18, 3)));
  pending.push_back((*copy)->ApplyReplicatedAsync(batch_of(18, events.size(), 4)));
  for (auto& p : pending) ASSERT_TRUE(p.Wait().ok());
  EXPECT_EQ((*copy)->log().LastSeq(), source->log().LastSeq());
  EXPECT_EQ((*copy)->log().SourceSeq(), 4u);
  EXPECT_EQ(Log(**copy).size(), events.size());
  EXPECT_EQ((*copy)->projection().Get("j0")->status, JobStatus::kRunning);
  // A batch that skips seqs is refused, and says the copy diverged.
  MustSubmit(*source, CreateCmd("late1"));
  MustSubmit(*source, CreateCmd("late2"));
  const std::vector<Event> all = Log(*source);
  ReplicatedBatch gap;
  gap.events.push_back(all.back());
  gap.records.push_back(eventlog::Serialize(all.back()));
  gap.source_seq = 6;
  Status refused = (*copy)->ApplyReplicatedAsync(std::move(gap)).Wait();
  EXPECT_EQ(refused.code(), StatusCode::kCorruption) << refused.ToString();
}

TEST_F(StoreTest, RejectedCommandWritesNothing) {
  auto store = OpenStore();
  MustSubmit(*store, CreateCmd("a"));
  auto out = store->Submit(Cmd("a", CompleteJob{}));
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidTransition);
  EXPECT_EQ(store->log().LastSeq(), 1u);
  EXPECT_EQ(store->projection().Get("a")->version, 1u);
}

TEST_F(StoreTest, SixteenThreadsOnOverlappingJobsKeepLogAndVersionsGapless) {
  auto store = OpenStore();
  constexpr int kJobs = 8, kThreads = 16, kPerThread = 150;
  for (int j = 0; j < kJobs; ++j) MustSubmit(*store, CreateCmd("j" + std::to_string(j)));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string id = "j" + std::to_string((t + i) % kJobs);
        UpdateJob u;
        u.data_patch = Json{{"t" + std::to_string(t), i}};
        if (store->Submit(Cmd(id, u)).ok()) ok.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  auto all = Log(*store);
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kJobs + kThreads * kPerThread));
  std::map<std::string, std::uint64_t> versions;
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].seq, i + 1);
    EXPECT_EQ(all[i].version, ++versions[all[i].job_id]) << all[i].job_id;
  }
  for (int j = 0; j < kJobs; ++j) {
    auto job = store->projection().Get("j" + std::to_string(j));
    EXPECT_EQ(job->version, versions[job->job_id]);
    EXPECT_EQ(job->data.size(), static_cast<std::size_t>(kThreads));
  }
  EXPECT_LT(store->counters().batches.load(), static_cast<std::uint64_t>(all.size()))
      << "group commit should have put several commands in one write";
}

// StoreOptions::commit_delay: a lone writer, whose last group held one command, is never kept
// waiting (here the delay is 10 s; twenty writes one after another take far less).
TEST_F(StoreTest, CommitDelayNeverDelaysALoneWriter) {
  commit_delay_ = std::chrono::seconds(10);
  auto store = OpenStore();
  const auto start = steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(MustSubmit(*store, CreateCmd("lone" + std::to_string(i))));
  }
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(store->counters().batches.load(), 20u);
}

// The writer, held inside its listener, lets commands queue up; the tests below release it
// group by group.
class HeldWriter {
 public:
  explicit HeldWriter(JobStore& store) : store_(store) {
    store.SetChangeListener([this](const StoreChanges&) {
      std::unique_lock<std::mutex> lock(mu_);
      ++groups_in_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return released_ >= groups_in_; });
    });
  }
  ~HeldWriter() { store_.SetChangeListener(nullptr); }  // never called once this is gone
  void AwaitGroup(int n) {  // the writer has published its nth group and waits to be released
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return groups_in_ >= n; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    ++released_;
    cv_.notify_all();
  }
  void ReleaseAll() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = 1 << 30;
    cv_.notify_all();
  }

 private:
  JobStore& store_;
  std::mutex mu_;
  std::condition_variable cv_;
  int groups_in_ = 0, released_ = 0;
};

using Pending = std::future<StatusOr<Outcome>>;

Pending SubmitLater(JobStore& store, Command c) {
  return std::async(std::launch::async, [&store, c = std::move(c)]() mutable {
    return store.Submit(std::move(c));
  });
}

void AwaitQueued(JobStore& store, std::size_t n) {
  while (store.TEST_QueuedRequests() < n) std::this_thread::yield();
}

// Brings the writer to wait for company: one write alone, then `group` writes queued behind it
// and written together, then one more queued behind those, and the writer let go. Returns every
// write's pending result, the one the writer waits with last.
std::vector<Pending> WriterAwaitingCompany(JobStore& store, HeldWriter& held, int group) {
  std::vector<Pending> pending;
  pending.push_back(SubmitLater(store, CreateCmd("first")));
  held.AwaitGroup(1);
  for (int i = 0; i < group; ++i) {
    pending.push_back(SubmitLater(store, CreateCmd("group" + std::to_string(i))));
  }
  AwaitQueued(store, group);
  held.Release();  // a backlog after a group of one: no delay, one write of `group`
  held.AwaitGroup(2);
  pending.push_back(SubmitLater(store, CreateCmd("late0")));
  AwaitQueued(store, 1);
  held.ReleaseAll();  // a backlog of one after a group of `group`: the writer waits for company
  return pending;
}

// Writers that queued behind a group of four: the next group waits (here up to 10 s) until four
// are there again, then goes at once, in one write.
TEST_F(StoreTest, CommitDelayWaitsForAsManyAsTheLastGroupThenWritesThemTogether) {
  commit_delay_ = std::chrono::seconds(10);
  auto store = OpenStore();
  HeldWriter held(*store);
  std::vector<Pending> pending = WriterAwaitingCompany(*store, held, 4);
  const auto batches = store->counters().batches.load();
  EXPECT_EQ(pending.back().wait_for(milliseconds(300)), std::future_status::timeout);
  for (int i = 1; i < 4; ++i) {
    pending.push_back(SubmitLater(*store, CreateCmd("late" + std::to_string(i))));
  }
  for (auto& f : pending) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    EXPECT_TRUE(f.get().ok());
  }
  EXPECT_EQ(store->counters().batches.load(), batches + 1) << "the four late writes in one group";
  EXPECT_EQ(store->log().LastSeq(), 9u);
}

// Thirteen threads wrote in the last groups (of one, then four, four and four): with writes
// queued again, the next group waits for thirteen (a crowd: twelve or more), not four as the last
// group held, then goes at once, in one write.
TEST_F(StoreTest, CommitDelayWaitsForACrowdOfRecentWritersThenWritesThemTogether) {
  commit_delay_ = std::chrono::seconds(10);
  auto store = OpenStore();
  HeldWriter held(*store);
  std::vector<Pending> pending;
  auto queue = [&](const std::string& name, int n) {
    for (int i = 0; i < n; ++i) {
      pending.push_back(SubmitLater(*store, CreateCmd(name + std::to_string(i))));
    }
  };
  queue("first", 1);
  held.AwaitGroup(1);
  for (int group = 2; group <= 4; ++group) {  // each goes as queued: too few wrote for a crowd
    queue("group" + std::to_string(group) + "-", 4);
    AwaitQueued(*store, 4);
    held.Release();
    held.AwaitGroup(group);
  }
  queue("late", 4);
  AwaitQueued(*store, 4);
  held.ReleaseAll();
  const auto batches = store->counters().batches.load();
  EXPECT_EQ(pending.back().wait_for(milliseconds(300)), std::future_status::timeout)
      << "four queued, as the last group held, but thirteen wrote lately";
  queue("later", 9);
  for (auto& f : pending) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    EXPECT_TRUE(f.get().ok());
  }
  EXPECT_EQ(store->counters().batches.load(), batches + 1)
      << "the thirteen late writes in one group";
  EXPECT_EQ(store->log().LastSeq(), 26u);
}

// Closing while the writer waits for company: the waiting write goes at once and is durable.
TEST_F(StoreTest, CloseEndsACommitDelayAtOnce) {
  commit_delay_ = std::chrono::seconds(60);
  auto store = OpenStore();
  HeldWriter held(*store);
  std::vector<Pending> pending = WriterAwaitingCompany(*store, held, 2);
  EXPECT_EQ(pending.back().wait_for(milliseconds(200)), std::future_status::timeout);
  const auto start = steady_clock::now();
  ASSERT_TRUE(store->Close().ok());
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(10));
  for (auto& f : pending) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    EXPECT_TRUE(f.get().ok());
  }
  EXPECT_EQ(store->log().LastSeq(), 4u);
}

TEST_F(StoreTest, ConflictingCommandsOnOneJobCannotBothPass) {
  auto store = OpenStore();
  for (int round = 0; round < 20; ++round) {
    std::string id = "race-" + std::to_string(round);
    MustSubmit(*store, CreateCmd(id));
    std::atomic<int> started{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        if (store->Submit(Cmd(id, StartJob{"w" + std::to_string(t), 0})).ok()) started++;
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(started.load(), 1);
  }
}

TEST_F(StoreTest, ReopenRebuildsAnIdenticalProjection) {
  std::vector<Json> before;
  {
    auto store = OpenStore();
    for (int i = 0; i < 30; ++i) {
      std::string id = "job-" + std::to_string(i);
      MustSubmit(*store, CreateCmd(id, i % 2 ? "odd" : "even", {{"n", std::to_string(i % 3)}}));
      clock_.Advance(1000);
      if (i % 3 == 0) continue;
      MustSubmit(*store, Cmd(id, StartJob{"w", 0}));  // leases get a fresh term at reopen
      if (i % 3 == 1) {
        MustSubmit(*store, Cmd(id, RequestHitl{"clarify", {{"q", i}}, 600}));
        if (i % 2) MustSubmit(*store, Cmd(id, AnswerHitl{"h-1", "yes", "bob"}));
      } else {
        MustSubmit(*store, Cmd(id, CompleteJob{{{"i", i}}}));
      }
    }
    store->projection().ForEach([&](const JobPtr& j) { before.push_back(JobToJson(*j)); });
  }
  auto store = OpenStore();
  std::vector<Json> after;
  store->projection().ForEach([&](const JobPtr& j) { after.push_back(JobToJson(*j)); });
  EXPECT_EQ(after, before);
  EXPECT_EQ(store->recovery().jobs_loaded, 30u);
  EXPECT_EQ(store->recovery().events_replayed, store->log().LastSeq());
  // And the writer continues the log without a gap.
  MustSubmit(*store, CreateCmd("next"));
  EXPECT_EQ(store->projection().Get("next")->created_seq, store->recovery().events_replayed + 1);
}

TEST_F(StoreTest, ReopenGivesRunningLeasesAFreshTerm) {
  {
    auto store = OpenStore();
    MustSubmit(*store, CreateCmd("leased"));
    MustSubmit(*store, Cmd("leased", StartJob{"w", 30}));
  }
  clock_.Advance(600'000);  // down for ten minutes: the logged lease fell due meanwhile
  auto store = OpenStore();
  EXPECT_EQ(store->projection().Get("leased")->lease_expires_at, clock_.NowMs() + 30'000);
}

TEST_F(StoreTest, SubmitEachDecidesEveryCommandOnItsOwnInOneWrite) {
  auto store = OpenStore();
  MustSubmit(*store, CreateCmd("a"));
  auto batches_before = store->counters().batches.load();
  auto results = store->SubmitEach({Cmd("a", StartJob{}), Cmd("missing", StartJob{}),
                                    Cmd("a", CompleteJob{})});
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0].ok());
  EXPECT_EQ(results[1].status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(results[2].ok());
  EXPECT_EQ(store->projection().Get("a")->status, JobStatus::kCompleted);
  EXPECT_EQ(store->counters().batches.load(), batches_before + 1);
}

TEST_F(StoreTest, SnapshotIsLoadedAndOnlyTheTailReplayed) {
  std::vector<Json> before;
  {
    auto store = OpenStore();
    for (int i = 0; i < 10; ++i) MustSubmit(*store, CreateCmd("s" + std::to_string(i)));
    ASSERT_TRUE(store->WriteSnapshot().ok());
    MustSubmit(*store, Cmd("s1", StartJob{"w", 0}));
    MustSubmit(*store, Cmd("s2", UpdateJob{Json{{"percent", 5}}, Json{{"a", 1}}, std::nullopt}));
    store->projection().ForEach([&](const JobPtr& j) { before.push_back(JobToJson(*j)); });
  }
  auto store = OpenStore();
  EXPECT_EQ(store->recovery().snapshot_seq, 10u);
  EXPECT_EQ(store->recovery().events_replayed, 2u);
  std::vector<Json> after;
  store->projection().ForEach([&](const JobPtr& j) { after.push_back(JobToJson(*j)); });
  EXPECT_EQ(after, before);
}

TEST_F(StoreTest, CorruptSnapshotIsIgnoredWithAWarningAndTheLogReplayed) {
  {
    auto store = OpenStore();
    for (int i = 0; i < 5; ++i) MustSubmit(*store, CreateCmd("c" + std::to_string(i)));
    ASSERT_TRUE(store->WriteSnapshot().ok());
  }
  for (const auto& f : std::filesystem::directory_iterator(SnapshotDir(dir_.Sub("data")))) {
    std::fstream file(f.path(), std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(60);
    file.put('\x7f');
  }
  auto store = OpenStore();
  EXPECT_EQ(store->recovery().snapshot_seq, 0u);
  EXPECT_EQ(store->recovery().events_replayed, 5u);
  ASSERT_EQ(store->recovery().warnings.size(), 1u);
  EXPECT_NE(store->recovery().warnings[0].find("checksum"), std::string::npos);
  EXPECT_EQ(store->projection().Size(), 5u);
}

TEST_F(StoreTest, BatchIsAllOrNoneAndNamesTheBadEntry) {
  auto store = OpenStore();
  MustSubmit(*store, CreateCmd("taken"));
  auto bad = store->SubmitAll({CreateCmd("x1"), CreateCmd("x2"), CreateCmd("taken")});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(bad.status().message().rfind("jobs[2]: ", 0), 0u) << bad.status().message();
  EXPECT_EQ(store->projection().Get("x1"), nullptr);
  EXPECT_EQ(store->log().LastSeq(), 1u);
  auto good = store->SubmitAll({CreateCmd("x1"), CreateCmd("x2")});
  ASSERT_TRUE(good.ok());
  EXPECT_EQ((*good)[1].job->job_id, "x2");
  EXPECT_EQ(store->log().LastSeq(), 3u);
}

TEST_F(StoreTest, IdempotencyKeyReturnsTheFirstJobEvenAfterReopen) {
  auto create_with_key = [](const std::string& id) {
    CreateJob c;
    c.job_id = id;
    c.idempotency_key = "key-1";
    return Cmd(id, c);
  };
  {
    auto store = OpenStore();
    auto first = store->Submit(create_with_key("first"));
    ASSERT_TRUE(first.ok());
    EXPECT_FALSE(first->deduplicated);
    auto again = store->Submit(create_with_key("second"));
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->deduplicated);
    EXPECT_EQ(again->job->job_id, "first");
  }
  auto store = OpenStore();
  auto again = store->Submit(create_with_key("third"));
  EXPECT_TRUE(again->deduplicated);
  EXPECT_EQ(again->job->job_id, "first");
  EXPECT_EQ(store->projection().Size(), 1u);
}

TEST_F(StoreTest, IdempotencyKeyDeduplicatesFor24HoursOnly) {
  auto store = OpenStore();
  auto create_with_key = [](const std::string& id) {
    CreateJob c;
    c.job_id = id;
    c.idempotency_key = "daily";
    return Cmd(id, c);
  };
  ASSERT_TRUE(store->Submit(create_with_key("day1")).ok());
  clock_.Advance(kIdempotencyWindowMs - 1);
  EXPECT_TRUE(store->Submit(create_with_key("day1-retry"))->deduplicated);
  clock_.Advance(1);
  auto next_day = store->Submit(create_with_key("day2"));
  ASSERT_TRUE(next_day.ok());
  EXPECT_FALSE(next_day->deduplicated);
  EXPECT_EQ(next_day->job->job_id, "day2");
  EXPECT_TRUE(store->Submit(create_with_key("day2-retry"))->deduplicated);
  MustSubmit(*store, Cmd("day1", StartJob{}));  // re-indexing the old job keeps day2 the holder
  EXPECT_EQ(store->Submit(create_with_key("x"))->job->job_id, "day2");
}

TEST_F(StoreTest, ClaimIsExclusiveUnderConcurrentClaimers) {
  auto store = OpenStore();
  constexpr int kJobs = 60;
  for (int i = 0; i < kJobs; ++i) {
    MustSubmit(*store, CreateCmd("c" + std::to_string(i), i % 2 ? "a" : "b"));
  }
  std::mutex mu;
  std::multiset<std::string> claimed;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (;;) {
        auto out = store->Claim({"w" + std::to_string(t), {}, 30});
        ASSERT_TRUE(out.ok());
        if (!out->job) return;
        EXPECT_EQ(out->job->worker, "w" + std::to_string(t));
        std::lock_guard lock(mu);
        claimed.insert(out->job->job_id);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(claimed.size(), static_cast<std::size_t>(kJobs));
  EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()).size(), claimed.size());
}

TEST_F(StoreTest, ClaimTakesTheOldestPendingOfTheAskedTypes) {
  auto store = OpenStore();
  MustSubmit(*store, CreateCmd("old-b", "b"));
  MustSubmit(*store, CreateCmd("old-a", "a"));
  MustSubmit(*store, CreateCmd("new-a", "a"));
  auto out = store->Claim({"w", {"a"}, 30});
  EXPECT_EQ(out->job->job_id, "old-a");
  EXPECT_EQ(out->job->lease_expires_at, clock_.NowMs() + 30'000);
  EXPECT_EQ(store->Claim({"w", {}, 30})->job->job_id, "old-b");
  EXPECT_EQ(store->Claim({"w", {"c"}, 30})->job, nullptr);
}

TEST_F(StoreTest, ClaimOrderIsPriorityThenDueTimeThenCreation) {
  auto store = OpenStore();
  auto create = [&](const std::string& id, std::int32_t priority, const std::string& type = "t") {
    Command c = CreateCmd(id, type);
    std::get<CreateJob>(c.body).priority = priority;
    MustSubmit(*store, c);
    clock_.Advance(1);
  };
  create("low-1", -5);
  create("mid-1", 0);
  create("high-1", 10, "u");
  create("mid-2", 0);
  create("high-2", 10);
  // A job that waited for its run_at is ordered by that due time, not by its creation.
  Command scheduled = CreateCmd("mid-due-later", "t");
  std::get<CreateJob>(scheduled.body).run_at = clock_.NowMs() + 1000;
  MustSubmit(*store, scheduled);
  EXPECT_EQ(store->projection().Get("mid-due-later")->status, JobStatus::kScheduled);
  create("mid-3", 0);
  clock_.Advance(1000);
  MustSubmit(*store, Cmd("mid-due-later", MakeDue{}));
  // A priority raised while waiting moves the job up.
  UpdateJob raise;
  raise.priority = 10;
  MustSubmit(*store, Cmd("low-1", raise));
  std::vector<std::string> order;
  for (;;) {
    auto out = store->Claim({"w", {}, 30});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    if (!out->job) break;
    order.push_back(out->job->job_id);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"low-1", "high-1", "high-2", "mid-1", "mid-2",
                                             "mid-3", "mid-due-later"}));
}

// Under concurrent claimers the order is still exact: the writer decides claims one after
// another, so the log's job.started events come in claim order, whatever thread asked.
TEST_F(StoreTest, ClaimOrderIsExactUnderConcurrentClaimers) {
  auto store = OpenStore();
  constexpr int kJobs = 240;
  std::vector<Command> creates;
  std::vector<std::string> expected[3];  // by priority 2, 1, 0, each in creation order
  for (int i = 0; i < kJobs; ++i) {
    Command c = CreateCmd("q" + std::to_string(i));
    const int priority = (i * 7) % 3;
    std::get<CreateJob>(c.body).priority = priority;
    expected[2 - priority].push_back(c.job_id);
    creates.push_back(std::move(c));
  }
  ASSERT_TRUE(store->SubmitAll(std::move(creates)).ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (;;) {
        auto out = store->Claim({"w" + std::to_string(t), {}, 30});
        ASSERT_TRUE(out.ok());
        if (!out->job) return;
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<std::string> started;
  ASSERT_TRUE(store->log().Scan(1, UINT64_MAX, [&](Event&& e) {
    if (e.type == EventType::kStarted) started.push_back(e.job_id);
    return true;
  }).ok());
  std::vector<std::string> order;
  for (const auto& level : expected) order.insert(order.end(), level.begin(), level.end());
  EXPECT_EQ(started, order);
}

TEST_F(StoreTest, ClaimByTypeTakesTheBestOfTheAskedTypes) {
  auto store = OpenStore();
  Command a = CreateCmd("a-low", "a");
  MustSubmit(*store, a);
  Command b = CreateCmd("b-high", "b");
  std::get<CreateJob>(b.body).priority = 1;
  MustSubmit(*store, b);
  MustSubmit(*store, CreateCmd("c-top", "c"));
  UpdateJob top;
  top.priority = 100;
  MustSubmit(*store, Cmd("c-top", top));
  EXPECT_EQ(store->Claim({"w", {"a", "b"}, 30})->job->job_id, "b-high");
  EXPECT_EQ(store->Claim({"w", {"a", "b"}, 30})->job->job_id, "a-low");
  EXPECT_EQ(store->Claim({"w", {"a", "b"}, 30})->job, nullptr);
}

TEST_F(StoreTest, ScheduledAndRetriedJobsSurviveARestartWithTheirDueTimes) {
  const TimeMs due = clock_.NowMs() + 60'000;
  {
    auto store = OpenStore();
    Command c = CreateCmd("later");
    std::get<CreateJob>(c.body).run_at = due;
    std::get<CreateJob>(c.body).priority = 3;
    MustSubmit(*store, c);
    Command r = CreateCmd("flaky");
    std::get<CreateJob>(r.body).retry = RetryPolicy{RetryPolicy::Backoff::kFixed, 5000, 5000, 0};
    MustSubmit(*store, r);
    MustSubmit(*store, Cmd("flaky", StartJob{}));
    MustSubmit(*store, Cmd("flaky", FailJob{{"x", "y"}}));
    ASSERT_TRUE(store->WriteSnapshot().ok());  // one restart from the snapshot, one from the log
    UpdateJob progress;
    progress.progress = Json{{"p", 1}};
    MustSubmit(*store, Cmd("flaky", progress));
  }
  auto store = OpenStore();
  JobPtr later = store->projection().Get("later");
  EXPECT_EQ(later->status, JobStatus::kScheduled);
  EXPECT_EQ(later->run_at, due);
  EXPECT_EQ(later->priority, 3);
  JobPtr flaky = store->projection().Get("flaky");
  EXPECT_EQ(flaky->status, JobStatus::kScheduled);
  EXPECT_EQ(flaky->run_at, clock_.NowMs() + 5000);
  ASSERT_EQ(flaky->errors.size(), 1u);
  EXPECT_EQ(store->Claim({"w", {}, 30})->job, nullptr);  // neither is claimable yet
}

TEST_F(StoreTest, ListFiltersNewestFirstWithAStableCursor) {
  auto store = OpenStore();
  for (int i = 0; i < 25; ++i) {
    MustSubmit(*store, CreateCmd("l" + std::to_string(i), i % 2 ? "odd" : "even",
                                 {{"team", i % 5 == 0 ? "ml" : "web"}}));
  }
  MustSubmit(*store, Cmd("l4", StartJob{}));
  ListQuery q;
  q.type = "even";
  q.limit = 5;
  ListPage first = store->projection().List(q);
  ASSERT_EQ(first.jobs.size(), 5u);
  EXPECT_EQ(first.jobs[0]->job_id, "l24");
  ASSERT_TRUE(first.next_cursor);
  for (int i = 25; i < 30; ++i) MustSubmit(*store, CreateCmd("l" + std::to_string(i), "even"));
  q.before = first.next_cursor;
  ListPage second = store->projection().List(q);
  EXPECT_EQ(second.jobs[0]->job_id, "l14");  // new jobs do not shift the pages
  ListQuery labeled;
  labeled.labels = {{"team", "ml"}};
  labeled.statuses = {JobStatus::kPending};
  EXPECT_EQ(store->projection().List(labeled).jobs.size(), 5u);
  ListQuery running;
  running.statuses = {JobStatus::kRunning, JobStatus::kCompleted};
  auto r = store->projection().List(running);
  ASSERT_EQ(r.jobs.size(), 1u);
  EXPECT_EQ(r.jobs[0]->job_id, "l4");
  EXPECT_FALSE(r.next_cursor);
}

TEST_F(StoreTest, WaiterWakesOnApplyAndTimesOutOnTime) {
  auto store = OpenStore();
  MustSubmit(*store, CreateCmd("w"));
  std::thread writer([&] {
    std::this_thread::sleep_for(milliseconds(50));
    MustSubmit(*store, Cmd("w", StartJob{}));
  });
  auto start = steady_clock::now();
  JobPtr job = store->projection().WaitForVersion("w", 1, start + std::chrono::seconds(10));
  writer.join();
  EXPECT_EQ(job->version, 2u);
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(5));

  start = steady_clock::now();
  job = store->projection().WaitForVersion("w", 2, start + milliseconds(100));
  auto waited = steady_clock::now() - start;
  EXPECT_EQ(job->version, 2u);
  EXPECT_GE(waited, milliseconds(100));
  EXPECT_LT(waited, milliseconds(2000));
  EXPECT_EQ(store->projection().OpenWaiters(), 0u);
}

// job_store.h promises every method is safe from any thread: Close too, twice at once (a signal
// handler's shutdown beside the destructor's).
TEST_F(StoreTest, TwoConcurrentClosesAreSafeAndBothSucceed) {
  for (int round = 0; round < 20; ++round) {
    auto store = OpenStore();
    MustSubmit(*store, CreateCmd("c" + std::to_string(round)));
    std::atomic<int> ok{0};
    std::thread a([&] { ok += store->Close().ok(); });
    std::thread b([&] { ok += store->Close().ok(); });
    a.join();
    b.join();
    EXPECT_EQ(ok.load(), 2);
    EXPECT_EQ(store->Submit(CreateCmd("late")).status().code(), StatusCode::kUnavailable);
  }
}

TEST_F(StoreTest, FeedWaiterWakesOnNextSeqAndCloseReleasesWaiters) {
  auto store = OpenStore();
  std::thread writer([&] { MustSubmit(*store, CreateCmd("f")); });
  auto seq = store->projection().WaitForSeq(0, steady_clock::now() + std::chrono::seconds(10));
  writer.join();
  EXPECT_GE(seq, 1u);
  std::thread closer([&] {
    std::this_thread::sleep_for(milliseconds(50));
    EXPECT_TRUE(store->Close().ok());
  });
  auto start = steady_clock::now();
  store->projection().WaitForSeq(seq, start + std::chrono::seconds(30));
  closer.join();
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(store->Submit(CreateCmd("late")).status().code(), StatusCode::kUnavailable);
}

TEST_F(StoreTest, WriteFailureFailsTheBatchLeavesProjectionAndRecovers) {
  testing::FaultyEnv faulty;
  env_ = faulty.env.get();
  auto store = OpenStore();
  MustSubmit(*store, CreateCmd("a"));
  faulty.fs->set_failing(true);
  auto failed = store->Submit(Cmd("a", StartJob{}));
  EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store->projection().Get("a")->status, JobStatus::kPending);
  EXPECT_FALSE(store->writable());
  faulty.fs->set_failing(false);
  // The log resumes RocksDB before the next write: the client's first retry succeeds.
  auto retried = store->Submit(Cmd("a", StartJob{}));
  EXPECT_TRUE(retried.ok()) << retried.status().ToString();
  EXPECT_TRUE(store->writable());
  auto log = Log(*store);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[1].type, EventType::kStarted);
}

TEST_F(StoreTest, CorruptEventFailsOpenNamingItsSeq) {
  {
    auto store = OpenStore();
    MustSubmit(*store, CreateCmd("a"));
    MustSubmit(*store, CreateCmd("b"));
  }
  {  // append an event that breaks the state machine: complete a pending job
    auto log = eventlog::EventLog::Open(dir_.Sub("data"));
    ASSERT_TRUE(log.ok());
    Event bad{3, "a", 2, EventType::kCompleted, 0, {{"result", 1}}};
    ASSERT_TRUE((*log)->TEST_Append({bad}).ok());
  }
  StoreOptions o;
  o.data_dir = dir_.Sub("data");
  auto reopened = JobStore::Open(o);
  ASSERT_FALSE(reopened.ok());
  EXPECT_EQ(reopened.status().code(), StatusCode::kCorruption);
  EXPECT_NE(reopened.status().message().find("seq 3"), std::string::npos)
      << reopened.status().message();
}

TEST_F(StoreTest, SigkillDuringConcurrentAppendsLosesNoAcknowledgedEvent) {
  std::set<std::string> acked;
  {
    testing::ChildProcess child({JOBSTORE_CRASH_WRITER, dir_.Sub("data"), "16"});
    std::string line;
    while (acked.size() < 3000 && child.ReadLine(&line)) acked.insert(line);
    child.Kill(SIGKILL);
    while (child.ReadLine(&line)) acked.insert(line);  // acks already in the pipe
  }
  ASSERT_GE(acked.size(), 3000u);
  auto store = OpenStore();
  for (const auto& id : acked) EXPECT_NE(store->projection().Get(id), nullptr) << id;
  auto log = Log(*store);
  for (std::size_t i = 0; i < log.size(); ++i) ASSERT_EQ(log[i].seq, i + 1);
  EXPECT_GE(log.size(), acked.size());
}

}  // namespace
}  // namespace jobstore
