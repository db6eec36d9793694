// Turns HTTP request parts (JSON bodies, query parameters, headers) into core commands and
// queries. Every rejection is kInvalidArgument with a message that names the field. Pure: no
// I/O, no store; the fuzz targets drive these functions directly.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "jobstore/core/command.h"
#include "jobstore/core/status.h"
#include "jobstore/core/validation.h"
#include "jobstore/projections/job_projection.h"

namespace jobstore::http {

// Query parameters as httplib gives them (a key may repeat).
using QueryParams = std::multimap<std::string, std::string>;

struct ParseLimits {
  Limits fields;
  std::int64_t default_ttl_seconds = kDefaultTtlSeconds;
  double max_wait_seconds = 60;
  std::size_t max_list_limit = 1000;
  std::size_t max_batch_jobs = 1000;
  std::size_t max_events_limit = 1000;
};

// Parses a JSON body. An empty body is an empty object when `empty_ok`. Rejects bodies nested
// deeper than limits.max_json_depth before building them, and anything but an object.
StatusOr<Json> ParseJsonBody(std::string_view body, bool empty_ok, const Limits& limits);

// Bodies of the mutation routes. `job_id` comes from the path (already validated);
// `generated_id` is used when a create body names no job_id; `now` resolves delay_seconds and
// decides whether run_at lies ahead (a run_at not after now schedules nothing).
StatusOr<CreateJob> ParseCreate(const Json& body, const std::string& generated_id,
                                const ParseLimits& limits, TimeMs now);
StatusOr<UpdateJob> ParseUpdate(const Json& body, const ParseLimits& limits);
StatusOr<StartJob> ParseStart(const Json& body, const ParseLimits& limits);
StatusOr<Heartbeat> ParseHeartbeat(const Json& body, const ParseLimits& limits);
StatusOr<RequestHitl> ParseRequestHitl(const Json& body, const ParseLimits& limits);
StatusOr<AnswerHitl> ParseAnswerHitl(const Json& body, const ParseLimits& limits);
StatusOr<CompleteJob> ParseComplete(const Json& body, const ParseLimits& limits);
StatusOr<FailJob> ParseFail(const Json& body, const ParseLimits& limits);
StatusOr<CancelJob> ParseCancel(const Json& body, const ParseLimits& limits);

// POST /schedules (`create`: schedule_id and cron required) and PATCH /schedules/{id} (any of
// cron, timezone, job, paused; at least one). The job template is a create body without job_id,
// run_at and delay_seconds, checked as a create would be (`now` as ParseCreate's). Fills
// `schedule_id` on a create.
StatusOr<SetSchedule> ParseSetSchedule(const Json& body, bool create, const ParseLimits& limits,
                                       TimeMs now, std::string* schedule_id);
// A schedule id: a job id's characters, at most 100 bytes (its occurrences' job ids add 16).
Status ValidateScheduleId(std::string_view id);
// POST /jobs/{id}/retry takes no fields.
StatusOr<RetryJob> ParseRetryJob(const Json& body, const ParseLimits& limits);
StatusOr<ClaimRequest> ParseClaim(const Json& body, const ParseLimits& limits);

// POST /jobs/finish: a worker's finished jobs in one request, each {"job_id", "if_match"?, and
// "complete": <a /complete body> or "fail": <a /fail body>} (without their "next"), then the
// request's own "next": <a /claim body> (max_jobs allowed). 1 to limits.max_batch_jobs jobs.
struct FinishBatch {
  std::vector<Command> commands;  // CompleteJob or FailJob, in the request's order
  std::optional<ClaimRequest> next;
};
StatusOr<FinishBatch> ParseFinishBatch(const Json& body, const ParseLimits& limits);

// Headers.
// If-Match: "6", 6 or W/"6"; "*" (any version) gives nullopt.
StatusOr<std::optional<std::uint64_t>> ParseIfMatch(std::string_view header);
// X-User-Id and Idempotency-Key: 1..256 printable ASCII characters.
Status ValidateHeaderToken(std::string_view name, std::string_view value);

// Every route takes ?min_seq=N (wait until this instance applied seq N; several instances):
// the router handles it before the route's own parameters are checked.
inline constexpr char kMinSeqParam[] = "min_seq";

// Query parameters.
// wait=S: seconds (fractions allowed), 0..max_wait_seconds; absent: nullopt.
StatusOr<std::optional<double>> ParseWait(const QueryParams& q, const ParseLimits& limits);
// A non-negative integer parameter; absent: nullopt.
StatusOr<std::optional<std::uint64_t>> ParseUintParam(const QueryParams& q, const char* name);
// GET /jobs: status, type, user_id, label=k:v (repeatable), limit, cursor.
StatusOr<ListQuery> ParseListQuery(const QueryParams& q, const ParseLimits& limits);

// The list cursor is opaque to clients; it encodes the created-seq bound.
std::string EncodeCursor(std::uint64_t before);
StatusOr<std::uint64_t> DecodeCursor(std::string_view cursor);

}  // namespace jobstore::http
