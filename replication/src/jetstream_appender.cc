#include "jobstore/replication/jetstream_appender.h"

#include <chrono>
#include <memory>
#include <thread>

#include <spdlog/spdlog.h>

#include "jobstore/replication/batch_message.h"
#include "jobstore/replication/stream_setup.h"

namespace jobstore::replication {

JetStreamAppender::JetStreamAppender(const NatsConnection& conn, StreamSettings settings,
                                     std::int64_t bound_ms)
    : conn_(conn), settings_(std::move(settings)), subject_(settings_.subject()), bound_ms_(bound_ms) {}

JetStreamAppender::Published JetStreamAppender::Publish(
    const std::string& data, const std::string& msg_id,
    const std::optional<std::string>& expect_last_id, std::optional<std::uint64_t> expect_last_seq,
    const std::pair<const char*, std::string>* header) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(bound_ms_);
  bool maybe_sent = false;  // an attempt that may have reached the stream
  std::string last_error;
  for (int attempt = 0;; ++attempt) {
    if (attempt > 0) counters_.republished.fetch_add(1, std::memory_order_relaxed);
    natsMsg* msg = nullptr;
    natsMsg_Create(&msg, subject_.c_str(), nullptr, data.data(), static_cast<int>(data.size()));
    std::unique_ptr<natsMsg, void (*)(natsMsg*)> owned(msg, natsMsg_Destroy);
    if (header) natsMsgHeader_Set(msg, header->first, header->second.c_str());
    jsPubOptions opts;
    jsPubOptions_Init(&opts);
    opts.MsgId = msg_id.c_str();
    opts.ExpectStream = settings_.stream.c_str();
    if (expect_last_id) opts.ExpectLastMsgId = expect_last_id->c_str();
    if (expect_last_seq) opts.ExpectLastSeq = *expect_last_seq;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    opts.MaxWait = std::max<std::int64_t>(200, std::min<std::int64_t>(left, 2000));
    jsPubAck* ack = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_PublishMsg(&ack, conn_.js(), msg, &opts, &jerr);
    if (s == NATS_OK) {
      const std::uint64_t seq = ack->Sequence;
      jsPubAck_Destroy(ack);
      return {Result::kWritten, seq, ""};
    }
    if (s == NATS_NO_RESPONDERS) {
      jerr = static_cast<jsErrCode>(0);  // no stream leader (an election): not taken, try again
    } else if (jerr == JSStreamWrongLastMsgIDErr || jerr == JSStreamWrongLastSequenceErr) {
      // The stream answered: another writer appended. (A re-send of a message the stream took
      // is answered as a duplicate before this check, so this is never our own earlier copy.)
      return {Result::kFenced, 0, FromNats(s, "the replicated log", jerr).message()};
    }
    if (jerr != 0) return {Result::kRefused, 0, FromNats(s, "the replicated log", jerr).message()};
    last_error = natsStatus_GetText(s);
    // A timeout: sent, not answered. No responders, or not connected: not sent this time.
    if (s == NATS_TIMEOUT) maybe_sent = true;
    if (std::chrono::steady_clock::now() >= deadline) {
      return {maybe_sent ? Result::kUnknown : Result::kRefused, 0,
              "the replicated log did not answer within " + std::to_string(bound_ms_) +
                  " ms (" + last_error + ")"};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(s == NATS_TIMEOUT ? 0 : 100));
  }
}

Status JetStreamAppender::OpenEpoch(const std::string& epoch, std::uint64_t after_stream_seq,
                                    const std::function<void()>& before_writing) {
  const Published p = Publish("", epoch + ":0", std::nullopt, after_stream_seq);
  if (p.result == Result::kFenced) {
    // nats-server before 2.9.21 (Debian 12 ships 2.9.10) checks Nats-Expected-Last-Sequence on a
    // replicated stream against a count that can drift on a new stream leader (clseq - clfs,
    // nats-server PR #4365): it then refuses every epoch although no one wrote after
    // `after_stream_seq`, and no instance would write again (seen once in ClusterTest's NATS
    // kills: "wrong last sequence: 1143" for 23 s, the stream's last seq being another).
    auto last_id = LastMessageIdIfAt(conn_, settings_, after_stream_seq);
    if (!last_id.ok()) {
      spdlog::info("replication: epoch {} refused ({}); reading the stream's last message to "
                   "check it failed: {}", epoch, p.why, last_id.status().message());
    } else if (last_id->has_value()) {
      spdlog::warn("replication: the stream refused epoch {} after seq {} ({}), which is its last "
                   "message: opening it fenced on that message's id instead",
                   epoch, after_stream_seq, p.why);
      return OpenEpochAfterMessage(epoch, **last_id, before_writing);
    }
  }
  return Opened(epoch, p, before_writing);
}

Status JetStreamAppender::OpenEpochAfterMessage(const std::string& epoch,
                                                const std::string& last_msg_id,
                                                const std::function<void()>& before_writing) {
  return Opened(epoch, Publish("", epoch + ":0", last_msg_id, std::nullopt), before_writing);
}

Status JetStreamAppender::Opened(const std::string& epoch, const Published& p,
                                 const std::function<void()>& before_writing) {
  if (p.result == Result::kFenced) {
    counters_.fence_errors.fetch_add(1, std::memory_order_relaxed);
    return Status(StatusCode::kVersionMismatch, "opening writer epoch " + epoch + ": " + p.why);
  }
  if (p.result != Result::kWritten) return Unavailable("opening writer epoch " + epoch + ": " + p.why);
  {
    MutexLock lock(&mu_);
    epoch_ = epoch;
    next_index_ = 1;
  }
  if (before_writing) before_writing();
  writing_.store(true, std::memory_order_release);
  counters_.epochs_opened.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("replication: this instance is the writer (epoch {}, stream seq {})", epoch,
               p.stream_seq);
  return Status::Ok();
}

void JetStreamAppender::StepDown(const std::string& why) {
  if (writing_.exchange(false, std::memory_order_acq_rel)) {
    spdlog::warn("replication: this instance stops writing: {}", why);
  }
}

JetStreamAppender::Published JetStreamAppender::PublishChained(
    const std::string& data, const std::pair<const char*, std::string>* header) {
  std::string id, previous;
  {
    MutexLock lock(&mu_);
    id = epoch_ + ":" + std::to_string(next_index_);
    previous = epoch_ + ":" + std::to_string(next_index_ - 1);
  }
  Published p = Publish(data, id, previous, std::nullopt, header);
  if (p.result == Result::kWritten) {
    MutexLock lock(&mu_);
    ++next_index_;
  }
  return p;
}

Status JetStreamAppender::NotWritten(const Published& p) {
  switch (p.result) {
    case Result::kFenced:
      counters_.fence_errors.fetch_add(1, std::memory_order_relaxed);
      StepDown("fenced: " + p.why);
      return Unavailable("another instance writes the replicated log now; retry (" + p.why + ")");
    case Result::kUnknown:
      StepDown(p.why);
      return Internal(p.why + "; the write may have been taken: read before retrying");
    case Result::kRefused:
    case Result::kWritten:
      break;
  }
  return Unavailable(p.why);
}

Status JetStreamAppender::Append(eventlog::EventLog& local,
                                 const std::vector<eventlog::SerializedEvent>& events) {
  if (!writing()) return Unavailable("this instance is not the writer of the replicated log");
  // The contract's first check, before anything leaves: a batch that does not continue the
  // local log is never published (the stream would take what the copy then refuses).
  std::uint64_t expected = local.LastSeq() + 1;
  for (const eventlog::SerializedEvent& e : events) {
    if (e.seq != expected++) {
      return Internal("append out of order: seq " + std::to_string(e.seq) + ", expected " +
                      std::to_string(expected - 1));
    }
  }
  // Held until the local copy has the batch: a retention marker published after it finds every
  // event it names in this copy.
  MutexLock chain(&chain_mu_);
  Published p = PublishChained(EncodeBatchMessage(events), nullptr);
  if (p.result != Result::kWritten) return NotWritten(p);
  counters_.messages.fetch_add(1, std::memory_order_relaxed);
  Status local_write = local.AppendFromSource(events, p.stream_seq);
  if (!local_write.ok()) {
    StepDown("the local copy refused a batch the stream took");
    return Internal("written to the replicated log (stream seq " + std::to_string(p.stream_seq) +
                    "), but this instance's copy refused it: " + local_write.message());
  }
  return Status::Ok();
}

Status JetStreamAppender::PublishRetention(std::uint64_t expired_seq) {
  if (!writing()) return Unavailable("this instance is not the writer of the replicated log");
  const std::pair<const char*, std::string> marker{kRetentionHeader, std::to_string(expired_seq)};
  MutexLock chain(&chain_mu_);
  Published p = PublishChained("", &marker);
  if (p.result != Result::kWritten) return NotWritten(p);
  counters_.retention_markers.fetch_add(1, std::memory_order_relaxed);
  spdlog::debug("replication: retention marker at stream seq {}: every copy deletes the history "
               "of the jobs expired through seq {}", p.stream_seq, expired_seq);
  return Status::Ok();
}

}  // namespace jobstore::replication
