#include "jobstore/core/cron.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <vector>

namespace jobstore {
namespace {

struct FieldSpec {
  const char* name;
  int min;
  int max;
  const std::array<std::string_view, 12>* names;  // names[i] is the value min + i, or nullptr
};

constexpr std::array<std::string_view, 12> kMonthNames = {
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 12> kDayNames = {"sun", "mon", "tue", "wed", "thu", "fri",
                                                        "sat", "",    "",    "",    "",    ""};

std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || text[i] == sep) {
      parts.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  return parts;
}

Status Bad(const FieldSpec& f, std::string_view part, const std::string& why) {
  return InvalidArgument("cron: " + std::string(f.name) + " field '" + std::string(part) + "': " +
                         why);
}

// A number or (for months and weekdays) a name.
StatusOr<int> Value(const FieldSpec& f, std::string_view text) {
  if (f.names && text.size() == 3) {
    std::string lower(text);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (std::size_t i = 0; i < f.names->size(); ++i) {
      if (!(*f.names)[i].empty() && (*f.names)[i] == lower) return f.min + static_cast<int>(i);
    }
  }
  int v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return Bad(f, text, "not a number" + std::string(f.names ? " or a name" : ""));
  }
  // Weekday 7 is Sunday, as 0.
  const int max = std::string_view(f.name) == "day-of-week" ? 7 : f.max;
  if (v < f.min || v > max) {
    return Bad(f, text, "out of range " + std::to_string(f.min) + "-" + std::to_string(max));
  }
  return v;
}

// Parses one field into `bits` (bit v for value v). Returns whether it starts with '*'.
template <std::size_t N>
StatusOr<bool> ParseField(const FieldSpec& f, std::string_view text, std::bitset<N>* bits) {
  if (text.empty()) return Bad(f, text, "empty");
  for (std::string_view part : Split(text, ',')) {
    if (part.empty()) return Bad(f, text, "an empty list item");
    std::string_view range = part;
    int step = 1;
    if (auto slash = part.find('/'); slash != std::string_view::npos) {
      range = part.substr(0, slash);
      std::string_view step_text = part.substr(slash + 1);
      auto [end, ec] = std::from_chars(step_text.data(), step_text.data() + step_text.size(), step);
      if (step_text.empty() || ec != std::errc() || end != step_text.data() + step_text.size() ||
          step < 1 || step > f.max) {
        return Bad(f, part, "the step must be a number from 1 to " + std::to_string(f.max));
      }
    }
    int lo = f.min, hi = f.max;
    if (range == "*") {
      // the whole range
    } else if (auto dash = range.find('-'); dash != std::string_view::npos) {
      JOBSTORE_ASSIGN_OR_RETURN(lo, Value(f, range.substr(0, dash)));
      JOBSTORE_ASSIGN_OR_RETURN(hi, Value(f, range.substr(dash + 1)));
      if (lo > hi) return Bad(f, part, "the range runs backwards");
    } else {
      JOBSTORE_ASSIGN_OR_RETURN(lo, Value(f, range));
      hi = part.find('/') != std::string_view::npos ? f.max : lo;  // "a/n": a to the end
    }
    for (int v = lo; v <= hi; v += step) bits->set(static_cast<std::size_t>(v % static_cast<int>(N)));
  }
  return text.front() == '*';
}

std::string_view Macro(std::string_view text) {
  if (text == "@yearly" || text == "@annually") return "0 0 1 1 *";
  if (text == "@monthly") return "0 0 1 * *";
  if (text == "@weekly") return "0 0 * * 0";
  if (text == "@daily" || text == "@midnight") return "0 0 * * *";
  if (text == "@hourly") return "0 * * * *";
  return "";
}

}  // namespace

StatusOr<CronSchedule> CronSchedule::Parse(std::string_view expression,
                                           const std::string& time_zone) {
  CronSchedule s;
  if (!absl::LoadTimeZone(time_zone, &s.zone_)) {
    return InvalidArgument("unknown time zone '" + time_zone.substr(0, 64) +
                           "' (an IANA name such as Europe/Berlin, or UTC)");
  }
  std::string_view text = expression;
  if (!text.empty() && text.front() == '@') {
    text = Macro(expression);
    if (text.empty()) {
      return InvalidArgument("cron: unknown macro '" + std::string(expression.substr(0, 32)) +
                             "' (@yearly, @monthly, @weekly, @daily, @hourly)");
    }
  }
  std::vector<std::string_view> fields;
  for (std::string_view f : Split(text, ' ')) {
    if (!f.empty()) fields.push_back(f);
  }
  if (fields.size() != 5) {
    return InvalidArgument("cron: five fields are needed (minute hour day-of-month month "
                           "day-of-week), got " + std::to_string(fields.size()));
  }
  static const FieldSpec kMinute{"minute", 0, 59, nullptr}, kHour{"hour", 0, 23, nullptr},
      kDay{"day-of-month", 1, 31, nullptr}, kMonth{"month", 1, 12, &kMonthNames},
      kWeekday{"day-of-week", 0, 6, &kDayNames};
  JOBSTORE_RETURN_IF_ERROR(ParseField(kMinute, fields[0], &s.minutes_).status());
  JOBSTORE_ASSIGN_OR_RETURN(s.hours_wildcard_, ParseField(kHour, fields[1], &s.hours_));
  JOBSTORE_ASSIGN_OR_RETURN(bool days_star, ParseField(kDay, fields[2], &s.days_));
  JOBSTORE_RETURN_IF_ERROR(ParseField(kMonth, fields[3], &s.months_).status());
  JOBSTORE_ASSIGN_OR_RETURN(bool weekdays_star, ParseField(kWeekday, fields[4], &s.weekdays_));
  s.days_restricted_ = !days_star;
  s.weekdays_restricted_ = !weekdays_star;
  return s;
}

bool CronSchedule::DayMatches(const absl::CivilDay& day) const {
  if (!months_.test(static_cast<std::size_t>(day.month()))) return false;
  const bool dom = days_.test(static_cast<std::size_t>(day.day()));
  // absl::Weekday: Monday = 0 .. Sunday = 6; cron: Sunday = 0.
  const int weekday = (static_cast<int>(absl::GetWeekday(day)) + 1) % 7;
  const bool dow = weekdays_.test(static_cast<std::size_t>(weekday));
  if (days_restricted_ && weekdays_restricted_) return dom || dow;
  return dom && dow;
}

std::optional<TimeMs> CronSchedule::NextAfter(TimeMs after) const {
  const absl::Time after_time = absl::FromUnixMillis(after);
  const absl::CivilMinute start = absl::ToCivilMinute(after_time, zone_);
  // Day by day: the earliest firing time of a day is the answer, as days are in order (the
  // candidates of one day are compared, because a repeated hour makes civil order differ from
  // time order).
  constexpr int kHorizonDays = 5 * 366;
  for (absl::CivilDay day = absl::CivilDay(start), end = day + kHorizonDays; day < end; ++day) {
    if (!DayMatches(day)) continue;
    std::optional<absl::Time> best;
    // On the first day, from the hour before `after`'s: a repeated hour's second pass comes
    // after the first pass's later minutes. The candidates are filtered by time below.
    const bool first_day = day == absl::CivilDay(start);
    for (int h = first_day ? std::max(0, start.hour() - 1) : 0; h < 24; ++h) {
      if (!hours_.test(static_cast<std::size_t>(h))) continue;
      for (int m = 0; m < 60; ++m) {
        if (!minutes_.test(static_cast<std::size_t>(m))) continue;
        const absl::CivilMinute at(day.year(), day.month(), day.day(), h, m);
        const absl::TimeZone::TimeInfo info = zone_.At(at);
        absl::Time candidates[2];
        int n = 0;
        switch (info.kind) {
          case absl::TimeZone::TimeInfo::UNIQUE: candidates[n++] = info.pre; break;
          case absl::TimeZone::TimeInfo::SKIPPED:
            if (!hours_wildcard_) candidates[n++] = info.trans;
            break;
          case absl::TimeZone::TimeInfo::REPEATED:
            candidates[n++] = info.pre;
            if (hours_wildcard_) candidates[n++] = info.post;
            break;
        }
        for (int i = 0; i < n; ++i) {
          if (candidates[i] > after_time && (!best || candidates[i] < *best)) best = candidates[i];
        }
      }
    }
    if (best) return absl::ToUnixMillis(*best);
  }
  return std::nullopt;
}

}  // namespace jobstore
