// Recurring times: a crontab(5) expression in a time zone, and the next time it fires.
//
// Syntax: five fields, "minute hour day-of-month month day-of-week", each `*`, a value, a range
// `a-b`, a step `*/n`, `a-b/n` or `a/n` (from a to the field's end), or a comma list of those.
// Ranges: minute 0-59, hour 0-23, day 1-31, month 1-12 or jan-dec, weekday 0-7 (0 and 7 are
// Sunday) or sun-sat; names are case-insensitive. Macros: @yearly (@annually), @monthly,
// @weekly, @daily (@midnight), @hourly. When both day fields are restricted (neither starts
// with `*`) a day matches if either does, as crontab(5) says; otherwise both must.
//
// Time zones come from the system's tz database (IANA names such as "Europe/Berlin"; "UTC").
// Daylight-saving changes, as Vixie cron and cronie treat them:
//   - a time that does not exist (the hour skipped in spring) fires at the change, once,
//     for a schedule with a fixed hour; an every-hour schedule simply has no such hour;
//   - a time that happens twice (the hour repeated in autumn) fires once, at its first
//     occurrence, for a schedule with a fixed hour; an every-hour schedule fires in both.
#pragma once

#include <bitset>
#include <optional>
#include <string>
#include <string_view>

#include <absl/time/time.h>

#include "jobstore/core/clock.h"
#include "jobstore/core/status.h"

namespace jobstore {

class CronSchedule {
 public:
  // kInvalidArgument naming the field or the zone that is wrong.
  static StatusOr<CronSchedule> Parse(std::string_view expression, const std::string& time_zone);

  // The first time strictly after `after` at which the schedule fires; nullopt when it never
  // does within five years (e.g. "0 0 30 2 *").
  std::optional<TimeMs> NextAfter(TimeMs after) const;

 private:
  CronSchedule() = default;
  bool DayMatches(const absl::CivilDay& day) const;

  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;      // 1..31
  std::bitset<13> months_;    // 1..12
  std::bitset<7> weekdays_;   // 0 (Sunday)..6
  bool days_restricted_ = false;
  bool weekdays_restricted_ = false;
  bool hours_wildcard_ = false;  // the hour field starts with '*': the DST rules above
  absl::TimeZone zone_;
};

}  // namespace jobstore
