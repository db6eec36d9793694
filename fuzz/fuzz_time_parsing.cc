// Fuzzes the text-to-time parsers clients reach: RFC 3339 timestamps (replay --until, event
// filters, run_at), durations (flags and the tools) and cron expressions (schedules). Input: a
// selector byte, then the text.
//
// Invariants: an accepted timestamp prints in canonical form and parses back to the same
// millisecond; an accepted duration is non-negative and parses the same way twice; an accepted
// cron's next time is strictly later than the time it follows, on a whole minute, and the same
// when asked twice.
#include <string>

#include "fuzz_check.h"
#include "jobstore/core/cron.h"
#include "jobstore/core/time_format.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace jobstore;
  fuzz::FuzzInput in(data, size);
  std::uint8_t which = in.Byte();
  std::string_view text = in.Rest();
  if (which & 2) {
    auto cron = CronSchedule::Parse(text, which & 4 ? "Europe/Berlin" : "UTC");
    if (!cron.ok()) return 0;
    const TimeMs after = 1'796'000'000'000 + (which >> 3) * 3'600'000'123LL;
    auto next = cron->NextAfter(after);
    if (next) {
      FUZZ_CHECK(*next > after);
      FUZZ_CHECK(*next % 60'000 == 0 || (which & 4));  // a DST change may fall off the minute
      FUZZ_CHECK(cron->NextAfter(after) == next);
    }
    return 0;
  }
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
