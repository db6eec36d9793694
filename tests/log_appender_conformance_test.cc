// The LogAppender contract (eventlog/log_appender.h), run against every implementation: the
// embedded log (LocalAppender) and the replicated log (JetStreamAppender, on a real NATS server
// with JetStream). Plus the JetStream appender's own promises: the fence, and the batch
// message's checks.
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "jobstore/eventlog/event_log.h"
#include "jobstore/eventlog/log_appender.h"
#include "jobstore/replication/batch_message.h"
#include "jobstore/replication/jetstream_appender.h"
#include "jobstore/replication/nats_connection.h"
#include "jobstore/replication/stream_setup.h"
#include "support/nats_cluster.h"
#include "support/temp_dir.h"

namespace jobstore {
namespace {

using eventlog::EventLog;
using eventlog::LogAppender;
using eventlog::SerializedEvent;
using testing::NatsCluster;
using testing::TempDir;

SerializedEvent MakeEvent(std::uint64_t seq, const std::string& job, std::uint64_t version = 1) {
  return {seq, job, version, version == 1 ? EventType::kCreated : EventType::kUpdated,
          1'700'000'000'000 + static_cast<TimeMs>(seq), R"({"n":)" + std::to_string(seq) + "}"};
}

// One implementation under test: its appender over a local log in `dir`.
class AppenderUnderTest {
 public:
  virtual ~AppenderUnderTest() = default;
  virtual LogAppender& appender() = 0;
};

class LocalUnderTest : public AppenderUnderTest {
 public:
  LogAppender& appender() override { return appender_; }

 private:
  eventlog::LocalAppender appender_;
};

// A single NATS server with JetStream is enough for the contract; the cluster tests cover
// replication and failover.
class JetStreamUnderTest : public AppenderUnderTest {
 public:
  JetStreamUnderTest() : nats_(1) {
    replication::NatsOptions options;
    options.urls = replication::SplitUrls(nats_.urls());
    conn_ = std::move(replication::NatsConnection::Connect(options)).value();
    settings_.replicas = 1;
    for (int attempt = 0; attempt < 60; ++attempt) {  // JetStream starts within a second or two
      auto last = replication::EnsureStream(*conn_, settings_);
      if (last.ok()) {
        last_ = *last;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    appender_ = std::make_unique<replication::JetStreamAppender>(*conn_, settings_, 5000);
    Status opened = appender_->OpenEpoch("test-a", last_);
    EXPECT_TRUE(opened.ok()) << opened.ToString();
  }
  LogAppender& appender() override { return *appender_; }
  replication::JetStreamAppender& jetstream() { return *appender_; }
  replication::NatsConnection& conn() { return *conn_; }
  NatsCluster& nats() { return nats_; }
  const replication::StreamSettings& settings() const { return settings_; }
  std::uint64_t StreamLast() { return replication::StreamLastSeq(*conn_, settings_).value(); }

 private:
  NatsCluster nats_;
  std::unique_ptr<replication::NatsConnection> conn_;
  replication::StreamSettings settings_;
  std::uint64_t last_ = 0;
  std::unique_ptr<replication::JetStreamAppender> appender_;
};

using Factory = std::function<std::unique_ptr<AppenderUnderTest>()>;

class LogAppenderConformance : public ::testing::TestWithParam<std::pair<const char*, Factory>> {
 protected:
  void SetUp() override {
    impl_ = GetParam().second();
    log_ = std::move(EventLog::Open(dir_.path())).value();
  }
  TempDir dir_;
  std::unique_ptr<AppenderUnderTest> impl_;
  std::unique_ptr<EventLog> log_;
};

TEST_P(LogAppenderConformance, AnAppendedBatchIsReadableBySeqAndByJob) {
  LogAppender& a = impl_->appender();
  ASSERT_TRUE(a.Append(*log_, {MakeEvent(1, "x"), MakeEvent(2, "y")}).ok());
  ASSERT_TRUE(a.Append(*log_, {MakeEvent(3, "x", 2)}).ok());
  EXPECT_EQ(log_->LastSeq(), 3u);
  auto history = log_->ReadJob("x");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_EQ((*history)[1].seq, 3u);
  EXPECT_EQ((*history)[1].data["n"], 3);
  std::vector<std::uint64_t> seqs;
  ASSERT_TRUE(log_->Scan(1, UINT64_MAX, [&](Event&& e) {
    seqs.push_back(e.seq);
    return true;
  }).ok());
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{1, 2, 3}));
}

TEST_P(LogAppenderConformance, ABatchThatDoesNotContinueTheLogIsRefusedAndNothingIsWritten) {
  LogAppender& a = impl_->appender();
  ASSERT_TRUE(a.Append(*log_, {MakeEvent(1, "x")}).ok());
  EXPECT_FALSE(a.Append(*log_, {MakeEvent(3, "y")}).ok());                     // a gap
  EXPECT_FALSE(a.Append(*log_, {MakeEvent(2, "y"), MakeEvent(4, "z")}).ok());  // a gap inside
  EXPECT_FALSE(a.Append(*log_, {MakeEvent(1, "again")}).ok());                 // a repeat
  EXPECT_EQ(log_->LastSeq(), 1u);
  EXPECT_TRUE(log_->ReadJob("y")->empty());
  // The log goes on where it was.
  EXPECT_TRUE(a.Append(*log_, {MakeEvent(2, "y")}).ok());
}

TEST_P(LogAppenderConformance, WhatWasAcknowledgedIsThereAfterTheLogIsReopened) {
  LogAppender& a = impl_->appender();
  for (std::uint64_t s = 1; s <= 50; ++s) ASSERT_TRUE(a.Append(*log_, {MakeEvent(s, "j" + std::to_string(s))}).ok());
  const std::uint64_t source = log_->SourceSeq();
  ASSERT_TRUE(log_->Close().ok());
  log_ = std::move(EventLog::Open(dir_.path())).value();
  EXPECT_EQ(log_->LastSeq(), 50u);
  EXPECT_EQ(log_->SourceSeq(), source);  // the replicated log's position survives too
  EXPECT_TRUE(a.Append(*log_, {MakeEvent(51, "after")}).ok());
}

TEST_P(LogAppenderConformance, AnEmptyBatchChangesNothing) {
  EXPECT_TRUE(impl_->appender().Append(*log_, {}).ok());
  EXPECT_EQ(log_->LastSeq(), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    EveryImplementation, LogAppenderConformance,
    ::testing::Values(
        std::make_pair("embedded", Factory([] { return std::make_unique<LocalUnderTest>(); })),
        std::make_pair("jetstream", Factory([] { return std::make_unique<JetStreamUnderTest>(); }))),
    [](const auto& info) { return std::string(info.param.first); });

TEST(JetStreamAppender, OnceAnotherWriterOpenedAnEpochTheOldOneCanAppendNothing) {
  JetStreamUnderTest a;
  TempDir dir_a, dir_b;
  auto log_a = std::move(EventLog::Open(dir_a.path())).value();
  ASSERT_TRUE(a.appender().Append(*log_a, {MakeEvent(1, "x")}).ok());
  const std::uint64_t stream_last = a.StreamLast();
  // B caught up to the same point and takes over.
  replication::JetStreamAppender b(a.conn(), a.settings(), 5000);
  ASSERT_TRUE(b.OpenEpoch("test-b", stream_last).ok());
  // A still believes it writes: the chained message id fences it.
  Status refused = a.appender().Append(*log_a, {MakeEvent(2, "from-a")});
  EXPECT_EQ(refused.code(), StatusCode::kUnavailable) << refused.ToString();
  EXPECT_FALSE(a.jetstream().writing());
  EXPECT_EQ(log_a->LastSeq(), 1u);
  EXPECT_EQ(a.StreamLast(), stream_last + 1);  // only B's epoch marker
  EXPECT_EQ(a.jetstream().counters().fence_errors.load(), 1u);
  // A lagging instance cannot open an epoch either.
  replication::JetStreamAppender c(a.conn(), a.settings(), 5000);
  EXPECT_EQ(c.OpenEpoch("test-c", stream_last).code(), StatusCode::kVersionMismatch);
  // And one that is not the writer refuses without publishing.
  EXPECT_EQ(c.Append(*log_a, {MakeEvent(2, "z")}).code(), StatusCode::kUnavailable);
  EXPECT_EQ(a.StreamLast(), stream_last + 1);
  // Nor a retention marker: the fenced writer and the lagging one publish none.
  EXPECT_EQ(a.jetstream().PublishRetention(1).code(), StatusCode::kUnavailable);
  EXPECT_EQ(c.PublishRetention(1).code(), StatusCode::kUnavailable);
  EXPECT_EQ(a.StreamLast(), stream_last + 1);
  // The writer's marker is the next message of its chain, and its batches follow it.
  ASSERT_TRUE(b.PublishRetention(1).ok());
  EXPECT_EQ(b.counters().retention_markers.load(), 1u);
  ASSERT_TRUE(b.Append(*log_a, {MakeEvent(2, "from-b")}).ok());
  EXPECT_EQ(a.StreamLast(), stream_last + 3);
}

// OpenEpoch's fallback where nats-server miscounts the stream's last seq (jetstream_appender.h):
// an epoch fenced on the id of the stream's last message opens only while that message is last.
TEST(JetStreamAppender, AnEpochFencedOnTheLastMessageIdOpensOnlyWhileThatMessageIsLast) {
  JetStreamUnderTest a;  // wrote its epoch marker "test-a:0"
  TempDir dir;
  auto log = std::move(EventLog::Open(dir.path())).value();
  ASSERT_TRUE(a.appender().Append(*log, {MakeEvent(1, "x")}).ok());  // "test-a:1"
  const std::uint64_t last = a.StreamLast();
  // The id of the last message, only when asked at the last seq.
  auto id = replication::LastMessageIdIfAt(a.conn(), a.settings(), last);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(id->value_or("none"), "test-a:1");
  EXPECT_FALSE(replication::LastMessageIdIfAt(a.conn(), a.settings(), last - 1).value().has_value());
  EXPECT_FALSE(replication::LastMessageIdIfAt(a.conn(), a.settings(), 0).value().has_value());
  // A lagging instance (it applied up to the marker only) is refused, and nothing is written.
  replication::JetStreamAppender lagging(a.conn(), a.settings(), 5000);
  EXPECT_EQ(lagging.OpenEpochAfterMessage("test-lag", "test-a:0").code(), StatusCode::kVersionMismatch);
  EXPECT_EQ(a.StreamLast(), last);
  // Two instances caught up to the same message: the first opens, the second is fenced out.
  replication::JetStreamAppender b(a.conn(), a.settings(), 5000), c(a.conn(), a.settings(), 5000);
  bool b_started = false;
  ASSERT_TRUE(b.OpenEpochAfterMessage("test-b", **id, [&] { b_started = true; }).ok());
  EXPECT_TRUE(b.writing());
  EXPECT_TRUE(b_started);
  EXPECT_EQ(c.OpenEpochAfterMessage("test-c", **id).code(), StatusCode::kVersionMismatch);
  EXPECT_FALSE(c.writing());
  EXPECT_EQ(c.counters().fence_errors.load(), 1u);
  // The old writer is fenced by its chain, and the new one's batches follow its marker.
  EXPECT_EQ(a.appender().Append(*log, {MakeEvent(2, "from-a")}).code(), StatusCode::kUnavailable);
  ASSERT_TRUE(b.Append(*log, {MakeEvent(2, "from-b")}).ok());
  EXPECT_EQ(a.StreamLast(), last + 2);
  // OpenEpoch at the true last seq still opens by the seq fence (no fallback needed).
  replication::JetStreamAppender d(a.conn(), a.settings(), 5000);
  EXPECT_TRUE(d.OpenEpoch("test-d", a.StreamLast()).ok());
}

// Waits up to 30 s for the connection to report `connected`; whether it did.
bool WaitUntilConnectedIs(const replication::NatsConnection& conn, bool connected) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (conn.connected() != connected && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return conn.connected() == connected;
}

// nats_connection.h's promise: once the connection saw its server go, an append is refused
// (503, the writer keeps its role) and its message never reaches the stream, neither then nor
// when the connection comes back. (With a reconnect buffer, even of one byte, nats.c kept the
// first such publish, which timed out as "maybe sent" and went out on reconnecting.)
TEST(JetStreamAppender, WhileReconnectingAnAppendIsRefusedAndNeverSentLater) {
  JetStreamUnderTest a;
  TempDir dir;
  auto log = std::move(EventLog::Open(dir.path())).value();
  ASSERT_TRUE(a.appender().Append(*log, {MakeEvent(1, "x")}).ok());
  const std::uint64_t last = a.StreamLast();
  a.nats().Kill(0);
  ASSERT_TRUE(WaitUntilConnectedIs(a.conn(), false)) << "the connection did not notice its server go in 30 s";
  Status refused = a.appender().Append(*log, {MakeEvent(2, "during")});
  EXPECT_EQ(refused.code(), StatusCode::kUnavailable) << refused.ToString();
  EXPECT_TRUE(a.jetstream().writing()) << "a refusal is not an unknown outcome";
  EXPECT_EQ(log->LastSeq(), 1u);
  // The server comes back on its store; the connection reconnects and would flush a kept
  // publish before it reports connected. A new writer fenced on the stream's last seq before
  // the outage opens only if nothing reached the stream since.
  a.nats().Start(0);
  ASSERT_TRUE(WaitUntilConnectedIs(a.conn(), true)) << "the connection did not come back in 30 s";
  replication::JetStreamAppender b(a.conn(), a.settings(), 10000);
  Status opened = b.OpenEpoch("test-b", last);
  EXPECT_TRUE(opened.ok()) << "something reached the stream during the outage: " << opened.ToString();
  EXPECT_EQ(a.StreamLast(), last + 1);  // only b's epoch marker
}

TEST(BatchMessage, ARetentionMarkerNamesASeqOrIsDamage) {
  EXPECT_EQ(replication::ParseRetentionMarker("12345", 7).value(), 12345u);
  for (const char* bad : {"", "12x", "-1", " 1", "99999999999999999999999"}) {
    auto parsed = replication::ParseRetentionMarker(bad, 7);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), StatusCode::kCorruption);
    EXPECT_NE(parsed.status().message().find("stream message 7"), std::string::npos);
  }
}

TEST(BatchMessage, RoundTripsAndNamesTheDamage) {
  std::vector<SerializedEvent> events = {MakeEvent(7, "a"), MakeEvent(8, "b"), MakeEvent(9, "a", 2)};
  const std::string message = replication::EncodeBatchMessage(events);
  auto batch = replication::DecodeBatchMessage(message, 42);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_EQ(batch->source_seq, 42u);
  ASSERT_EQ(batch->records.size(), 3u);
  EXPECT_EQ(batch->records[2].data_json, events[2].data_json);
  EXPECT_EQ(batch->events[2].seq, 9u);
  EXPECT_EQ(batch->events[2].data["n"], 9);
  EXPECT_TRUE(replication::DecodeBatchMessage("", 1)->events.empty());  // an epoch marker
  // Every single flipped byte and every truncation is caught, never applied.
  for (std::size_t i = 0; i < message.size(); ++i) {
    std::string bad = message;
    bad[i] ^= 0x20;
    auto decoded = replication::DecodeBatchMessage(bad, 42);
    if (decoded.ok()) {
      // A flip inside a length or seq field may still decode into something else; it must then
      // at least not be the original batch.
      bool same = decoded->records.size() == 3;
      for (std::size_t k = 0; same && k < 3; ++k) {
        same = decoded->records[k].seq == events[k].seq && decoded->records[k].data_json == events[k].data_json &&
               decoded->records[k].job_id == events[k].job_id;
      }
      EXPECT_FALSE(same) << "byte " << i;
    } else {
      EXPECT_EQ(decoded.status().code(), StatusCode::kCorruption);
    }
  }
  for (std::size_t n = 1; n < message.size(); ++n) {
    auto decoded = replication::DecodeBatchMessage(message.substr(0, n), 42);
    EXPECT_FALSE(decoded.ok() && decoded->records.size() == 3) << "truncated to " << n;
  }
}

}  // namespace
}  // namespace jobstore
