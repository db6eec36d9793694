// Recurring jobs: a schedule creates a job from its template at each time its cron expression
// names (http/openapi.json, "Schedule"). Like a job, a schedule lives in the log as events, under
// the log id "schedule/<schedule_id>" (a '/' never appears in a job id, so the two never meet):
//
//   schedule.set      {cron, timezone, job, paused}   a new schedule, or a change of one
//   schedule.fired    {occurrence, job_id}            one occurrence created its job (in the
//                                                     same atomic write as that job.created)
//   schedule.deleted  {}
//
// DecideSchedule and ApplySchedule are the schedule's Decide and Apply: pure, so live state and
// replayed state agree. Firing twice is impossible: an occurrence must be later than the last one
// fired, and its job id is derived from the schedule and the occurrence time.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "jobstore/core/command.h"
#include "jobstore/core/event.h"
#include "jobstore/core/job.h"
#include "jobstore/core/status.h"

namespace jobstore {

struct Schedule {
  std::string schedule_id;
  std::string cron;
  std::string time_zone = "UTC";
  Json job = Json::object();  // the create body of each occurrence
  bool paused = false;
  std::uint64_t version = 0;
  TimeMs created_at = 0;
  TimeMs updated_at = 0;
  std::optional<TimeMs> last_occurrence;  // the newest occurrence that created its job
  std::optional<std::string> last_job_id;
  TimeMs set_at = 0;  // the last schedule.set: occurrences before it are never caught up
  bool operator==(const Schedule&) const = default;
};

// The schedule commands (SetSchedule, DeleteSchedule, FireSchedule) are in command.h with the
// job's; a Command with one of them names the schedule id in its job_id field.

inline constexpr char kScheduleLogPrefix[] = "schedule/";
std::string ScheduleLogId(std::string_view schedule_id);
// The schedule id of a schedule's log id, or nullopt for a job's.
std::optional<std::string_view> ScheduleIdOf(std::string_view log_id);
inline bool IsScheduleEvent(EventType t) {
  return t == EventType::kScheduleSet || t == EventType::kScheduleFired ||
         t == EventType::kScheduleDeleted;
}

// The id of the job an occurrence creates: "<schedule_id>:<UTC time as yyyymmddThhmmZ>", e.g.
// "nightly-report:20261201T0200Z" (valid as a job id for a valid schedule id of <= 100 bytes).
std::string OccurrenceJobId(std::string_view schedule_id, TimeMs occurrence);

// `current`: the schedule, or nullptr when none has the id. Errors: kAlreadyExists (create on a
// taken id), kNotFound, kVersionMismatch (If-Match), kInvalidArgument (a cron or time zone that
// does not parse or never fires; an occurrence not after the last one; a paused schedule).
StatusOr<std::vector<Event>> DecideSchedule(const Schedule* current, const Command& command,
                                            TimeMs now);
inline bool IsScheduleCommand(const CommandBody& body) {
  return std::holds_alternative<SetSchedule>(body) ||
         std::holds_alternative<DeleteSchedule>(body) ||
         std::holds_alternative<FireSchedule>(body);
}

// The occurrence that is due at `now`: the latest time the cron names after the later of the
// last occurrence fired and the last change of the schedule, and at or before `now`. Missed
// occurrences (the server was down) are not caught up one by one: only the latest runs.
// nullopt when none is due (or the schedule is paused).
std::optional<TimeMs> DueOccurrence(const Schedule& schedule, TimeMs now);
// The next time the schedule fires after `now` (the API's next_run_at).
std::optional<TimeMs> NextOccurrence(const Schedule& schedule, TimeMs now);
// The first occurrence after the later of the last one fired and the last change: when the
// timer must wake (at once when it is past). nullopt when paused or it never fires.
std::optional<TimeMs> NextFireTime(const Schedule& schedule);

// Folds `event` into `schedule` (empty before schedule.set creates it; empty again after
// schedule.deleted). kCorruption when the event does not apply.
Status ApplySchedule(std::optional<Schedule>& schedule, const Event& event);

}  // namespace jobstore
