// JSON shapes of jobs and events, exactly as http/openapi.json describes them.
#pragma once

#include <string>
#include <string_view>

#include "jobstore/core/event.h"
#include "jobstore/core/job.h"
#include "jobstore/core/schedule.h"
#include "jobstore/core/status.h"

namespace jobstore {

Json JobToJson(const Job& job);
// JobToJson(job) as compact text (invalid UTF-8 replaced), rendered once per Job value and
// cached in it: the GET path. Only for jobs no one changes any more (published versions).
// Written straight from the Job (job_json_text.cc), byte for byte what
// JobToJson(job).dump(-1, ' ', false, Json::error_handler_t::replace) gives.
const std::string& JobJsonText(const Job& job);
// Appends `s` as a JSON string, byte for byte as `Json(s).dump(-1, ' ', false,
// Json::error_handler_t::replace)` prints it.
void AppendJsonString(std::string* out, std::string_view s);
// Parts of JobToJson: a job's `hitl` and its `retry` (null without a policy).
Json HitlToJson(const HitlRequest& h);
Json RetryToJson(const Job& job);
Json EventToJson(const Event& event);
// The API's Schedule; `next_run_at` as computed by the caller (NextOccurrence), or null.
Json ScheduleToJson(const Schedule& schedule, std::optional<TimeMs> next_run_at);
// The inverse of EventToJson (used by tools and tests). kInvalidArgument on a wrong shape.
StatusOr<Event> EventFromJson(const Json& j);

}  // namespace jobstore
