// The store's group commits on a replicated NATS JetStream stream (eventlog/log_appender.h).
//
// One writer at a time, fenced on the log itself (SCALE-OUT.md), never by per-subject
// compare-and-set:
//   - OpenEpoch publishes an empty marker, id "<epoch>:0", that the stream takes only while its
//     last seq is still the one this instance applied (Nats-Expected-Last-Sequence, checked when
//     the stream applies it). Taken: this instance writes; refused: another wrote first. Where
//     nats-server's check of that seq is wrong (before 2.9.21, after some leader changes), the
//     marker is fenced on the id of the stream's last message instead (Nats-Expected-Last-Msg-Id):
//     the same condition, as every message of the log has a unique id.
//   - Each batch is one message "<epoch>:<n>" chained to the previous one
//     (Nats-Expected-Last-Msg-Id "<epoch>:<n-1>"): once any other writer appended, every later
//     message of this epoch is refused. A fence error is final: StepDown.
//   - A publish without an answer is re-sent with the same id until the answer is definite (the
//     stream's duplicate window turns a second copy into the first one's ack). Only when no
//     attempt can have reached the stream is the batch refused with kUnavailable (503: not
//     written). When the outcome stays unknown past the bound, Append answers kInternal, steps
//     down, and the follower's tail applies the batch if the stream has it.
//   - After the stream's ack, the batch is appended to the local copy with the stream seq.
//   - A retention marker (batch_message.h) is one more message of the chain, published by
//     PublishRetention from the compaction thread; it and Append take turns.
//
// Thread-safety: Append runs on the store's writer thread; PublishRetention, OpenEpoch(AfterMessage),
// StepDown and the getters from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "jobstore/core/mutex.h"
#include "jobstore/eventlog/log_appender.h"
#include "jobstore/replication/nats_connection.h"
#include "jobstore/replication/stream_setup.h"

namespace jobstore::replication {

struct AppenderCounters {
  std::atomic<std::uint64_t> messages{0};       // batches the stream took
  std::atomic<std::uint64_t> fence_errors{0};   // publishes refused because another writes
  std::atomic<std::uint64_t> republished{0};    // re-sends of an unanswered publish
  std::atomic<std::uint64_t> epochs_opened{0};  // times this instance became the writer
  std::atomic<std::uint64_t> retention_markers{0};  // retention markers the stream took
};

class JetStreamAppender final : public eventlog::LogAppender {
 public:
  // `bound_ms`: how long a publish may stay unanswered before Append gives up.
  JetStreamAppender(const NatsConnection& conn, StreamSettings settings, std::int64_t bound_ms);

  // Becomes the writer for epoch `epoch` (unique per attempt) if the stream's last seq is still
  // `after_stream_seq`. kVersionMismatch: the stream moved on (another writer, or this copy
  // lags): final for this epoch. kUnavailable: not answered (no stream leader yet): try again.
  // `before_writing` runs once the epoch is open and before Append takes writes (the store's
  // StartWriterTerm).
  Status OpenEpoch(const std::string& epoch, std::uint64_t after_stream_seq,
                   const std::function<void()>& before_writing = {});
  // OpenEpoch's fence on the last message's id: opens if the stream's last message is still the
  // one with id `last_msg_id` (OpenEpoch falls back to it when the stream refuses the seq fence
  // although its last message is the one at `after_stream_seq`). The same answers as OpenEpoch.
  Status OpenEpochAfterMessage(const std::string& epoch, const std::string& last_msg_id,
                               const std::function<void()>& before_writing = {});
  // Stops writing (a lost lease, a fence, an unknown outcome); later Appends get kUnavailable.
  void StepDown(const std::string& why);
  bool writing() const { return writing_.load(std::memory_order_acquire); }

  Status Append(eventlog::EventLog& local,
                const std::vector<eventlog::SerializedEvent>& events) override;

  // Puts a retention marker for `expired_seq` into this epoch's chain (batch_message.h). The
  // caller deletes its own copy's history after OK; every other copy does when it applies the
  // marker. kUnavailable: not the writer, or the stream did not take it (nothing deleted
  // anywhere); kInternal: the outcome is unknown (stepped down; a copy that applies the marker
  // deletes, the others delete at the next one).
  Status PublishRetention(std::uint64_t expired_seq);

  const AppenderCounters& counters() const { return counters_; }

 private:
  enum class Result { kWritten, kRefused, kFenced, kUnknown };
  struct Published {
    Result result;
    std::uint64_t stream_seq = 0;
    std::string why;
  };
  // Publishes until the answer is definite or the bound passed. `header`: one (name, value).
  Published Publish(const std::string& data, const std::string& msg_id,
                    const std::optional<std::string>& expect_last_id,
                    std::optional<std::uint64_t> expect_last_seq,
                    const std::pair<const char*, std::string>* header = nullptr);
  // The next message of this epoch's chain: its id, chained to the one before. Holds
  // chain_mu_ (the caller's) so that Append and PublishRetention take turns.
  Published PublishChained(const std::string& data,
                           const std::pair<const char*, std::string>* header)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(chain_mu_);
  // An epoch marker's answer: the epoch is open (kWritten), or why not.
  Status Opened(const std::string& epoch, const Published& p,
                const std::function<void()>& before_writing);
  // What a chained publish that was not written means for the caller (and steps down on a
  // fence or an unknown outcome).
  Status NotWritten(const Published& p);

  const NatsConnection& conn_;
  const StreamSettings settings_;
  const std::string subject_;
  const std::int64_t bound_ms_;
  std::atomic<bool> writing_{false};
  Mutex chain_mu_;  // one chained publish at a time (Append, PublishRetention)
  Mutex mu_;
  std::string epoch_ ABSL_GUARDED_BY(mu_);
  std::uint64_t next_index_ ABSL_GUARDED_BY(mu_) = 0;  // the next message's n
  AppenderCounters counters_;
};

}  // namespace jobstore::replication
