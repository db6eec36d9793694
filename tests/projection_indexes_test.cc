// JobProjection's indexes after a job's next version replaces it in place (Replace moves only the
// index entries whose key changed): every query answers as it does when each version is first
// removed and then added anew, which takes every entry out and puts every entry back.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "jobstore/projections/job_projection.h"

namespace jobstore {
namespace {

// The ids of a page, for comparing two answers.
std::vector<std::string> Ids(const ListPage& page) {
  std::vector<std::string> ids;
  for (const JobPtr& job : page.jobs) ids.push_back(job->job_id);
  if (page.next_cursor) ids.push_back("cursor " + std::to_string(*page.next_cursor));
  return ids;
}

std::string IdOf(const JobPtr& job) { return job ? job->job_id : "(none)"; }

// A random version of job `id`: a few values per field, so that versions often share a key and
// often do not; sometimes a different created_seq (the id taken by a new job).
JobPtr RandomVersion(std::mt19937& rng, const std::string& id, std::uint64_t version,
                     std::uint64_t created_seq) {
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  auto job = std::make_shared<Job>();
  job->job_id = id;
  job->version = version;
  job->created_seq = pick(8) == 0 ? created_seq + 1000 : created_seq;
  job->last_seq = version;
  job->status = static_cast<JobStatus>(pick(kJobStatusCount));
  job->type = "type" + std::to_string(pick(3));
  job->user_id = "user" + std::to_string(pick(3));
  job->priority = pick(3) - 1;
  if (pick(2)) job->run_at = 1000 + pick(3);
  job->created_at = 500 + pick(2);
  if (pick(2)) job->labels["team"] = "t" + std::to_string(pick(2));
  if (pick(3) == 0) job->labels["tier"] = pick(2) ? Json("gold") : Json(7);  // not a string: unindexed
  if (pick(3) == 0) job->idempotency_key = "key" + std::to_string(pick(3));
  if (pick(3) == 0) job->forward_id = "fwd" + std::to_string(pick(3));
  return job;
}

// Every answer the indexes give, for two projections to compare.
void ExpectSameAnswers(const JobProjection& got, const JobProjection& want) {
  EXPECT_EQ(got.Size(), want.Size());
  EXPECT_EQ(got.CountsByStatus(), want.CountsByStatus());
  std::vector<ListQuery> queries(1);
  for (int s = 0; s < kJobStatusCount; ++s) {
    ListQuery q;
    q.statuses = {static_cast<JobStatus>(s)};
    queries.push_back(q);
  }
  for (int i = 0; i < 3; ++i) {
    ListQuery by_type;
    by_type.type = "type" + std::to_string(i);
    ListQuery by_user;
    by_user.user_id = "user" + std::to_string(i);
    by_user.statuses = {JobStatus::kPending, JobStatus::kCompleted};
    queries.push_back(by_type);
    queries.push_back(by_user);
  }
  for (const char* team : {"t0", "t1"}) {
    ListQuery by_label;
    by_label.labels = {{"team", team}};
    by_label.limit = 3;  // with a cursor
    queries.push_back(by_label);
  }
  for (const ListQuery& q : queries) EXPECT_EQ(Ids(got.List(q)), Ids(want.List(q)));
  auto none = [](const Job&) { return false; };
  for (const std::vector<std::string>& types :
       std::vector<std::vector<std::string>>{{}, {"type0"}, {"type1", "type2"}}) {
    EXPECT_EQ(IdOf(got.NextClaimable(types, none)), IdOf(want.NextClaimable(types, none)));
  }
  for (int i = 0; i < 3; ++i) {
    const std::string n = std::to_string(i);
    EXPECT_EQ(IdOf(got.FindByIdempotencyKey("key" + n, 0)), IdOf(want.FindByIdempotencyKey("key" + n, 0)));
    EXPECT_EQ(IdOf(got.FindByForwardId("fwd" + n)), IdOf(want.FindByForwardId("fwd" + n)));
  }
}

TEST(ProjectionIndexes, ANextVersionInPlaceAnswersAsRemovingAndAddingIt) {
  std::mt19937 rng(20261207);
  JobProjection in_place;
  JobProjection anew;
  constexpr int kJobs = 12;
  std::vector<std::uint64_t> versions(kJobs, 0);
  std::uint64_t seq = 0;
  for (int round = 0; round < 3000; ++round) {
    std::vector<std::pair<std::string, JobPtr>> changes;
    const int n = 1 + static_cast<int>(rng() % 4);  // a group commit of a few changes
    for (int c = 0; c < n; ++c) {
      const int j = static_cast<int>(rng() % kJobs);
      const std::string id = "job" + std::to_string(j);
      JobPtr job = rng() % 10 == 0 ? nullptr : RandomVersion(rng, id, ++versions[j], j + 1);
      changes.emplace_back(id, job);
    }
    ++seq;
    in_place.Replace(changes, seq);
    for (const auto& [id, job] : changes) {
      anew.Replace({{id, nullptr}}, seq);
      if (job) anew.Replace({{id, job}}, seq);
    }
    ExpectSameAnswers(in_place, anew);
    if (HasFailure()) {
      ADD_FAILURE() << "answers differ after round " << round;
      return;
    }
  }
}

}  // namespace
}  // namespace jobstore
