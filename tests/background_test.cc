// Background work with a simulated clock: leases, heartbeats, HITL timeouts, TTL expiry,
// history retention and restart. No test here sleeps; the clock is advanced.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "jobstore/background/background_worker.h"
#include "jobstore/background/deadline_queue.h"
#include "jobstore/eventlog/record.h"
#include "jobstore/store/job_store.h"
#include "support/expired_jobs.h"
#include "support/sanitizers.h"
#include "support/temp_dir.h"

namespace jobstore {
namespace {

using testing::TempDir;

Command Cmd(std::string id, CommandBody body) { return Command{std::move(id), {}, {}, std::move(body)}; }

class BackgroundTest : public ::testing::Test {
 protected:
  void Open(bool retention = false, std::size_t batch = 256) {
    worker_.reset();
    store_.reset();
    StoreOptions o;
    o.data_dir = dir_.Sub("data");
    o.clock = &clock_;
    o.track_retained_history = retention;
    store_ = std::move(JobStore::Open(o).value());
    BackgroundOptions b;
    b.batch = batch;
    if (retention) b.history_retention_ms = 60'000;
    worker_ = std::make_unique<BackgroundWorker>(*store_, b);
  }
  JobPtr Run(std::string id, CommandBody body) {
    auto out = store_->Submit(Cmd(std::move(id), std::move(body)));
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? out->job : nullptr;
  }
  void Create(const std::string& id, std::int64_t ttl = 3600, std::uint32_t attempts = 3) {
    CreateJob c;
    c.job_id = id;
    c.ttl_seconds = ttl;
    c.max_attempts = attempts;
    Run(id, c);
  }
  JobPtr Get(const std::string& id) { return store_->projection().Get(id); }

  TempDir dir_;
  ManualClock clock_{1'795'867'200'000};
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<BackgroundWorker> worker_;
};

TEST(DeadlineQueue, PopsInDueOrderAndTrackReplaces) {
  DeadlineQueue q;
  Job a;
  a.job_id = "a";
  a.status = JobStatus::kRunning;
  a.lease_expires_at = 300;
  Job b = a;
  b.job_id = "b";
  b.lease_expires_at = 100;
  q.Track(a);
  q.Track(b);
  a.lease_expires_at = 50;  // a heartbeat moved it
  q.Track(a);
  EXPECT_EQ(q.NextDue(DeadlineKind::kLease), 50);
  auto due = q.PopDue(DeadlineKind::kLease, 200, 10);
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].job_id, "a");
  EXPECT_EQ(due[1].job_id, "b");
  EXPECT_EQ(q.Size(), 0u);
  b.status = JobStatus::kCompleted;
  b.finished_at = 1000;
  b.ttl_seconds = 1;
  q.Track(b);
  EXPECT_EQ(q.NextDue(DeadlineKind::kExpiry), 2000);
  EXPECT_FALSE(q.NextDue(DeadlineKind::kLease));
  q.Forget("b");
  EXPECT_EQ(q.Size(), 0u);
}

TEST_F(BackgroundTest, ExpiredLeaseRequeuesThenFailsAtMaxAttempts) {
  Open();
  Create("j", 3600, 2);
  Run("j", StartJob{"w1", 10});
  clock_.Advance(9'999);
  EXPECT_EQ(worker_->FireDue(), 0u);
  clock_.Advance(1);
  EXPECT_EQ(worker_->FireDue(), 1u);
  EXPECT_EQ(Get("j")->status, JobStatus::kPending);
  EXPECT_FALSE(Get("j")->worker);
  Run("j", StartJob{"w2", 10});
  clock_.Advance(10'000);
  EXPECT_EQ(worker_->FireDue(), 1u);
  EXPECT_EQ(Get("j")->status, JobStatus::kFailed);
  EXPECT_EQ(Get("j")->error->code, "lease_expired");
  EXPECT_EQ(worker_->stats().leases_expired, 2u);
}

TEST_F(BackgroundTest, HeartbeatExtendsTheLease) {
  Open();
  Create("j");
  Run("j", StartJob{"w", 10});
  clock_.Advance(8'000);
  Run("j", Heartbeat{std::nullopt, std::nullopt});  // no event, new deadline
  clock_.Advance(8'000);  // past the first deadline, not the second
  EXPECT_EQ(worker_->FireDue(), 0u);
  EXPECT_EQ(Get("j")->status, JobStatus::kRunning);
  clock_.Advance(2'000);
  EXPECT_EQ(worker_->FireDue(), 1u);
  EXPECT_EQ(Get("j")->status, JobStatus::kPending);
}

TEST_F(BackgroundTest, PendingHitlHoldsNoLeaseAndTheAnswerStartsItAgain) {
  Open();
  Create("j");
  Run("j", StartJob{"w", 10});
  Run("j", RequestHitl{"clarify", Json::object(), std::nullopt});
  clock_.Advance(3'600'000);  // a person thinks for an hour
  EXPECT_EQ(worker_->FireDue(), 0u);
  EXPECT_EQ(Get("j")->status, JobStatus::kPendingHitl);
  Run("j", AnswerHitl{"h-1", "yes", {}});
  clock_.Advance(10'000);
  EXPECT_EQ(worker_->FireDue(), 1u);
  EXPECT_EQ(Get("j")->status, JobStatus::kPending);
}

TEST_F(BackgroundTest, UnansweredHitlTimesOutAndFailsTheJob) {
  Open();
  Create("j");
  Run("j", StartJob{"w", 0});
  Run("j", RequestHitl{"clarify", Json::object(), 60});
  clock_.Advance(59'999);
  EXPECT_EQ(worker_->FireDue(), 0u);
  clock_.Advance(1);
  EXPECT_EQ(worker_->FireDue(), 1u);
  EXPECT_EQ(Get("j")->status, JobStatus::kFailed);
  EXPECT_EQ(Get("j")->error->code, "hitl_timeout");
  // An answer that arrives in time cancels the timeout.
  Create("k");
  Run("k", StartJob{"w", 0});
  Run("k", RequestHitl{"clarify", Json::object(), 60});
  Run("k", AnswerHitl{"h-1", "yes", {}});
  clock_.Advance(120'000);
  EXPECT_EQ(worker_->FireDue(), 0u);
  EXPECT_EQ(Get("k")->status, JobStatus::kRunning);
}

TEST_F(BackgroundTest, CompactionExpiresFinishedJobsAfterTheirTtlOnly) {
  Open();
  Create("short", 60);
  Create("long", 3600);
  Create("live", 60);
  for (const char* id : {"short", "long"}) {
    Run(id, StartJob{});
    Run(id, CompleteJob{});
  }
  clock_.Advance(59'000);
  EXPECT_EQ(worker_->Compact()->jobs_expired, 0u);
  clock_.Advance(1'000);
  auto report = worker_->Compact();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->jobs_expired, 1u);
  EXPECT_EQ(Get("short"), nullptr);
  EXPECT_NE(Get("long"), nullptr);
  EXPECT_NE(Get("live"), nullptr);
  ListQuery all;
  all.statuses = {JobStatus::kCompleted};
  EXPECT_EQ(store_->projection().List(all).jobs.size(), 1u);  // gone from the indexes too
  EXPECT_EQ(store_->projection().Size(), 2u);
  // The expiry is an event in the log, so a restart agrees.
  Open();
  EXPECT_EQ(Get("short"), nullptr);
  EXPECT_EQ(store_->projection().Size(), 2u);
}

TEST_F(BackgroundTest, CompactionWorksInBoundedBatches) {
  Open(false, /*batch=*/100);
  std::vector<Command> creates;
  for (int i = 0; i < 1000; ++i) {
    CreateJob c;
    c.job_id = "b" + std::to_string(i);
    c.ttl_seconds = 1;
    creates.push_back(Cmd(c.job_id, c));
  }
  ASSERT_TRUE(store_->SubmitAll(creates).ok());
  std::vector<Command> cancels;
  for (int i = 0; i < 1000; ++i) cancels.push_back(Cmd("b" + std::to_string(i), CancelJob{}));
  ASSERT_TRUE(store_->SubmitAll(cancels).ok());
  const auto batches = store_->counters().batches.load();
  clock_.Advance(1'000);
  EXPECT_EQ(worker_->Compact()->jobs_expired, 1000u);
  EXPECT_EQ(store_->projection().Size(), 0u);
  EXPECT_GE(store_->counters().batches.load() - batches, 10u);  // 100 per write at most
}

TEST_F(BackgroundTest, HistoryRetentionDeletesExpiredEventsAndReclaimsSpace) {
  Open(/*retention=*/true);
  std::vector<Command> commands;
  const std::string payload(2000, 'x');
  for (int i = 0; i < 2000; ++i) {
    CreateJob c;
    c.job_id = "h" + std::to_string(i);
    c.ttl_seconds = 1;
    c.input = {{"blob", payload}};
    commands.push_back(Cmd(c.job_id, c));
    commands.push_back(Cmd(c.job_id, CancelJob{"done"}));
  }
  ASSERT_TRUE(store_->SubmitAll(commands).ok());
  Create("keeper");  // a live job whose events stay
  ASSERT_TRUE(store_->CompactLog().ok());
  auto events_bytes = [&] {
    for (const auto& [name, bytes] : store_->log().SizesOnDisk()) {
      if (name == "events") return bytes;
    }
    return std::uint64_t{0};
  };
  const std::uint64_t before = events_bytes();
  clock_.Advance(1'000);
  EXPECT_EQ(worker_->Compact()->jobs_expired, 2000u);
  EXPECT_EQ(worker_->Compact()->events_deleted, 0u);  // retention (60 s) not yet reached
  clock_.Advance(60'000);
  auto report = worker_->Compact();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->events_deleted, 2000u * 3);  // created, cancelled, expired
  const std::uint64_t after = events_bytes();
  std::printf("events family: %llu bytes before retention, %llu after\n",
              static_cast<unsigned long long>(before), static_cast<unsigned long long>(after));
  EXPECT_LT(after, before / 10);
  EXPECT_EQ(store_->log().FirstSeq(), 4001u);  // keeper's job.created
  EXPECT_TRUE(store_->log().ReadJob("h7")->empty());
  EXPECT_EQ(store_->log().ReadJob("keeper")->size(), 1u);
  // A restart agrees: the retained list and the first seq survive.
  Open(true);
  EXPECT_EQ(store_->log().FirstSeq(), 4001u);
  EXPECT_EQ(store_->projection().Size(), 1u);
}

TEST_F(BackgroundTest, DeadlinesAreRebuiltAtStartupAndFireWhenDueWhileDown) {
  Open();
  Create("hitl");
  Run("hitl", StartJob{"w", 0});
  Run("hitl", RequestHitl{"clarify", Json::object(), 60});
  Create("leased");
  Run("leased", StartJob{"w", 30});
  Create("done", 60);
  Run("done", StartJob{});
  Run("done", CompleteJob{});
  clock_.Advance(120'000);  // the server is down for two minutes
  Open();
  EXPECT_EQ(worker_->stats().deadlines, 3u);
  EXPECT_EQ(worker_->FireDue(), 1u);  // the HITL timeout fell due while down
  EXPECT_EQ(Get("hitl")->error->code, "hitl_timeout");
  EXPECT_EQ(Get("leased")->status, JobStatus::kRunning);  // a fresh lease term after restart
  EXPECT_EQ(worker_->Compact()->jobs_expired, 1u);
  clock_.Advance(30'000);
  EXPECT_EQ(worker_->FireDue(), 1u);
  EXPECT_EQ(Get("leased")->status, JobStatus::kPending);
}

TEST_F(BackgroundTest, ScheduledJobBecomesClaimableAtItsRunAtAndADueWhileDownAtStart) {
  Open();
  CreateJob soon;
  soon.job_id = "soon";
  soon.run_at = clock_.NowMs() + 5'000;
  Run("soon", soon);
  CreateJob later = soon;
  later.job_id = "later";
  later.run_at = clock_.NowMs() + 60'000;
  Run("later", later);
  clock_.Advance(4'999);
  EXPECT_EQ(worker_->FireDue(), 0u);
  clock_.Advance(1);
  EXPECT_EQ(worker_->FireDue(), 1u);
  EXPECT_EQ(Get("soon")->status, JobStatus::kPending);
  EXPECT_EQ(Get("later")->status, JobStatus::kScheduled);
  EXPECT_EQ(worker_->stats().jobs_due, 1u);
  clock_.Advance(120'000);  // down past "later"'s run_at
  Open();
  EXPECT_EQ(worker_->FireDue(), 1u);
  EXPECT_EQ(Get("later")->status, JobStatus::kPending);
}

TEST_F(BackgroundTest, RetryPolicyBacksOffExponentiallyThroughFailuresAndLeaseExpiry) {
  Open();
  CreateJob c;
  c.job_id = "flaky";
  c.max_attempts = 3;
  c.retry = RetryPolicy{RetryPolicy::Backoff::kExponential, 1000, 60'000, 0};
  Run("flaky", c);
  Run("flaky", StartJob{"w", 10});
  Run("flaky", FailJob{{"upstream", "503"}});
  EXPECT_EQ(Get("flaky")->status, JobStatus::kScheduled);
  clock_.Advance(999);
  EXPECT_EQ(worker_->FireDue(), 0u);
  clock_.Advance(1);
  EXPECT_EQ(worker_->FireDue(), 1u);  // after 1 s
  Run("flaky", StartJob{"w", 10});
  clock_.Advance(10'000);
  EXPECT_EQ(worker_->FireDue(), 1u);  // the lease expired: the policy applies
  EXPECT_EQ(Get("flaky")->status, JobStatus::kScheduled);
  clock_.Advance(1999);
  EXPECT_EQ(worker_->FireDue(), 0u);
  clock_.Advance(1);
  EXPECT_EQ(worker_->FireDue(), 1u);  // after 2 s
  Run("flaky", StartJob{"w", 10});
  Run("flaky", FailJob{{"upstream", "503"}});
  EXPECT_EQ(Get("flaky")->status, JobStatus::kFailed);  // the third attempt was the last
  EXPECT_EQ(Get("flaky")->errors.size(), 3u);
}

// Several instances: only the writer decides what history goes, it names it in the log (the
// marker) before it deletes, and a copy that applies the log up to the marker and then deletes
// through the marker's seq holds exactly the writer's events.
TEST_F(BackgroundTest, ReplicatedRetentionIsTheWritersAndEveryCopyDeletesTheSameHistory) {
  StoreOptions o;
  o.data_dir = dir_.Sub("data");
  o.clock = &clock_;
  o.track_retained_history = true;
  store_ = std::move(JobStore::Open(o).value());
  bool writer = false;
  bool refuse = false;
  std::vector<std::uint64_t> markers;
  std::vector<std::size_t> events_at_marker;
  BackgroundOptions b;
  b.history_retention_ms = 60'000;
  b.history_batch = 3;  // two markers for five jobs
  b.is_writer = [&] { return writer; };
  b.replicate_retention = [&](std::uint64_t expired_seq) -> Status {
    if (refuse) return Unavailable("not the writer any more");
    markers.push_back(expired_seq);
    std::size_t held = 0;
    EXPECT_TRUE(store_->log().Scan(1, UINT64_MAX, [&](Event&&) { ++held; return true; }).ok());
    events_at_marker.push_back(held);
    return Status::Ok();
  };
  worker_ = std::make_unique<BackgroundWorker>(*store_, b);
  for (int i = 0; i < 5; ++i) {
    Create("r" + std::to_string(i), /*ttl=*/1);
    Run("r" + std::to_string(i), CancelJob{"done"});
  }
  Create("keeper");
  writer = true;  // the expiries are the writer's too
  clock_.Advance(1'000);
  ASSERT_EQ(worker_->Compact()->jobs_expired, 5u);
  std::vector<Event> log;  // what a copy receives: every event, the expiries included
  ASSERT_TRUE(store_->log().Scan(1, UINT64_MAX, [&](Event&& e) { log.push_back(e); return true; }).ok());
  ASSERT_EQ(log.size(), 16u);
  clock_.Advance(60'000);

  writer = false;  // a follower's compaction deletes nothing and marks nothing
  EXPECT_EQ(worker_->Compact()->events_deleted, 0u);
  writer = true;
  refuse = true;  // a marker the stream did not take: nothing deleted here either
  EXPECT_EQ(worker_->Compact()->events_deleted, 0u);
  EXPECT_EQ(store_->log().FirstSeq(), 1u);
  refuse = false;
  auto report = worker_->Compact();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->events_deleted, 15u);
  ASSERT_EQ(markers.size(), 2u);
  // Each marker names the seq of a job.expired event, and was written before the deletion.
  EXPECT_EQ(markers[1], log.back().seq);
  EXPECT_EQ(events_at_marker[0], 16u);
  EXPECT_EQ(events_at_marker[1], 16u - 9u);

  // A copy applies the log and the markers in the stream's order.
  StoreOptions c = o;
  c.data_dir = dir_.Sub("copy");
  auto copy = std::move(JobStore::Open(c).value());
  std::uint64_t stream_seq = 0;
  std::size_t next_marker = 0;
  for (const Event& e : log) {
    ReplicatedBatch batch;
    batch.events.push_back(e);
    batch.records.push_back(eventlog::Serialize(e));
    batch.source_seq = ++stream_seq;
    ASSERT_TRUE(copy->ApplyReplicated(std::move(batch)).ok());
    if (next_marker < markers.size() && e.seq == markers[next_marker]) {
      ASSERT_TRUE(copy->DeleteHistoryExpiredThrough(markers[next_marker++]).ok());
    }
  }
  EXPECT_EQ(next_marker, markers.size());
  EXPECT_EQ(copy->log().FirstSeq(), store_->log().FirstSeq());
  std::vector<std::uint64_t> here, there;
  ASSERT_TRUE(store_->log().Scan(1, UINT64_MAX, [&](Event&& e) { here.push_back(e.seq); return true; }).ok());
  ASSERT_TRUE(copy->log().Scan(1, UINT64_MAX, [&](Event&& e) { there.push_back(e.seq); return true; }).ok());
  EXPECT_EQ(here, there);
  EXPECT_EQ(here.size(), 1u);  // keeper's job.created
  // A marker applied again (a copy that restarted before recording it) deletes nothing.
  EXPECT_EQ(copy->DeleteHistoryExpiredThrough(markers[1]).value(), 0u);
  EXPECT_EQ(copy->log().FirstSeq(), store_->log().FirstSeq());
}

TEST_F(BackgroundTest, SnapshotCarriesRetainedHistoryAcrossRestart) {
  Open(true);
  Create("x", 1);
  Run("x", CancelJob{});
  clock_.Advance(1'000);
  EXPECT_EQ(worker_->Compact()->jobs_expired, 1u);
  ASSERT_TRUE(worker_->Snapshot().ok());
  Open(true);
  EXPECT_EQ(store_->recovery().snapshot_seq, 3u);
  ASSERT_EQ(store_->RetainedHistories().size(), 1u);
  clock_.Advance(60'000);
  EXPECT_EQ(worker_->Compact()->events_deleted, 3u);
}

// Real time, because the point is when a real timer fires beside a real compaction: a lease
// that falls due while 100k expired jobs are being compacted must not wait for the compaction,
// and Stop() must end that compaction between two batches.
TEST(BackgroundDeadlines, ALeaseDueDuringACompactionFiresOnTimeAndStopEndsTheCompaction) {
  TempDir dir;
  StoreOptions o;
  o.data_dir = dir.Sub("data");
  o.log.sync = eventlog::SyncMode::kNone;  // the set-up's 200 commits need no fsync
  auto store = std::move(JobStore::Open(o).value());
  testing::AddExpiredJobs(*store, 100'000);
  CreateJob leased;
  leased.job_id = "leased";
  ASSERT_TRUE(store->Submit(Cmd("leased", leased)).ok());
  ASSERT_TRUE(store->Submit(Cmd("leased", StartJob{"w1", 1})).ok());
  const auto due = std::chrono::steady_clock::now() + std::chrono::seconds(1);

  BackgroundWorker worker(*store, BackgroundOptions{});
  worker.Start();  // the compaction of 100k expired jobs starts at once
  while (store->projection().Get("leased")->status == JobStatus::kRunning &&
         std::chrono::steady_clock::now() < due + std::chrono::seconds(30)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const auto late = std::chrono::steady_clock::now() - due;
  const BackgroundStats during = worker.stats();
  EXPECT_EQ(store->projection().Get("leased")->status, JobStatus::kPending);
  // The compaction was still under way when the lease expired: the two overlapped.
  EXPECT_EQ(during.compactions, 0u);
  EXPECT_GT(store->projection().Size(), 1000u);
  EXPECT_LT(late, std::chrono::seconds(1) * testing::kSanitizerSlowdown);
  std::printf("[ measured ] the lease expired %.0f ms after its deadline, beside a compaction\n",
              std::chrono::duration<double, std::milli>(late).count());

  const auto stop_start = std::chrono::steady_clock::now();
  worker.Stop();
  const auto stop_took = std::chrono::steady_clock::now() - stop_start;
  EXPECT_LT(stop_took, std::chrono::seconds(2) * testing::kSanitizerSlowdown);
  std::printf("[ measured ] Stop() during the compaction took %.0f ms\n",
              std::chrono::duration<double, std::milli>(stop_took).count());
  // Nothing lost: every old job is either still there (cancelled) or expired, and the rest
  // expires at the next start.
  const std::size_t left = store->projection().Size();
  EXPECT_GT(left, 1u);
  BackgroundWorker again(*store, BackgroundOptions{});
  auto report = again.Compact();
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->jobs_expired, left - 1);
  EXPECT_EQ(store->projection().Size(), 1u);
}

}  // namespace
}  // namespace jobstore
