#include "jobstore/core/coding.h"

#include <cstring>

#include <boost/crc.hpp>

namespace jobstore {
namespace {

using Crc32cImpl = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;

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

}  // namespace jobstore
