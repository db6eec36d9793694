#include "jobstore/core/time_format.h"

#include <cstdio>
#include <limits>

namespace jobstore {
namespace {

// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's civil-days algorithm).
std::int64_t DaysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void CivilFromDays(std::int64_t z, std::int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<std::int64_t>(yoe) + era * 400 + (*m <= 2);
}

bool IsLeap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

unsigned DaysInMonth(std::int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Reads exactly n decimal digits at text[*pos].
bool ReadDigits(std::string_view text, std::size_t* pos, int n, int* out) {
  if (*pos + n > text.size()) return false;
  int v = 0;
  for (int i = 0; i < n; ++i) {
    char c = text[*pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *pos += n;
  *out = v;
  return true;
}

bool Expect(std::string_view text, std::size_t* pos, char a, char b = 0) {
  if (*pos >= text.size()) return false;
  char c = text[*pos];
  if (c != a && (b == 0 || c != b)) return false;
  ++*pos;
  return true;
}

}  // namespace

void AppendRfc3339(std::string* out, TimeMs t) {
  std::int64_t secs = t / 1000;
  std::int64_t ms = t % 1000;
  if (ms < 0) {
    ms += 1000;
    secs -= 1;
  }
  std::int64_t days = secs / 86400;
  std::int64_t sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    days -= 1;
  }
  std::int64_t y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  if (y < 0 || y > 9999) {  // no instant the API accepts; printed as printf would
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%03lldZ",
                  static_cast<long long>(y), m, d, static_cast<long long>(sod / 3600),
                  static_cast<long long>(sod / 60 % 60), static_cast<long long>(sod % 60),
                  static_cast<long long>(ms));
    out->append(buf);
    return;
  }
  // By hand: snprintf was 1.3 % of the server's CPU in the worker workload (bench/RESULTS.md).
  char buf[] = "0000-00-00T00:00:00.000Z";
  auto put = [&](int at, std::int64_t v, int digits) {
    for (int i = digits - 1; i >= 0; --i, v /= 10) buf[at + i] = static_cast<char>('0' + v % 10);
  };
  put(0, y, 4);
  put(5, m, 2);
  put(8, d, 2);
  put(11, sod / 3600, 2);
  put(14, sod / 60 % 60, 2);
  put(17, sod % 60, 2);
  put(20, ms, 3);
  out->append(buf, sizeof buf - 1);
}

std::string FormatRfc3339(TimeMs t) {
  std::string out;
  AppendRfc3339(&out, t);
  return out;
}

StatusOr<TimeMs> ParseRfc3339(std::string_view text) {
  auto bad = [&] {
    return InvalidArgument("'" + std::string(text.substr(0, 64)) +
                           "' is not an RFC 3339 time like 2026-11-28T12:00:00.123Z");
  };
  std::size_t pos = 0;
  int year, month, day, hour, minute, second;
  if (!ReadDigits(text, &pos, 4, &year) || !Expect(text, &pos, '-') ||
      !ReadDigits(text, &pos, 2, &month) || !Expect(text, &pos, '-') ||
      !ReadDigits(text, &pos, 2, &day) || !Expect(text, &pos, 'T', 't') ||
      !ReadDigits(text, &pos, 2, &hour) || !Expect(text, &pos, ':') ||
      !ReadDigits(text, &pos, 2, &minute) || !Expect(text, &pos, ':') ||
      !ReadDigits(text, &pos, 2, &second)) {
    // A space instead of 'T' is allowed by RFC 3339 section 5.6's note.
    if (!(pos == 10 && pos < text.size() && text[pos] == ' ')) return bad();
    std::string copy(text);
    copy[10] = 'T';
    return ParseRfc3339(copy);
  }
  if (month < 1 || month > 12 || day < 1 || day > static_cast<int>(DaysInMonth(year, month)) ||
      hour > 23 || minute > 59 || second > 60) {
    return bad();
  }
  int millis = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits < 3) millis = millis * 10 + (text[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return bad();
    for (int i = digits; i < 3; ++i) millis *= 10;
  }
  std::int64_t offset_min = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    int oh, om;
    if (!ReadDigits(text, &pos, 2, &oh) || !Expect(text, &pos, ':') ||
        !ReadDigits(text, &pos, 2, &om) || oh > 23 || om > 59) {
      return bad();
    }
    offset_min = sign * (oh * 60 + om);
  } else {
    return bad();
  }
  if (pos != text.size()) return bad();
  if (second == 60) second = 59;  // a leap second maps onto the second before it
  std::int64_t secs = DaysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 +
                      second - offset_min * 60;
  // The offset can carry an instant out of 0000..9999 in UTC, where FormatRfc3339 could not
  // print it back (found by fuzz_time_parsing: "9999-12-31T23:59:59-00:30").
  static const std::int64_t kFirst = DaysFromCivil(0, 1, 1) * 86400;
  static const std::int64_t kEnd = DaysFromCivil(10000, 1, 1) * 86400;
  if (secs < kFirst || secs >= kEnd) {
    return InvalidArgument("'" + std::string(text.substr(0, 64)) +
                           "' is outside the years 0000..9999 in UTC");
  }
  return secs * 1000 + millis;
}

StatusOr<std::int64_t> ParseDurationMs(std::string_view text) {
  auto bad = [&] {
    return InvalidArgument("'" + std::string(text.substr(0, 64)) +
                           "' is not a duration like 500ms, 90s, 5m, 1h, 7d or whole seconds");
  };
  std::size_t pos = 0;
  std::int64_t value = 0;
  // The digits may use the whole int64 range ("9000000000000000000ms"); the unit's scale is
  // checked for overflow below.
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    int digit = text[pos] - '0';
    if (value > (kMax - digit) / 10) return bad();
    value = value * 10 + digit;
    ++pos;
  }
  if (pos == 0) return bad();
  std::string_view unit = text.substr(pos);
  std::int64_t scale;
  if (unit.empty() || unit == "s") {
    scale = 1000;
  } else if (unit == "ms") {
    scale = 1;
  } else if (unit == "m") {
    scale = 60 * 1000;
  } else if (unit == "h") {
    scale = 3600 * 1000;
  } else if (unit == "d") {
    scale = 86400 * 1000;
  } else {
    return bad();
  }
  if (value > std::numeric_limits<std::int64_t>::max() / scale) return bad();
  return value * scale;
}

}  // namespace jobstore
