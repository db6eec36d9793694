// Schedules: Decide and Apply of the recurring-job definitions. Pure, like the job's.
#include "jobstore/core/schedule.h"

#include <cstdio>
#include <ctime>

#include "jobstore/core/cron.h"

namespace jobstore {
namespace {

Status Broken(const Event& e, const std::string& why) {
  return Corruption("event seq " + std::to_string(e.seq) + " (" +
                    std::string(EventTypeName(e.type)) + " of '" + e.job_id + "'): " + why);
}

std::vector<Event> OneEvent(const std::string& log_id, std::uint64_t version, EventType type,
                            TimeMs now, Json data) {
  std::vector<Event> events;
  events.push_back(
      Event{.job_id = log_id, .version = version, .type = type, .at = now, .data = std::move(data)});
  return events;
}

StatusOr<std::vector<Event>> DecideSet(const Schedule* current, const Command& c,
                                       const SetSchedule& set, TimeMs now) {
  if (set.create && current) {
    return Status(StatusCode::kAlreadyExists, "schedule '" + c.job_id + "' already exists");
  }
  if (!set.create && !current) return NotFound("no schedule '" + c.job_id + "'");
  Schedule next = current ? *current : Schedule{};
  if (set.cron) next.cron = *set.cron;
  if (set.time_zone) next.time_zone = *set.time_zone;
  if (set.job) next.job = *set.job;
  if (set.paused) next.paused = *set.paused;
  if (next.cron.empty()) return InvalidArgument("cron is required");
  JOBSTORE_ASSIGN_OR_RETURN(auto cron, CronSchedule::Parse(next.cron, next.time_zone));
  if (!cron.NextAfter(now)) {
    return InvalidArgument("cron '" + next.cron + "' never fires within five years");
  }
  return OneEvent(ScheduleLogId(c.job_id), (current ? current->version : 0) + 1,
                  EventType::kScheduleSet, now,
                  Json{{"cron", next.cron},
                       {"timezone", next.time_zone},
                       {"job", next.job},
                       {"paused", next.paused}});
}

}  // namespace

std::string ScheduleLogId(std::string_view schedule_id) {
  return kScheduleLogPrefix + std::string(schedule_id);
}

std::optional<std::string_view> ScheduleIdOf(std::string_view log_id) {
  const std::string_view prefix = kScheduleLogPrefix;
  if (log_id.substr(0, prefix.size()) != prefix) return std::nullopt;
  return log_id.substr(prefix.size());
}

std::string OccurrenceJobId(std::string_view schedule_id, TimeMs occurrence) {
  const std::time_t seconds = static_cast<std::time_t>(occurrence / kMsPerSecond);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%04d%02d%02dT%02d%02dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                utc.tm_mday, utc.tm_hour, utc.tm_min);
  return std::string(schedule_id) + ":" + stamp;
}

StatusOr<std::vector<Event>> DecideSchedule(const Schedule* current, const Command& command,
                                            TimeMs now) {
  if (current && command.if_match && *command.if_match != current->version) {
    return Status(StatusCode::kVersionMismatch,
                  "If-Match is \"" + std::to_string(*command.if_match) + "\" but schedule '" +
                      command.job_id + "' is at version \"" +
                      std::to_string(current->version) + "\"");
  }
  if (const auto* set = std::get_if<SetSchedule>(&command.body)) {
    return DecideSet(current, command, *set, now);
  }
  if (!current) return NotFound("no schedule '" + command.job_id + "'");
  const std::string log_id = ScheduleLogId(command.job_id);
  if (std::holds_alternative<DeleteSchedule>(command.body)) {
    return OneEvent(log_id, current->version + 1, EventType::kScheduleDeleted, now,
                    Json::object());
  }
  const auto& fire = std::get<FireSchedule>(command.body);
  if (current->paused) {
    return InvalidArgument("schedule '" + command.job_id + "' is paused");
  }
  if (current->last_occurrence && fire.occurrence <= *current->last_occurrence) {
    return InvalidArgument("schedule '" + command.job_id + "' fired for " +
                           std::to_string(*current->last_occurrence) + " already");
  }
  if (fire.occurrence > now) return InvalidArgument("that occurrence is not due");
  return OneEvent(log_id, current->version + 1, EventType::kScheduleFired, now,
                  Json{{"occurrence", fire.occurrence}, {"job_id", fire.job_id}});
}

Status ApplySchedule(std::optional<Schedule>& schedule, const Event& e) {
  const auto id = ScheduleIdOf(e.job_id);
  if (!id) return Broken(e, "not a schedule's log id");
  const std::uint64_t expected = schedule ? schedule->version + 1 : 1;
  if (e.version != expected) return Broken(e, "expected version " + std::to_string(expected));
  if (!schedule && e.type != EventType::kScheduleSet) {
    return Broken(e, "no schedule.set before it");
  }
  const Json& d = e.data;
  switch (e.type) {
    case EventType::kScheduleSet: {
      if (!d.is_object() || !d.contains("cron") || !d["cron"].is_string() ||
          !d.contains("timezone") || !d["timezone"].is_string() || !d.contains("job") ||
          !d.contains("paused") || !d["paused"].is_boolean()) {
        return Broken(e, "schedule.set needs cron, timezone, job and paused");
      }
      if (!schedule) {
        schedule.emplace();
        schedule->schedule_id = std::string(*id);
        schedule->created_at = e.at;
      }
      schedule->cron = d["cron"].get<std::string>();
      schedule->time_zone = d["timezone"].get<std::string>();
      schedule->job = d["job"];
      schedule->paused = d["paused"].get<bool>();
      schedule->set_at = e.at;
      break;
    }
    case EventType::kScheduleFired:
      if (!d.is_object() || !d.contains("occurrence") || !d["occurrence"].is_number_integer() ||
          !d.contains("job_id") || !d["job_id"].is_string()) {
        return Broken(e, "schedule.fired needs occurrence and job_id");
      }
      schedule->last_occurrence = d["occurrence"].get<TimeMs>();
      schedule->last_job_id = d["job_id"].get<std::string>();
      break;
    case EventType::kScheduleDeleted:
      schedule.reset();
      return Status::Ok();
    default:
      return Broken(e, "a job's event under a schedule's id");
  }
  schedule->version = e.version;
  schedule->updated_at = e.at;
  return Status::Ok();
}

namespace {

// The schedule's cron, unless it is paused (or its zone no longer loads: checked when set, but a
// tz database change may break it), and the time its occurrences count from.
std::optional<CronSchedule> ActiveCron(const Schedule& schedule) {
  if (schedule.paused) return std::nullopt;
  auto cron = CronSchedule::Parse(schedule.cron, schedule.time_zone);
  if (!cron.ok()) return std::nullopt;
  return std::move(cron).value();
}
TimeMs Base(const Schedule& schedule) {
  return std::max(schedule.last_occurrence.value_or(0), schedule.set_at);
}

}  // namespace

std::optional<TimeMs> NextOccurrence(const Schedule& schedule, TimeMs now) {
  auto cron = ActiveCron(schedule);
  return cron ? cron->NextAfter(std::max(Base(schedule), now)) : std::nullopt;
}

std::optional<TimeMs> NextFireTime(const Schedule& schedule) {
  return NextOccurrence(schedule, 0);
}

std::optional<TimeMs> DueOccurrence(const Schedule& schedule, TimeMs now) {
  auto cron = ActiveCron(schedule);
  if (!cron) return std::nullopt;
  const TimeMs base = Base(schedule);
  // The latest occurrence at or before now. Start a day back when that is after the base, so a
  // frequent schedule walks at most a day of occurrences; a sparse one (nothing in the last
  // day) walks from the base, at most one occurrence per day it missed.
  constexpr TimeMs kDayMs = 86'400'000;
  std::optional<TimeMs> next = cron->NextAfter(std::max(base, now - kDayMs));
  if (!next || *next > now) next = cron->NextAfter(base);
  std::optional<TimeMs> due;
  for (; next && *next <= now; next = cron->NextAfter(*next)) due = next;
  return due;
}

}  // namespace jobstore
