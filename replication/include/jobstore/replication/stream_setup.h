// The stream that is the replicated log, and the KV bucket that holds the writer's lease.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "jobstore/core/status.h"
#include "jobstore/replication/nats_connection.h"

namespace jobstore::replication {

// An unanswered publish is re-sent with the same message id inside this window, and the stream
// takes the copy as the first one's acknowledgement. --stream-max-age may not be shorter.
inline constexpr std::int64_t kDuplicateWindowMs = 2 * 60 * 1000;

struct StreamSettings {
  std::string stream = "JOBSTORE";  // --stream
  int replicas = 3;                  // --replicas: used when the stream is created
  std::int64_t writer_lease_ms = 10'000;  // --writer-lease: the lease bucket's TTL
  // --stream-max-age: messages older than this leave the stream (NATS's max_age); 0 keeps every
  // message. A copy that falls behind the stream's first message is seeded from a backup.
  std::int64_t max_age_ms = 0;

  std::string subject() const { return "jobstore." + stream + ".log"; }
  std::string lease_bucket() const { return stream + "_WRITER"; }
};

// Creates the stream when it is missing: file storage, `replicas` copies, discard new (a full
// stream refuses writes), messages kept `max_age_ms` (0: for ever), deletes denied, a two-minute
// duplicate window
// (an unanswered publish is re-sent with the same id inside it). An existing stream whose
// settings differ is an error naming each difference. Returns the stream's last seq.
StatusOr<std::uint64_t> EnsureStream(const NatsConnection& conn, const StreamSettings& settings);

// The stream's last seq now (readiness: an instance is caught up once it applied this).
StatusOr<std::uint64_t> StreamLastSeq(const NatsConnection& conn, const StreamSettings& settings);
// The seq of the stream's oldest message now (last + 1 when every message aged out).
StatusOr<std::uint64_t> StreamFirstSeq(const NatsConnection& conn, const StreamSettings& settings);
// The message id (Nats-Msg-Id) of the stream's last message when that message's seq is `seq`;
// nullopt when the stream's last seq is another, or that message carries no id.
StatusOr<std::optional<std::string>> LastMessageIdIfAt(const NatsConnection& conn,
                                                       const StreamSettings& settings,
                                                       std::uint64_t seq);

// Creates the lease bucket when missing (history 1, TTL = the writer lease, same replicas).
Status EnsureLeaseBucket(const NatsConnection& conn, const StreamSettings& settings);

}  // namespace jobstore::replication
