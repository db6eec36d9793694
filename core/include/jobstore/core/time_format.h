// RFC 3339 timestamps and human durations.
#pragma once

#include <string>
#include <string_view>

#include "jobstore/core/clock.h"
#include "jobstore/core/status.h"

namespace jobstore {

// "2026-11-28T12:00:00.123Z": UTC, always three fractional digits.
std::string FormatRfc3339(TimeMs t);
// FormatRfc3339(t) appended to *out.
void AppendRfc3339(std::string* out, TimeMs t);

// Parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)" (also 't'/'z' and a space for 'T').
// Fractions beyond milliseconds are truncated. Years 0000..9999.
StatusOr<TimeMs> ParseRfc3339(std::string_view text);

// Parses "500ms", "90s", "5m", "1h", "7d" or plain (whole) seconds "30" into milliseconds.
// Rejects negatives, empty input, unknown units and values that overflow.
StatusOr<std::int64_t> ParseDurationMs(std::string_view text);

}  // namespace jobstore
