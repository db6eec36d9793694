// Fuzzes the text-to-time parsers clients reach: RFC 3339 timestamps (replay --until, event
// filters) and durations (flags and the tools). Input: a selector byte, then the text.
//
// Invariants: an accepted timestamp prints in canonical form and parses back to the same
// millisecond; an accepted duration is non-negative and parses the same way twice.
#include <string>

#include "fuzz_check.h"
#include "jobstore/core/time_format.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace jobstore;
  fuzz::FuzzInput in(data, size);
  std::uint8_t which = in.Byte();
  std::string_view text = in.Rest();
  if (which & 1) {
    auto ms = ParseDurationMs(text);
    if (ms.ok()) {
      FUZZ_CHECK(*ms >= 0);
      auto again = ParseDurationMs(text);
      FUZZ_CHECK(again.ok() && *again == *ms);
      FUZZ_CHECK(ParseDurationMs(std::to_string(*ms) + "ms").ok());
    }
    return 0;
  }
  auto t = ParseRfc3339(text);
  if (!t.ok()) return 0;
  std::string canonical = FormatRfc3339(*t);
  auto back = ParseRfc3339(canonical);
  FUZZ_CHECK(back.ok());
  FUZZ_CHECK(*back == *t);
  FUZZ_CHECK(FormatRfc3339(*back) == canonical);
  return 0;
}
