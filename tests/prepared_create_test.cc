// PrepareCreate: a create decided and applied in the caller's thread and stamped by the writer
// gives the job and the log record that Decide + Apply give at the stamp, byte for byte.
#include "jobstore/store/internal/prepared_create.h"

#include <gtest/gtest.h>

#include <random>

#include "jobstore/core/decide.h"
#include "jobstore/core/json_codec.h"
#include "jobstore/eventlog/record.h"
#include "jobstore/store/job_store.h"
#include "support/temp_dir.h"

namespace jobstore {
namespace {

// Creates that differ in every field Decide and Apply read, including values Apply normalizes
// (a null input, labels that are not an object) and text the serializer escapes.
Command RandomCreate(std::mt19937& rng, int i) {
  CreateJob c;
  c.job_id = "job-" + std::to_string(i);
  if (rng() % 2) c.type = "type-" + std::to_string(rng() % 5);
  if (rng() % 2) c.user_id = "user-" + std::to_string(rng() % 3);
  if (rng() % 2) c.description = "line one\nline \"two\" \u00e9\u4e2d\t";
  switch (rng() % 4) {
    case 0: break;  // the default empty object
    case 1: c.input = nullptr; break;
    case 2: c.input = Json{{"prompt", "x"}, {"n", static_cast<int>(rng() % 99)}, {"f", 0.5}}; break;
    case 3: c.input = Json::array({1, "two", nullptr, Json{{"deep", {{"er", true}}}}}); break;
  }
  if (rng() % 2) c.labels = Json{{"team", "a"}, {"k" + std::to_string(rng() % 9), "v"}};
  if (rng() % 5 == 0) c.labels = nullptr;
  c.ttl_seconds = static_cast<std::int64_t>(rng() % 100000);
  c.max_attempts = static_cast<std::uint32_t>(1 + rng() % 10);
  if (rng() % 3 == 0) c.idempotency_key = "key-" + std::to_string(i);
  return Command{c.job_id, std::nullopt, std::nullopt, std::move(c)};
}

TEST(PreparedCreateTest, StampedJobAndRecordEqualDecideAndApply) {
  std::mt19937 rng(7);
  for (int i = 0; i < 500; ++i) {
    const Command command = RandomCreate(rng, i);
    const std::uint64_t seq = 1 + rng() % 1000000;
    const TimeMs now = 1'700'000'000'000 + static_cast<TimeMs>(rng() % 1000000);

    auto events = Decide(nullptr, command, now);
    ASSERT_TRUE(events.ok()) << events.status().ToString();
    ASSERT_EQ(events->size(), 1u);
    Event event = events->front();
    event.seq = seq;
    auto expected = Apply(nullptr, event);
    ASSERT_TRUE(expected.ok()) << expected.status().ToString();

    auto prepared = internal::PrepareCreate(command);
    ASSERT_TRUE(prepared.has_value());
    StampCreated(*prepared->job, seq, now);
    EXPECT_EQ(*prepared->job, *expected) << "create " << i;
    EXPECT_EQ(JobToJson(*prepared->job), JobToJson(*expected)) << "create " << i;

    const eventlog::SerializedEvent written{seq, command.job_id, 1, EventType::kCreated, now,
                                            prepared->data_json};
    EXPECT_EQ(eventlog::EncodeRecord(written), eventlog::EncodeRecord(event)) << "create " << i;
  }
}

TEST(PreparedCreateTest, OnlyCreatesArePrepared) {
  EXPECT_FALSE(internal::PrepareCreate(Command{"j", {}, {}, StartJob{"w", 30}}).has_value());
  EXPECT_FALSE(internal::PrepareCreate(Command{"j", {}, {}, CancelJob{"no"}}).has_value());
}

// Through the store: every job the writer stamped equals the job replay builds from its record,
// and creates that the writer must refuse (an id taken earlier in the same batch) still are.
TEST(PreparedCreateTest, StoreJobsEqualTheirReplayedRecords) {
  testing::TempDir dir;
  ManualClock clock(1'700'000'000'000);
  StoreOptions options;
  options.data_dir = dir.Sub("data");
  options.clock = &clock;
  std::mt19937 rng(11);
  std::vector<Command> commands;
  for (int i = 0; i < 200; ++i) commands.push_back(RandomCreate(rng, i));
  commands.push_back(RandomCreate(rng, 3));  // the id of an earlier create in the same batch
  std::vector<Json> live;
  {
    auto store = JobStore::Open(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto results = (*store)->SubmitEach(commands);
    ASSERT_EQ(results.size(), commands.size());
    for (std::size_t i = 0; i + 1 < results.size(); ++i) {
      ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status().ToString();
    }
    EXPECT_EQ(results.back().status().code(), StatusCode::kAlreadyExists);
    EXPECT_EQ(results.back().status().message(), "job 'job-3' already exists");
    (*store)->projection().ForEach([&](const JobPtr& j) { live.push_back(JobToJson(*j)); });
    ASSERT_TRUE((*store)->Close().ok());
  }
  options.use_snapshots = false;
  auto reopened = JobStore::Open(options);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_EQ((*reopened)->recovery().events_replayed, 200u);
  std::vector<Json> replayed;
  (*reopened)->projection().ForEach([&](const JobPtr& j) { replayed.push_back(JobToJson(*j)); });
  EXPECT_EQ(replayed, live);
}

}  // namespace
}  // namespace jobstore
