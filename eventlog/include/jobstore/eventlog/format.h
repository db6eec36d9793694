// The on-disk format of the event log. Reader and writer both use these constants.
//
// RocksDB column families
//   "default"    meta keys:
//                  "format_version" -> u32 little-endian; the store's format (kFormatVersion)
//                  "first_seq"      -> u64 big-endian; the oldest retained seq (absent: 1)
//   "events"     key   = u64 big-endian seq (so keys sort by seq)
//                value = record (below)
//   "job_index"  key   = job_id bytes | 0x00 | u64 big-endian seq
//                value = u64 big-endian version
//                One entry per event: a job's history is a prefix scan, oldest first. Job ids
//                never contain 0x00 (validation allows [A-Za-z0-9._:-]), so the prefix is exact.
//
// Record grammar (all integers little-endian unless said otherwise)
//   record   := format:u8 crc:u32 body
//   body     := type:u8 version:u64 at_ms:i64 id_len:u16 job_id:id_len*u8 data
//   data     := the event's `data` as UTF-8 JSON text, to the end of the value
//   crc      := CRC-32C (Castagnoli) over key(8 bytes) | body
// The checksum covers the key, so a record that lands under a wrong seq is caught too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace jobstore::eventlog {

inline constexpr std::uint8_t kRecordFormat = 1;   // the record layout above
inline constexpr std::uint32_t kFormatVersion = 1;  // the store layout (column families, meta)

inline constexpr char kEventsFamily[] = "events";
inline constexpr char kJobIndexFamily[] = "job_index";
inline constexpr char kMetaFormatVersion[] = "format_version";
inline constexpr char kMetaFirstSeq[] = "first_seq";

inline constexpr std::size_t kRecordHeaderSize = 1 + 4;                // format + crc
inline constexpr std::size_t kBodyFixedSize = 1 + 8 + 8 + 2;           // type..id_len
inline constexpr std::size_t kSeqKeySize = 8;

// Explicit byte-order helpers; never memcpy a struct.
inline void PutFixed16LE(std::string* dst, std::uint16_t v) {
  for (int i = 0; i < 2; ++i) dst->push_back(static_cast<char>(v >> (8 * i)));
}
inline void PutFixed32LE(std::string* dst, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) dst->push_back(static_cast<char>(v >> (8 * i)));
}
inline void PutFixed64LE(std::string* dst, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) dst->push_back(static_cast<char>(v >> (8 * i)));
}
inline void PutFixed64BE(std::string* dst, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) dst->push_back(static_cast<char>(v >> (8 * i)));
}
inline std::uint64_t DecodeFixedLE(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
inline std::uint64_t DecodeFixed64BE(const char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

inline std::string SeqKey(std::uint64_t seq) {
  std::string k;
  k.reserve(kSeqKeySize);
  PutFixed64BE(&k, seq);
  return k;
}

// The job_index prefix of one job: job_id | 0x00.
inline std::string JobIndexPrefix(std::string_view job_id) {
  std::string k(job_id);
  k.push_back('\0');
  return k;
}
inline std::string JobIndexKey(std::string_view job_id, std::uint64_t seq) {
  std::string k = JobIndexPrefix(job_id);
  PutFixed64BE(&k, seq);
  return k;
}

}  // namespace jobstore::eventlog
