// One message of the replicated stream = one group commit, in the event log's own record format.
//
//   message := entry*          (no entries: a writer's epoch marker)
//   entry   := seq:u64 BE  len:u32 LE  record:len bytes   (record: eventlog/format.h, with its
//                                                          CRC over seq and body)
//
// A follower appends exactly the writer's records to its local log, so every instance's copy
// holds the same bytes under the same seqs, and each record's checksum is verified on the way.
//
// A retention marker is a message with no entries and the NATS header
//   Jobstore-Delete-Expired-Through: <event seq, decimal>
// The writer publishes it before it deletes expired history; a copy that applies it deletes the
// history of every job whose job.expired event has that seq or a lower one
// (JobStore::DeleteHistoryExpiredThrough), after every message before it and before any after.
// So every copy holds the same events at each point of the stream.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "jobstore/core/status.h"
#include "jobstore/eventlog/record.h"
#include "jobstore/store/job_store.h"

namespace jobstore::replication {

inline constexpr char kRetentionHeader[] = "Jobstore-Delete-Expired-Through";

// The event seq a retention marker's header value names. kCorruption (naming the stream seq)
// when it is not a decimal seq.
StatusOr<std::uint64_t> ParseRetentionMarker(std::string_view header_value, std::uint64_t stream_seq);

std::string EncodeBatchMessage(const std::vector<eventlog::SerializedEvent>& events);

// Decodes and checks every record (CRC, format, JSON data) and that the seqs run without a gap.
// kCorruption names the stream seq and the entry. The result's source_seq is `stream_seq`.
StatusOr<ReplicatedBatch> DecodeBatchMessage(std::string_view message, std::uint64_t stream_seq);

// Joins `next` (the following stream message) onto `into`, so a copy catching up applies many
// messages in one local write. kCorruption when `next` does not continue `into`'s seqs.
Status AppendBatch(ReplicatedBatch& into, ReplicatedBatch&& next);

}  // namespace jobstore::replication
