#include "jobstore/eventlog/record.h"

#include <cstring>

#include "jobstore/eventlog/format.h"

namespace jobstore::eventlog {
namespace {

std::uint32_t RecordCrc(std::uint64_t seq, std::string_view body) {
  std::string key = SeqKey(seq);
  return Crc32c(body, Crc32c(key));
}

Status Bad(std::uint64_t seq, const std::string& why) {
  return Corruption("event seq " + std::to_string(seq) + ": " + why);
}

}  // namespace

SerializedEvent Serialize(const Event& e) {
  return {e.seq, e.job_id, e.version, e.type, e.at, e.data.dump()};
}

SerializedEvent Serialize(Event&& e) {
  return {e.seq, std::move(e.job_id), e.version, e.type, e.at, e.data.dump()};
}

std::size_t EncodedRecordSize(const SerializedEvent& e) {
  return kRecordHeaderSize + kBodyFixedSize + e.job_id.size() + e.data_json.size();
}

void EncodeRecordInto(const SerializedEvent& e, std::string* out) {
  out->clear();
  out->reserve(EncodedRecordSize(e));
  out->push_back(static_cast<char>(kRecordFormat));
  PutFixed32LE(out, 0);  // the checksum, filled in below
  out->push_back(static_cast<char>(e.type));
  PutFixed64LE(out, e.version);
  PutFixed64LE(out, static_cast<std::uint64_t>(e.at));
  PutFixed16LE(out, static_cast<std::uint16_t>(e.job_id.size()));
  *out += e.job_id;
  *out += e.data_json;
  std::uint32_t crc =
      RecordCrc(e.seq, std::string_view(*out).substr(kRecordHeaderSize));
  for (int i = 0; i < 4; ++i) (*out)[1 + i] = static_cast<char>(crc >> (8 * i));
}

std::string EncodeRecord(const SerializedEvent& e) {
  std::string out;
  EncodeRecordInto(e, &out);
  return out;
}

std::string EncodeRecord(const Event& e) { return EncodeRecord(Serialize(e)); }

StatusOr<RecordView> DecodeRecordView(std::uint64_t seq, std::string_view rec) {
  if (rec.size() < kRecordHeaderSize + kBodyFixedSize) return Bad(seq, "record is too short");
  auto format = static_cast<std::uint8_t>(rec[0]);
  if (format != kRecordFormat) {
    return Bad(seq, "record format " + std::to_string(format) + " is not known to this build");
  }
  std::string_view body = rec.substr(kRecordHeaderSize);
  auto stored_crc = static_cast<std::uint32_t>(DecodeFixedLE(rec.data() + 1, 4));
  if (RecordCrc(seq, body) != stored_crc) return Bad(seq, "checksum mismatch");
  const char* p = body.data();
  auto type = static_cast<std::uint8_t>(p[0]);
  if (type < 1 || type > kMaxEventType) {
    return Bad(seq, "unknown event type " + std::to_string(type));
  }
  RecordView v;
  v.seq = seq;
  v.type = static_cast<EventType>(type);
  v.version = DecodeFixedLE(p + 1, 8);
  v.at = static_cast<TimeMs>(DecodeFixedLE(p + 9, 8));
  auto id_len = static_cast<std::size_t>(DecodeFixedLE(p + 17, 2));
  if (body.size() < kBodyFixedSize + id_len) return Bad(seq, "job id runs past the record");
  v.job_id = body.substr(kBodyFixedSize, id_len);
  v.data_json = body.substr(kBodyFixedSize + id_len);
  return v;
}

StatusOr<Event> EventFromView(const RecordView& view) {
  Event e;
  e.seq = view.seq;
  e.type = view.type;
  e.version = view.version;
  e.at = view.at;
  e.job_id.assign(view.job_id);
  e.data = Json::parse(view.data_json.begin(), view.data_json.end(), nullptr,
                       /*allow_exceptions=*/false);
  if (e.data.is_discarded()) return Bad(view.seq, "data is not valid JSON");
  return e;
}

StatusOr<Event> DecodeRecord(std::uint64_t seq, std::string_view rec) {
  JOBSTORE_ASSIGN_OR_RETURN(auto view, DecodeRecordView(seq, rec));
  return EventFromView(view);
}

}  // namespace jobstore::eventlog
