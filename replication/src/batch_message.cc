#include "jobstore/replication/batch_message.h"

#include <charconv>

#include "jobstore/core/coding.h"

namespace jobstore::replication {

namespace {
constexpr std::size_t kEntryHeader = 8 + 4;
}

StatusOr<std::uint64_t> ParseRetentionMarker(std::string_view header_value,
                                              std::uint64_t stream_seq) {
  std::uint64_t seq = 0;
  const auto [end, ec] =
      std::from_chars(header_value.data(), header_value.data() + header_value.size(), seq);
  if (header_value.empty() || ec != std::errc() || end != header_value.data() + header_value.size()) {
    return Corruption("stream message " + std::to_string(stream_seq) +
                      ": a retention marker that names no seq ('" + std::string(header_value) + "')");
  }
  return seq;
}

std::string EncodeBatchMessage(const std::vector<eventlog::SerializedEvent>& events) {
  std::string out;
  for (const eventlog::SerializedEvent& e : events) {
    std::string record = eventlog::EncodeRecord(e);
    PutFixed64BE(&out, e.seq);
    PutFixed32LE(&out, static_cast<std::uint32_t>(record.size()));
    out += record;
  }
  return out;
}

StatusOr<ReplicatedBatch> DecodeBatchMessage(std::string_view message, std::uint64_t stream_seq) {
  ReplicatedBatch batch;
  batch.source_seq = stream_seq;
  auto damaged = [&](std::size_t entry, const std::string& why) {
    return Corruption("stream message " + std::to_string(stream_seq) + ", entry " +
                      std::to_string(entry) + ": " + why);
  };
  std::size_t pos = 0;
  for (std::size_t entry = 0; pos < message.size(); ++entry) {
    if (message.size() - pos < kEntryHeader) return damaged(entry, "truncated entry header");
    const std::uint64_t seq = DecodeFixed64BE(message.data() + pos);
    const std::uint64_t len = DecodeFixedLE(message.data() + pos + 8, 4);
    pos += kEntryHeader;
    if (message.size() - pos < len) return damaged(entry, "truncated record");
    if (!batch.events.empty() && seq != batch.events.back().seq + 1) {
      return damaged(entry, "seq " + std::to_string(seq) + " does not follow " +
                                std::to_string(batch.events.back().seq));
    }
    auto view = eventlog::DecodeRecordView(seq, message.substr(pos, len));
    if (!view.ok()) return damaged(entry, view.status().message());
    auto event = eventlog::EventFromView(*view);
    if (!event.ok()) return damaged(entry, event.status().message());
    batch.records.push_back({seq, std::string(view->job_id), view->version, view->type, view->at,
                             std::string(view->data_json)});
    batch.events.push_back(std::move(event).value());
    pos += len;
  }
  return batch;
}

Status AppendBatch(ReplicatedBatch& into, ReplicatedBatch&& next) {
  if (!into.events.empty() && !next.events.empty() &&
      next.events.front().seq != into.events.back().seq + 1) {
    return Corruption("stream message " + std::to_string(next.source_seq) + " starts at seq " +
                      std::to_string(next.events.front().seq) + ", the one before ended at " +
                      std::to_string(into.events.back().seq));
  }
  for (auto& e : next.events) into.events.push_back(std::move(e));
  for (auto& r : next.records) into.records.push_back(std::move(r));
  into.source_seq = next.source_seq;
  return Status::Ok();
}

}  // namespace jobstore::replication
