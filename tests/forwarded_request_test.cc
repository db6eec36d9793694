// Forwarded writes (several instances): a write another instance forwarded carries a request id
// (Command::forward_id); the store stamps it into the events it makes, and a repeat of the
// write (its answer was lost with a writer that died) is answered from what the first one made,
// never applied twice: in the same group commit, after the projection applied it, after a
// reopen (the log replayed) and after a snapshot.
#include <gtest/gtest.h>

#include "jobstore/store/job_store.h"
#include "support/temp_dir.h"

namespace jobstore {
namespace {

using testing::TempDir;

Command Forwarded(std::string id, CommandBody body, std::string forward_id) {
  Command c{std::move(id), {}, {}, std::move(body)};
  c.forward_id = std::move(forward_id);
  return c;
}

Command Create(const std::string& id) {
  CreateJob c;
  c.job_id = id;
  c.type = "t";
  return Command{id, {}, {}, c};
}

class ForwardedRequestTest : public ::testing::Test {
 protected:
  std::unique_ptr<JobStore> OpenStore() {
    StoreOptions o;
    o.data_dir = dir_.Sub("data");
    o.clock = &clock_;
    auto s = JobStore::Open(o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  TempDir dir_;
  ManualClock clock_{1'795'867'200'000};
};

TEST_F(ForwardedRequestTest, ARepeatedCreateIsAnsweredWithTheFirstJobAcrossReopenAndSnapshot) {
  auto create = [](const std::string& job_id) {  // a server-chosen id: each attempt a new one
    CreateJob c;
    c.job_id = job_id;
    return Forwarded(job_id, c, "b-1");
  };
  {
    auto store = OpenStore();
    auto first = store->Submit(create("first"));
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    EXPECT_FALSE(first->deduplicated);
    EXPECT_EQ(*first->job->forward_id, "b-1");
    auto again = store->Submit(create("second"));
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->deduplicated);
    EXPECT_EQ(again->job->job_id, "first");
    EXPECT_EQ(store->log().LastSeq(), 1u);
  }
  {
    auto store = OpenStore();  // the log replayed
    auto again = store->Submit(create("third"));
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->deduplicated);
    EXPECT_EQ(again->job->job_id, "first");
    ASSERT_TRUE(store->WriteSnapshot().ok());
  }
  auto store = OpenStore();  // from the snapshot
  ASSERT_EQ(store->recovery().snapshot_seq, 1u);
  auto again = store->Submit(create("fourth"));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->deduplicated);
  EXPECT_EQ(store->projection().Size(), 1u);
  EXPECT_EQ(store->log().LastSeq(), 1u);
}

TEST_F(ForwardedRequestTest, ARepeatedFinishIsNotAppliedAgainAndALaterChangeEndsTheMatch) {
  auto store = OpenStore();
  ASSERT_TRUE(store->Submit(Create("j")).ok());
  ASSERT_TRUE(store->Submit(Command{"j", {}, {}, StartJob{"w", 0}}).ok());
  auto done = store->Submit(Forwarded("j", CompleteJob{Json{{"n", 1}}}, "b-2"));
  ASSERT_TRUE(done.ok());
  auto again = store->Submit(Forwarded("j", CompleteJob{Json{{"n", 1}}}, "b-2"));
  ASSERT_TRUE(again.ok()) << again.status().ToString();  // not 409: it was this request
  EXPECT_TRUE(again->deduplicated);
  EXPECT_EQ(again->job->version, 3u);
  EXPECT_EQ(store->log().LastSeq(), 3u);
  // Another id is another request: decided as usual (a completed job cannot complete).
  EXPECT_EQ(store->Submit(Forwarded("j", CompleteJob{Json()}, "b-3")).status().code(),
            StatusCode::kInvalidTransition);
  // A change that carries no id clears it: a repeat after that is decided as usual.
  ASSERT_TRUE(store->Submit(Create("k")).ok());
  ASSERT_TRUE(store->Submit(Forwarded("k", UpdateJob{Json{{"p", 1}}, std::nullopt, std::nullopt}, "b-4")).ok());
  ASSERT_TRUE(store->Submit(Command{"k", {}, {}, UpdateJob{Json{{"p", 2}}, std::nullopt, std::nullopt}}).ok());
  EXPECT_FALSE(store->projection().Get("k")->forward_id);
  auto repeat = store->Submit(Forwarded("k", UpdateJob{Json{{"p", 1}}, std::nullopt, std::nullopt}, "b-4"));
  ASSERT_TRUE(repeat.ok());
  EXPECT_FALSE(repeat->deduplicated);
  EXPECT_EQ(repeat->job->version, 4u);
}

TEST_F(ForwardedRequestTest, ARepeatedClaimGetsTheJobsTheFirstOneTook) {
  auto store = OpenStore();
  for (const char* id : {"a", "b", "c"}) ASSERT_TRUE(store->Submit(Create(id)).ok());
  ClaimRequest claim{"w", {}, 30, 2};
  claim.forward_id = "b-5";
  auto first = store->Claim(claim);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->jobs.size(), 2u);
  auto again = store->Claim(claim);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->deduplicated);
  ASSERT_EQ(again->jobs.size(), 2u);
  EXPECT_EQ(again->jobs[0]->job_id, first->jobs[0]->job_id);
  EXPECT_EQ(again->jobs[1]->job_id, first->jobs[1]->job_id);
  EXPECT_EQ(store->projection().Get("c")->status, JobStatus::kPending);  // not taken by the repeat
  EXPECT_EQ(store->log().LastSeq(), 5u);
}

TEST_F(ForwardedRequestTest, ARepeatedFinishWithNextGetsTheSameNextJob) {
  auto store = OpenStore();
  for (const char* id : {"a", "b", "c"}) ASSERT_TRUE(store->Submit(Create(id)).ok());
  ASSERT_TRUE(store->Submit(Command{"a", {}, {}, StartJob{"w", 30}}).ok());
  CompleteJob complete{Json{{"ok", true}}, ClaimRequest{"w", {}, 30, 1}};
  auto first = store->Submit(Forwarded("a", complete, "b-6"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(first->next);
  EXPECT_EQ(first->next->job_id, "b");
  auto again = store->Submit(Forwarded("a", complete, "b-6"));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->deduplicated);
  ASSERT_TRUE(again->next);
  EXPECT_EQ(again->next->job_id, "b");
  EXPECT_EQ(store->projection().Get("c")->status, JobStatus::kPending);
}

TEST_F(ForwardedRequestTest, TwoAttemptsInOneGroupCommitApplyOnce) {
  auto store = OpenStore();
  CreateJob c;
  c.job_id = "x1";
  CreateJob d;
  d.job_id = "x2";
  // SubmitAll decides both in one write: the second finds the first in the batch's overlay.
  auto both = store->SubmitAll({Forwarded("x1", c, "b-7"), Forwarded("x2", d, "b-7")});
  ASSERT_TRUE(both.ok()) << both.status().ToString();
  EXPECT_FALSE((*both)[0].deduplicated);
  EXPECT_TRUE((*both)[1].deduplicated);
  EXPECT_EQ((*both)[1].job->job_id, "x1");
  EXPECT_EQ(store->projection().Size(), 1u);
}

TEST_F(ForwardedRequestTest, TheIdIsInTheEventsData) {
  auto store = OpenStore();
  CreateJob c;
  c.job_id = "e";
  ASSERT_TRUE(store->Submit(Forwarded("e", c, "b-8")).ok());
  std::vector<Event> events;
  ASSERT_TRUE(store->log().Scan(1, UINT64_MAX, [&](Event&& e) { events.push_back(e); return true; }).ok());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data["forward_id"], "b-8");
}

}  // namespace
}  // namespace jobstore
