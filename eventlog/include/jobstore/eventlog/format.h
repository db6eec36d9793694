// The on-disk format of the event log. Reader and writer both use these constants.
//
// RocksDB column families
//   "default"    meta keys:
//                  "format_version" -> u32 little-endian; the store's format (kFormatVersion)
//                  "first_seq"      -> u64 big-endian; the oldest retained seq (absent: 1)
//                  "source_seq"     -> u64 big-endian; with a replicated log (--nats), the
//                                      position in the replicated stream this copy reached
//                                      (absent: 0), written in the same batch as the events
//   "events"     key   = u64 big-endian seq (so keys sort by seq)
//                value = record (below)
//   "job_index"  key   = job_id bytes | 0x00 | u64 big-endian seq
//                value = u64 big-endian version
//                One entry per event: a job's history is a prefix scan, oldest first. Job ids
//                never contain 0x00 (validation allows [A-Za-z0-9._:-]), so the prefix is exact.
//                The family's prefix extractor ("jobstore.JobIdPrefix") and hashed memtable
//                are tuning only: they change no byte on disk (event_log.cc, Families).
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

#include "jobstore/core/coding.h"

namespace jobstore::eventlog {

inline constexpr std::uint8_t kRecordFormat = 1;   // the record layout above
inline constexpr std::uint32_t kFormatVersion = 1;  // the store layout (column families, meta)

inline constexpr char kEventsFamily[] = "events";
inline constexpr char kJobIndexFamily[] = "job_index";
inline constexpr char kMetaFormatVersion[] = "format_version";
inline constexpr char kMetaFirstSeq[] = "first_seq";
inline constexpr char kMetaSourceSeq[] = "source_seq";

inline constexpr std::size_t kRecordHeaderSize = 1 + 4;                // format + crc
inline constexpr std::size_t kBodyFixedSize = 1 + 8 + 8 + 2;           // type..id_len
inline constexpr std::size_t kSeqKeySize = 8;

// The byte coding (PutFixed*, DecodeFixed*) is core's, shared with the snapshot format.
using jobstore::DecodeFixed64BE;
using jobstore::DecodeFixedLE;
using jobstore::PutFixed16LE;
using jobstore::PutFixed32LE;
using jobstore::PutFixed64BE;
using jobstore::PutFixed64LE;

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
// JobIndexKey into *out (its bytes replaced; its capacity kept for the next key).
inline void SetJobIndexKey(std::string* out, std::string_view job_id, std::uint64_t seq) {
  out->assign(job_id);
  out->push_back('\0');
  PutFixed64BE(out, seq);
}

}  // namespace jobstore::eventlog
