// Byte coding shared by every on-disk format (the event log's records, the snapshot file): fixed-
// width integers in an explicit byte order, and the CRC-32C that guards each record. As leveldb's
// util/coding.h and util/crc32c.h, one copy for every format.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace jobstore {

// Explicit byte order; never memcpy a struct.
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

// CRC-32C (Castagnoli) of `data`, continuing from `crc` (0 to start). Uses the SSE4.2 instruction
// when the CPU has it, else Crc32cPortable.
std::uint32_t Crc32c(std::string_view data, std::uint32_t crc = 0);
// The table-driven CRC-32C (Boost.CRC): the fallback, and the reference the tests compare with.
std::uint32_t Crc32cPortable(std::string_view data, std::uint32_t crc = 0);

}  // namespace jobstore
