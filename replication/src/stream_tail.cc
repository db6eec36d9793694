#include "jobstore/replication/stream_tail.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>

#include "jobstore/replication/batch_message.h"
#include "jobstore/replication/wait_while_unavailable.h"

namespace jobstore::replication {

StreamTail::StreamTail(const NatsConnection& conn, StreamSettings settings, JobStore& store,
                       std::function<bool()> writing)
    : conn_(conn), settings_(std::move(settings)), store_(store), writing_(std::move(writing)) {}

StreamTail::~StreamTail() { Stop(); }

Status StreamTail::Start(std::uint64_t catch_up_to) {
  catch_up_to_ = catch_up_to;
  started_ = std::chrono::steady_clock::now();
  start_event_seq_ = store_.log().LastSeq();
  // Creating the consumer is a JetStream API request: a NATS server that is busy (or electing a
  // stream leader) answers it late, so a timeout is waited out as ClusterNode::Connect waits for
  // the stream, instead of failing the start (seen in CI beside two test suites and a sanitizer
  // build: "tailing stream 'AGED' from seq 23: Timeout").
  JOBSTORE_RETURN_IF_ERROR(WaitWhileUnavailable(
      "JetStream", std::chrono::steady_clock::now() + kStartWait, [this] { return Subscribe(); }));
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "jobstore-tail");
    Run();
  });
  return Status::Ok();
}

Status StreamTail::Subscribe() {
  Unsubscribe();
  const std::uint64_t from = store_.log().SourceSeq() + 1;
  // Messages this copy lacks that aged out of the stream (--stream-max-age): it cannot catch up
  // by following; it must be seeded again. (When the stream cannot be read, the subscription
  // below meets the same trouble and reports it.)
  if (auto first = StreamFirstSeq(conn_, settings_); first.ok() && *first > from) {
    Fail("the stream's oldest message is seq " + std::to_string(*first) + " but this copy reached "
         "seq " + std::to_string(from - 1) + ": the messages between aged out (--stream-max-age). "
         "Seed this instance from a backup of a live instance (jobstore backup; README, "
         "\"Catching up\") and start it again");
    return Status::Ok();
  }
  const std::string subject = settings_.subject();
  jsSubOptions opts;
  jsSubOptions_Init(&opts);
  opts.Stream = settings_.stream.c_str();
  opts.Ordered = true;
  opts.Config.DeliverPolicy = js_DeliverByStartSequence;
  opts.Config.OptStartSeq = from;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsSubscription* sub = nullptr;
  JOBSTORE_RETURN_IF_ERROR(
      FromNats(js_SubscribeSync(&sub, conn_.js(), subject.c_str(), nullptr, &opts, &jerr),
               "tailing stream '" + settings_.stream + "' from seq " + std::to_string(from), jerr));
  // The consumer may hold a batch of messages in memory; a long catch-up is paced by the store.
  natsSubscription_SetPendingLimits(sub, 1 << 16, 256 << 20);
  sub_ = sub;
  return Status::Ok();
}

void StreamTail::Unsubscribe() {
  if (!sub_) return;
  natsSubscription_Unsubscribe(sub_);
  natsSubscription_Destroy(sub_);
  sub_ = nullptr;
}

bool StreamTail::Stalled(std::chrono::steady_clock::time_point last_progress) {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_progress < kStallAfter || now - last_checked_ < kStallAfter / 2) return false;
  last_checked_ = now;
  auto last = StreamLastSeq(conn_, settings_);
  return last.ok() && *last > store_.log().SourceSeq();
}

void StreamTail::Stop() {
  stopping_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
  Unsubscribe();
}

std::string StreamTail::failure() const {
  MutexLock lock(&mu_);
  return failure_;
}

void StreamTail::Fail(const std::string& why) {
  spdlog::critical("replication: this copy stops following the stream: {}", why);
  MutexLock lock(&mu_);
  failure_ = why;
}

namespace {
// The stream seq of a JetStream message; 0 for a control message.
std::uint64_t StreamSeqOf(natsMsg* msg) {
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, msg) != NATS_OK) return 0;
  const std::uint64_t seq = meta->Sequence.Stream;
  jsMsgMetaData_Destroy(meta);
  return seq;
}
}  // namespace

void StreamTail::Run() {
  constexpr std::size_t kMaxMessagesPerApply = 256;
  constexpr std::size_t kMaxEventsPerApply = 16384;
  auto last_progress = std::chrono::steady_clock::now();
  // One batch is applied on the writer thread while this thread reads and decodes the next:
  // decoding (checksums, JSON) and applying (projection, local write) overlap.
  std::optional<JobStore::PendingApply> in_flight;
  std::uint64_t in_flight_last = 0;  // its last stream seq
  std::size_t in_flight_messages = 0;
  auto settle = [&]() -> bool {  // waits for the batch in flight; false: this copy must stop
    if (!in_flight) return true;
    Status applied = in_flight->Wait();
    in_flight.reset();
    if (!applied.ok()) {  // a diverged copy, or a local log that refuses writes
      if (!stopping_.load()) {
        Fail("applying up to stream seq " + std::to_string(in_flight_last) + ": " + applied.message());
      }
      return false;
    }
    applied_.fetch_add(in_flight_messages, std::memory_order_relaxed);
    LogCaughtUp(in_flight_last);
    return true;
  };
  // A retention marker deletes once every message before it is applied, and before any after.
  auto apply_retention = [&](const RetentionMarker& marker) -> bool {
    if (!settle()) return false;
    auto deleted = store_.DeleteHistoryExpiredThrough(marker.expired_seq);
    if (!deleted.ok()) {
      Fail("applying the retention marker at stream seq " + std::to_string(marker.stream_seq) +
           " (history expired through seq " + std::to_string(marker.expired_seq) +
           "): " + deleted.status().message());
      return false;
    }
    retention_events_deleted_.fetch_add(*deleted, std::memory_order_relaxed);
    spdlog::debug("replication: retention marker at stream seq {}: deleted {} events of history "
                  "expired through seq {}", marker.stream_seq, *deleted, marker.expired_seq);
    // Applied: the copy's source seq moves past it (an empty batch).
    ReplicatedBatch moved;
    moved.source_seq = marker.stream_seq;
    in_flight_last = marker.stream_seq;
    in_flight_messages = 1;
    in_flight.emplace(store_.ApplyReplicatedAsync(std::move(moved)));
    return true;
  };
  while (!stopping_.load(std::memory_order_acquire)) {
    // nats.c's ordered consumer re-creates itself after its server died, but not when the
    // stream had no leader at that moment: a tail that hears nothing while the stream has
    // messages it lacks subscribes again from what it holds.
    if (!sub_ || Stalled(last_progress)) {
      if (!settle()) return;
      if (!failure().empty()) return;  // Subscribe found the copy behind the stream's start
      if (Status st = Subscribe(); !st.ok()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        continue;
      }
      if (!sub_) return;  // it failed: behind the stream's first message
      ++resubscribed_;
      spdlog::info("replication: following the stream again from seq {}", store_.log().SourceSeq() + 1);
      last_progress = std::chrono::steady_clock::now();
    }
    // One message (waiting for it), then whatever else is already here: a copy that catches up
    // applies many messages in one local write.
    ReplicatedBatch batch;
    std::size_t messages = 0;
    std::optional<RetentionMarker> retention;  // ends the batch
    for (int timeout_ms = 250; messages < kMaxMessagesPerApply && batch.events.size() < kMaxEventsPerApply;
         timeout_ms = 0) {
      int pending = 0;
      const bool more_here =
          natsSubscription_GetPending(sub_, &pending, nullptr) == NATS_OK && pending > 0;
      if (timeout_ms == 0 && !more_here) break;
      // Nothing to decode meanwhile: settle the batch in flight before waiting.
      if (!more_here && !settle()) return;
      natsMsg* raw = nullptr;
      natsStatus s = natsSubscription_NextMsg(&raw, sub_, std::max(timeout_ms, 1));
      if (s == NATS_TIMEOUT) break;
      if (s != NATS_OK) {
        // The ordered consumer re-creates itself after a disconnect or a missed heartbeat; the
        // subscription only ends when it is closed.
        if (s == NATS_CONNECTION_CLOSED) {
          if (!stopping_.load()) Fail(std::string("the NATS connection was closed: ") + natsStatus_GetText(s));
          return;
        }
        if (s == NATS_INVALID_SUBSCRIPTION) Unsubscribe();  // subscribe again next round
        break;
      }
      std::unique_ptr<natsMsg, void (*)(natsMsg*)> msg(raw, natsMsg_Destroy);
      last_progress = std::chrono::steady_clock::now();
      const std::uint64_t stream_seq = StreamSeqOf(msg.get());
      if (stream_seq == 0) continue;  // a control message
      if (stream_seq <= batch.source_seq) continue;  // the ordered consumer delivered it again
      if (stream_seq <= std::max(store_.log().SourceSeq(), in_flight ? in_flight_last : 0)) {
        // This copy holds it already (the writer's own messages), and so every message before
        // it, those joined so far included.
        batch = ReplicatedBatch{};
        messages = 0;
        continue;
      }
      const char* marked = nullptr;
      if (natsMsgHeader_Get(msg.get(), kRetentionHeader, &marked) == NATS_OK && marked) {
        if (writing_ && writing_()) continue;  // this writer's own marker: its compaction deletes
        auto through = ParseRetentionMarker(marked, stream_seq);
        if (!through.ok()) return Fail(through.status().message());
        retention = RetentionMarker{stream_seq, *through};
        break;  // applied once every message before it is
      }
      auto decoded = DecodeBatchMessage(
          std::string_view(natsMsg_GetData(msg.get()),
                           static_cast<std::size_t>(natsMsg_GetDataLength(msg.get()))),
          stream_seq);
      if (!decoded.ok()) return Fail(decoded.status().message());
      if (Status joined = AppendBatch(batch, std::move(decoded).value()); !joined.ok()) {
        return Fail(joined.message());
      }
      ++messages;
    }
    // The batch before this one first (an idle round only settles it).
    if (!settle()) return;
    if (messages > 0) {
      in_flight_last = batch.source_seq;
      in_flight_messages = messages;
      in_flight.emplace(store_.ApplyReplicatedAsync(std::move(batch)));
    }
    if (retention && !apply_retention(*retention)) return;
  }
  settle();
}

void StreamTail::LogCaughtUp(std::uint64_t last) {
  if (caught_up_logged_ || last < catch_up_to_) return;
  caught_up_logged_ = true;
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  const std::uint64_t events = store_.log().LastSeq() - start_event_seq_;
  spdlog::info("replication: caught up with stream seq {}: {} messages, {} events applied in "
               "{:.2f} s ({:.0f} events/s)",
               last, applied_.load(), events, s, static_cast<double>(events) / std::max(s, 1e-3));
}

}  // namespace jobstore::replication
