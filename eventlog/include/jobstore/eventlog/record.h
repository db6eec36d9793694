// Encoding and decoding of one event record (grammar in format.h).
#pragma once

#include <string>
#include <string_view>

#include "jobstore/core/coding.h"
#include "jobstore/core/event.h"
#include "jobstore/core/status.h"

namespace jobstore::eventlog {

// An event whose data is already serialized: what the store's writer hands to EventLog::Append.
// `data_json` is the compact JSON dump (`Json::dump()`, keys sorted) that the record stores and
// the API prints, so an event serialized here and one serialized ahead of the writer (a create
// prepared in its caller's thread) give the same bytes.
struct SerializedEvent {
  std::uint64_t seq = 0;
  std::string job_id;
  std::uint64_t version = 0;
  EventType type = EventType::kCreated;
  TimeMs at = 0;
  std::string data_json;
};

// `event` with its data serialized.
SerializedEvent Serialize(const Event& event);
SerializedEvent Serialize(Event&& event);  // takes the job id instead of copying it

// The record bytes for `event` (its seq goes into the key and the checksum).
std::string EncodeRecord(const SerializedEvent& event);
// The same bytes into *out, replacing what it held (its capacity is kept: the writer encodes a
// batch's records through one buffer).
void EncodeRecordInto(const SerializedEvent& event, std::string* out);
// The bytes of the record EncodeRecord writes for `event`.
std::size_t EncodedRecordSize(const SerializedEvent& event);
std::string EncodeRecord(const Event& event);  // EncodeRecord(Serialize(event))

// Decodes the record stored under `seq`. kCorruption names the seq on a checksum mismatch, an
// unknown format or type, a short record, or data that is not JSON.
StatusOr<Event> DecodeRecord(std::uint64_t seq, std::string_view record);

// A decoded record whose `data` is left as the JSON text it was stored as (nlohmann's compact
// dump with sorted keys: exactly what the API prints for it). For scans that need the data of
// few events, or none. The views point into the record's bytes.
struct RecordView {
  std::uint64_t seq = 0;
  EventType type = EventType::kCreated;
  std::uint64_t version = 0;
  TimeMs at = 0;
  std::string_view job_id;
  std::string_view data_json;
};

// Checks the record's checksum and header like DecodeRecord, without parsing its data.
StatusOr<RecordView> DecodeRecordView(std::uint64_t seq, std::string_view record);
// The event a checked view describes (parses its data): DecodeRecord's second half.
StatusOr<Event> EventFromView(const RecordView& view);

// The records' checksum is core's CRC-32C (core/coding.h).
using jobstore::Crc32c;
using jobstore::Crc32cPortable;

}  // namespace jobstore::eventlog
