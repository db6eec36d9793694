// Startup's fast paths: the binary job state a snapshot stores, and the partitioned replay.
// Each is checked against the slow, obvious version it replaced.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "jobstore/core/internal/cbor_reader.h"
#include "jobstore/core/decide.h"
#include "jobstore/store/job_state_codec.h"
#include "jobstore/core/json_codec.h"
#include "jobstore/eventlog/format.h"
#include "jobstore/eventlog/record.h"
#include "jobstore/store/job_store.h"
#include "jobstore/store/log_replay.h"
#include "support/temp_dir.h"

namespace jobstore {
namespace {

using testing::TempDir;

Job EveryPartSet() {
  Job job;
  job.job_id = "job-everything";
  job.type = "skill_creation";
  job.status = JobStatus::kFailed;
  job.user_id = "alice";
  job.description = "ünïcode and \"quotes\"";
  job.input = {{"prompt", "draft"}, {"n", -7}, {"big", 18446744073709551615ULL}, {"x", 0.25}};
  job.data = {{"nested", {{"list", {1, "two", nullptr, true}}}}};
  job.labels = {{"team", "ml"}, {"env", "prod"}};
  job.progress = {{"percent", 40}};
  HitlRequest h;
  h.request_id = "h-2";
  h.type = "approve";
  h.prompt = {{"q", "ok?"}};
  h.requested_at = 1'795'867'200'000;
  h.expires_at = 1'795'867'260'000;
  h.response = "yes";
  h.responded_at = 1'795'867'230'000;
  h.responded_by = "bob";
  h.key = "formats";
  job.hitl = h;
  job.hitl_rounds = 2;
  job.result = {{"ok", false}};
  job.error = JobError{"boom", "it broke"};
  job.worker = "worker-9";
  job.lease_expires_at = 1'795'867'300'000;
  job.lease_seconds = 30;
  job.attempt = 2;
  job.max_attempts = 5;
  job.version = 11;
  job.created_at = 1'795'867'100'000;
  job.updated_at = 1'795'867'240'000;
  job.started_at = 1'795'867'150'000;
  job.finished_at = 1'795'867'240'000;
  job.ttl_seconds = -1;  // signed fields keep their sign
  job.idempotency_key = "key-1";
  job.idempotency_fingerprint = "sha256:0f";  // flag bit 0x80: the last of the first byte
  job.created_seq = 4;
  job.last_seq = 90;
  // The extension parts (after the first format).
  job.priority = -7;
  job.run_at = 1'795'867'400'000;
  job.retry = RetryPolicy{RetryPolicy::Backoff::kFixed, 1500, 60'000, 0.25};
  job.errors = {{1, "boom", "first", 1'795'867'160'000}, {2, "lease_expired", "gone", 1'795'867'200'000}};
  job.forward_id = "127.0.0.1:8002-0123456789abcdef/next/0";
  return job;
}

std::string Encode(const Job& job) {
  std::string bytes;
  EncodeJobState(job, &bytes);
  return bytes;
}

TEST(JobStateCodec, RoundTripsAJobWithEveryPartAndOneWithNone) {
  const Job full = EveryPartSet();
  auto decoded = DecodeJobState(Encode(full));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, full);

  Job bare;
  bare.job_id = "j";
  bare.progress = nullptr;
  auto decoded_bare = DecodeJobState(Encode(bare));
  ASSERT_TRUE(decoded_bare.ok());
  EXPECT_EQ(*decoded_bare, bare);
  EXPECT_FALSE(decoded_bare->hitl);
  EXPECT_FALSE(decoded_bare->worker);
  EXPECT_TRUE(decoded_bare->data.is_object());  // {} stays an object, null stays null
  EXPECT_TRUE(decoded_bare->result.is_null());
}

TEST(JobStateCodec, ShortLongOrDamagedBytesAreAnErrorNeverACrash) {
  const Job full = EveryPartSet();
  const std::string bytes = Encode(full);
  // A state of the first format ends where the extension starts: a cut there is a valid (older)
  // state, but not this one.
  Job first_format = full;
  first_format.priority = 0;
  first_format.run_at.reset();
  first_format.retry.reset();
  first_format.errors.clear();
  first_format.forward_id.reset();
  const std::size_t extension_at = Encode(first_format).size();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto cut = DecodeJobState(bytes.substr(0, n));
    if (n == extension_at) {
      ASSERT_TRUE(cut.ok()) << cut.status().ToString();
      EXPECT_EQ(*cut, first_format);
      continue;
    }
    EXPECT_FALSE(cut.ok()) << "cut at " << n;
  }
  EXPECT_FALSE(DecodeJobState(bytes + '\0').ok());
  std::string bad_status = bytes;
  bad_status[0] = kJobStatusCount;
  EXPECT_FALSE(DecodeJobState(bad_status).ok());
  for (std::size_t i = 0; i < bytes.size(); ++i) {  // any outcome but a crash or a hang
    std::string flipped = bytes;
    flipped[i] = static_cast<char>(flipped[i] ^ 0xff);
    (void)DecodeJobState(flipped);
  }
}

Json FromCbor(const std::string& bytes) {
  Json j;
  EXPECT_TRUE(internal::DecodeCbor(bytes, &j)) << "could not decode " << Json(bytes).dump();
  return j;
}

std::string ToCbor(const Json& j) {
  std::string bytes;
  Json::to_cbor(j, bytes);
  return bytes;
}

TEST(CborReader, ReadsWhatNlohmannWritesAsNlohmannDoes) {
  const std::vector<Json> values = {
      nullptr, true, false, 0, 23, 24, 255, 256, 65535, 65536, 4294967296ULL,
      18446744073709551615ULL, -1, -24, -25, -256, -257, -65537, INT64_MIN, 0.5, 0.1, -1e300,
      "", "short", std::string(300, 'x'), "ünïcode ✓", Json::array(), Json::object(),
      Json::array({1, "two", nullptr, Json::array({Json::object({{"deep", true}})})}),
      {{"b", 1}, {"a", {{"c", Json::array()}}}, {"", "empty key"}}};
  for (const Json& v : values) {
    const std::string bytes = ToCbor(v);
    Json ours = FromCbor(bytes);
    const Json theirs = Json::from_cbor(bytes);
    EXPECT_EQ(ours, theirs) << v.dump();
    EXPECT_EQ(ours, v) << v.dump();
    EXPECT_EQ(ours.type(), theirs.type()) << v.dump();  // 1 reads as unsigned, -1 as signed
  }
  EXPECT_EQ(FromCbor(std::string("\xf9\x3c\x00", 3)), 1.0);       // half float
  EXPECT_EQ(FromCbor(std::string("\xf9\xc0\x00", 3)), -2.0);
  EXPECT_EQ(FromCbor(std::string("\xf9\x00\x01", 3)), std::ldexp(1.0, -24));  // subnormal
  EXPECT_EQ(FromCbor(std::string("\xa2\x61\x61\x01\x61\x61\x02", 7)), Json({{"a", 2}}));
}

TEST(CborReader, RejectsWhatIsNotOneJsonValue) {
  const std::vector<std::string> bad = {
      "",
      std::string("\x01\x02", 2),          // a trailing byte
      std::string("\x42\x00\x00", 3),      // a byte string
      std::string("\xc1\x01", 2),          // a tag
      std::string("\x9f\x01\xff", 3),      // an indefinite array
      std::string("\x7f\x61\x61\xff", 4),  // an indefinite string
      std::string("\xa1\x01\x02", 3),      // a map key that is not text
      std::string("\x63" "ab", 3),          // a string past the end
      std::string("\x9b\xff\xff\xff\xff\xff\xff\xff\xff", 9),  // a huge array
      std::string("\x3b\xff\xff\xff\xff\xff\xff\xff\xff", 9),  // below INT64_MIN
      std::string("\xf7", 1),               // undefined
      std::string("\x1c", 1),               // reserved additional information
  };
  for (const std::string& bytes : bad) {
    Json j;
    EXPECT_FALSE(internal::DecodeCbor(bytes, &j)) << Json(bytes).dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  std::string deep(internal::kMaxCborDepth + 2, '\x81');  // arrays in arrays, past the limit
  deep += '\x01';
  Json j;
  EXPECT_FALSE(internal::DecodeCbor(deep, &j));
  EXPECT_TRUE(internal::DecodeCbor(deep.substr(2), &j));
}

// A log with every kind of history: jobs created, run, asked, answered, finished, expired.
class ReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StoreOptions o;
    o.data_dir = dir_.Sub("data");
    o.clock = &clock_;
    o.use_snapshots = false;
    auto store = std::move(JobStore::Open(o).value());
    auto submit = [&](const std::string& id, CommandBody body) {
      auto out = store->Submit(Command{id, {}, {}, std::move(body)});
      ASSERT_TRUE(out.ok()) << id << ": " << out.status().ToString();
    };
    for (int i = 0; i < 400; ++i) {
      const std::string id = "job-" + std::to_string(i);
      CreateJob c;
      c.job_id = id;
      c.type = i % 2 ? "odd" : "even";
      c.ttl_seconds = 1;
      c.labels = {{"n", std::to_string(i % 5)}};
      submit(id, c);
      if (i % 4 == 0) continue;
      submit(id, StartJob{"w", 0});
      submit(id, UpdateJob{Json{{"percent", i}}, Json{{"step", i}}, std::nullopt});
      if (i % 4 == 1) {
        submit(id, RequestHitl{"clarify", {{"q", i}}, std::nullopt});
        submit(id, AnswerHitl{"h-1", "yes", "bob"});
      }
      if (i % 4 == 3) submit(id, CompleteJob{{{"i", i}}});
    }
    clock_.Advance(5000);
    for (int i = 3; i < 400; i += 8) submit("job-" + std::to_string(i), ExpireJob{});
    for (int i = 400; i < 450; ++i) {  // created after the expiries
      CreateJob c;
      c.job_id = "job-" + std::to_string(i);
      submit(c.job_id, c);
    }
    ASSERT_TRUE(store->Close().ok());
    log_ = std::move(eventlog::EventLog::Open(o.data_dir).value());
  }

  // The obvious replay: every event in seq order into one map.
  std::vector<Job> SequentialJobs(std::uint64_t to_seq, std::vector<RetainedHistory>* expired) {
    std::map<std::uint64_t, std::string> order;
    std::map<std::string, std::optional<Job>> live;
    EXPECT_TRUE(log_->Scan(1, to_seq, [&](Event&& e) {
      auto& job = live[e.job_id];
      EXPECT_TRUE(ApplyInPlace(job, e).ok());
      if (e.type == EventType::kCreated) order[e.seq] = e.job_id;
      if (e.type == EventType::kExpired) {
        if (expired) expired->push_back({e.job_id, job->created_seq, e.seq, e.at});
        order.erase(job->created_seq);
        live.erase(e.job_id);
      }
      return true;
    }).ok());
    std::vector<Job> jobs;
    for (const auto& [seq, id] : order) jobs.push_back(*live[id]);
    return jobs;
  }

  static std::vector<Job> Values(const std::vector<std::shared_ptr<Job>>& jobs) {
    std::vector<Job> out;
    for (const auto& j : jobs) out.push_back(*j);
    return out;
  }

  TempDir dir_;
  ManualClock clock_{1'795'867'200'000};
  std::unique_ptr<eventlog::EventLog> log_;
};

TEST_F(ReplayTest, EveryPartitionCountGivesTheSequentialResult) {
  std::vector<RetainedHistory> expired;
  const std::vector<Job> expected = SequentialJobs(UINT64_MAX, &expired);
  ASSERT_EQ(expected.size(), 450u - 50u);
  for (unsigned partitions : {1u, 2u, 3u, 4u, 7u}) {
    auto replayed = ReplayLog(*log_, 1, {}, partitions);
    ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
    EXPECT_EQ(Values(replayed->jobs), expected) << partitions << " partitions";
    EXPECT_EQ(replayed->events, log_->LastSeq());
    ASSERT_EQ(replayed->expired.size(), expired.size());
    for (std::size_t i = 0; i < expired.size(); ++i) {
      EXPECT_EQ(replayed->expired[i].job_id, expired[i].job_id);
      EXPECT_EQ(replayed->expired[i].expired_seq, expired[i].expired_seq);
      EXPECT_EQ(replayed->expired[i].created_seq, expired[i].created_seq);
    }
  }
}

TEST_F(ReplayTest, ATailAfterASnapshotChangesExpiresAndAddsJobs) {
  // The jobs as of the middle of the log stand in for a snapshot's.
  const std::uint64_t middle = log_->LastSeq() / 2;
  std::vector<std::shared_ptr<Job>> at_middle;
  for (Job& j : SequentialJobs(middle, nullptr)) at_middle.push_back(std::make_shared<Job>(j));
  auto replayed = ReplayLog(*log_, middle + 1, std::move(at_middle), 3);
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  EXPECT_EQ(Values(replayed->jobs), SequentialJobs(UINT64_MAX, nullptr));
  EXPECT_EQ(replayed->events, log_->LastSeq() - middle);
}

TEST_F(ReplayTest, TheFirstBrokenEventInSeqOrderIsReported) {
  // Two broken events on jobs of different partitions; the later one may be met first.
  const std::uint64_t first_bad = log_->LastSeq() + 1;
  std::vector<Event> bad;
  for (int i = 0; i < 8; ++i) {  // complete pending jobs: not allowed
    const std::string id = "job-" + std::to_string(400 + i);
    bad.push_back(Event{first_bad + i, id, 2, EventType::kCompleted, 0, {{"result", 1}}});
  }
  ASSERT_TRUE(log_->TEST_Append(bad).ok());
  for (unsigned partitions : {1u, 4u}) {
    auto replayed = ReplayLog(*log_, 1, {}, partitions);
    ASSERT_FALSE(replayed.ok());
    EXPECT_EQ(replayed.status().code(), StatusCode::kCorruption);
    EXPECT_NE(replayed.status().message().find("seq " + std::to_string(first_bad) + " "),
              std::string::npos)
        << replayed.status().message();
  }
}

TEST(SnapshotFormat, AnOlderFormatIsIgnoredWithAWarningAndTheLogReplayed) {
  TempDir dir;
  StoreOptions o;
  o.data_dir = dir.Sub("data");
  {
    auto store = std::move(JobStore::Open(o).value());
    for (int i = 0; i < 3; ++i) {
      CreateJob c;
      c.job_id = "f" + std::to_string(i);
      ASSERT_TRUE(store->Submit(Command{c.job_id, {}, {}, c}).ok());
    }
  }
  // A well-formed format-1 file (right magic and checksum) naming seq 3 and no jobs.
  std::string bytes("JOBSNAP\0", 8);
  eventlog::PutFixed32LE(&bytes, 1);
  eventlog::PutFixed64LE(&bytes, 3);
  eventlog::PutFixed64LE(&bytes, 0);
  eventlog::PutFixed64LE(&bytes, 0);
  eventlog::PutFixed32LE(&bytes, eventlog::Crc32c(bytes));
  std::filesystem::create_directories(SnapshotDir(o.data_dir));
  std::ofstream(SnapshotDir(o.data_dir) + "/" + SnapshotFileName(3), std::ios::binary) << bytes;

  auto store = std::move(JobStore::Open(o).value());
  EXPECT_EQ(store->recovery().snapshot_seq, 0u);
  EXPECT_EQ(store->recovery().events_replayed, 3u);
  EXPECT_EQ(store->projection().Size(), 3u);
  ASSERT_EQ(store->recovery().warnings.size(), 1u);
  EXPECT_NE(store->recovery().warnings[0].find("format 1 is not 2"), std::string::npos)
      << store->recovery().warnings[0];
}

TEST(SnapshotFormat, JobsAndRetainedHistoriesSurviveASnapshotRoundTrip) {
  TempDir dir;
  ManualClock clock{1'795'867'200'000};
  StoreOptions o;
  o.data_dir = dir.Sub("data");
  o.clock = &clock;
  o.track_retained_history = true;
  std::vector<Json> jobs_before;
  std::vector<RetainedHistory> retained_before;
  {
    auto store = std::move(JobStore::Open(o).value());
    for (int i = 0; i < 6; ++i) {
      CreateJob c;
      c.job_id = "r" + std::to_string(i);
      c.ttl_seconds = 1;
      ASSERT_TRUE(store->Submit(Command{c.job_id, {}, {}, c}).ok());
      ASSERT_TRUE(store->Submit(Command{c.job_id, {}, {}, CancelJob{"done"}}).ok());
    }
    clock.Advance(2000);
    for (int i = 0; i < 3; ++i) {  // three expire; their histories are retained
      ASSERT_TRUE(store->Submit(Command{"r" + std::to_string(i), {}, {}, ExpireJob{}}).ok());
    }
    ASSERT_TRUE(store->WriteSnapshot().ok());
    store->projection().ForEach([&](const JobPtr& j) { jobs_before.push_back(JobToJson(*j)); });
    retained_before = store->RetainedHistories();
  }
  ASSERT_EQ(retained_before.size(), 3u);
  auto store = std::move(JobStore::Open(o).value());
  EXPECT_GT(store->recovery().snapshot_seq, 0u);
  EXPECT_EQ(store->recovery().events_replayed, 0u);
  std::vector<Json> jobs_after;
  store->projection().ForEach([&](const JobPtr& j) { jobs_after.push_back(JobToJson(*j)); });
  EXPECT_EQ(jobs_after, jobs_before);
  const auto retained_after = store->RetainedHistories();
  ASSERT_EQ(retained_after.size(), retained_before.size());
  for (std::size_t i = 0; i < retained_after.size(); ++i) {
    EXPECT_EQ(retained_after[i].job_id, retained_before[i].job_id);
    EXPECT_EQ(retained_after[i].created_seq, retained_before[i].created_seq);
    EXPECT_EQ(retained_after[i].expired_seq, retained_before[i].expired_seq);
    EXPECT_EQ(retained_after[i].expired_at, retained_before[i].expired_at);
  }
}

}  // namespace
}  // namespace jobstore
