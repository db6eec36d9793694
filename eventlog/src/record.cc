#include "jobstore/eventlog/record.h"

#include <cstring>

#include <boost/crc.hpp>

#include "jobstore/eventlog/format.h"

namespace jobstore::eventlog {
namespace {

using Crc32cImpl = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

std::uint32_t RecordCrc(std::uint64_t seq, std::string_view body) {
  std::string key = SeqKey(seq);
  return Crc32c(body, Crc32c(key));
}

Status Bad(std::uint64_t seq, const std::string& why) {
  return Corruption("event seq " + std::to_string(seq) + ": " + why);
}

}  // namespace

namespace {

#if defined(__x86_64__)
// The SSE4.2 crc32 instruction computes CRC-32C eight bytes at a time (the register without the
// initial and final inversion); about 20x Boost's byte-wise table, which stays as the fallback.
__attribute__((target("sse4.2"))) std::uint32_t Crc32cSse42(std::string_view data,
                                                            std::uint32_t crc) {
  std::uint64_t reg = crc ^ 0xFFFFFFFFu;
  const char* p = data.data();
  std::size_t n = data.size();
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t chunk;
    std::memcpy(&chunk, p, 8);  // an unaligned load of raw bytes, not a struct
    reg = __builtin_ia32_crc32di(reg, chunk);
  }
  auto reg32 = static_cast<std::uint32_t>(reg);
  for (; n > 0; ++p, --n) reg32 = __builtin_ia32_crc32qi(reg32, static_cast<unsigned char>(*p));
  return reg32 ^ 0xFFFFFFFFu;
}

const bool kHaveSse42 = __builtin_cpu_supports("sse4.2");
#endif

}  // namespace

std::uint32_t Crc32c(std::string_view data, std::uint32_t crc) {
#if defined(__x86_64__)
  if (kHaveSse42) return Crc32cSse42(data, crc);
#endif
  return Crc32cPortable(data, crc);
}

std::uint32_t Crc32cPortable(std::string_view data, std::uint32_t crc) {
  // To resume from a finished CRC, undo the final XOR; boost takes the initial remainder
  // unreflected, so reflect it back (its register runs reflected for CRC-32C).
  std::uint32_t reg = crc ^ 0xFFFFFFFF, unreflected = 0;
  for (int i = 0; i < 32; ++i) unreflected |= ((reg >> i) & 1u) << (31 - i);
  Crc32cImpl impl(unreflected);
  impl.process_bytes(data.data(), data.size());
  return impl.checksum();
}

SerializedEvent Serialize(const Event& e) {
  return {e.seq, e.job_id, e.version, e.type, e.at, e.data.dump()};
}

SerializedEvent Serialize(Event&& e) {
  return {e.seq, std::move(e.job_id), e.version, e.type, e.at, e.data.dump()};
}

std::string EncodeRecord(const SerializedEvent& e) {
  std::string out;
  out.reserve(kRecordHeaderSize + kBodyFixedSize + e.job_id.size() + e.data_json.size());
  out.push_back(static_cast<char>(kRecordFormat));
  PutFixed32LE(&out, 0);  // the checksum, filled in below
  out.push_back(static_cast<char>(e.type));
  PutFixed64LE(&out, e.version);
  PutFixed64LE(&out, static_cast<std::uint64_t>(e.at));
  PutFixed16LE(&out, static_cast<std::uint16_t>(e.job_id.size()));
  out += e.job_id;
  out += e.data_json;
  std::uint32_t crc =
      RecordCrc(e.seq, std::string_view(out).substr(kRecordHeaderSize));
  for (int i = 0; i < 4; ++i) out[1 + i] = static_cast<char>(crc >> (8 * i));
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
