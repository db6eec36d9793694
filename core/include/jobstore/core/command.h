// Commands: what a client (or a timer) asks to change. Decide() turns a command into events.
//
// Commands are validated in shape before they exist (http parses, core checks ranges with
// Validate*); Decide() checks them against the job's state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "jobstore/core/job.h"

namespace jobstore {

struct CreateJob {
  std::string job_id;  // already chosen (server UUID or the client's id)
  std::string type = kDefaultJobType;
  std::string user_id = kSharedUserId;
  std::string description;
  Json input = Json::object();
  Json labels = Json::object();
  std::int64_t ttl_seconds = kDefaultTtlSeconds;
  std::uint32_t max_attempts = kDefaultMaxAttempts;
  std::optional<std::string> idempotency_key;
  // With a key: a digest of the request that created the job, so that the same key sent with
  // another request is refused (kIdempotencyKeyReused) instead of answered with this job.
  std::optional<std::string> idempotency_fingerprint;
  std::int32_t priority = 0;
  std::optional<TimeMs> run_at;       // set: the job is scheduled until then
  std::optional<RetryPolicy> retry;   // set: a failure with attempts left is retried
};

struct UpdateJob {
  std::optional<Json> progress;    // replaces the progress object
  std::optional<Json> data_patch;  // RFC 7396 merge patch applied to data
  std::optional<Json> labels;      // merged; a null value removes the label
  std::size_t max_labels = 64;     // the job's labels after the merge may not exceed this
  std::optional<std::int32_t> priority = std::nullopt;  // only while the job waits
};

struct StartJob {
  std::optional<std::string> worker;
  std::int64_t lease_seconds = 0;  // 0: no lease
};

struct Heartbeat {
  std::optional<std::int64_t> lease_seconds;  // default: the job's current lease term
  std::optional<Json> progress;
};

struct RequestHitl {
  std::string type = "clarify";
  Json prompt = Json::object();
  std::optional<std::int64_t> timeout_seconds;
  // The asker's name for the question, so that a re-run of the job (after a crash) finds the
  // answer already given to it in the job's history instead of asking again.
  std::optional<std::string> key = std::nullopt;
};

struct AnswerHitl {
  std::string request_id;
  Json response;
  std::optional<std::string> responded_by;
};

// A worker's claim of the next pending job (of `types`, or of any type when empty). The store
// turns it into the StartJob of the job it picks.
struct ClaimRequest {
  std::string worker;
  std::vector<std::string> types;
  std::int64_t lease_seconds = kDefaultLeaseSeconds;
  std::size_t max_jobs = 1;  // up to this many, in claim order, in one write (Outcome::jobs)
  // A forwarded claim's request id: the i-th job it takes carries "<forward_id>/<i>", and a
  // repeat of the claim is answered with the jobs that still carry them (JobStore::Claim).
  std::optional<std::string> forward_id = std::nullopt;
};

struct CompleteJob {
  Json result;
  // The worker's next claim, in the same durable write (one request per job): see Outcome::next.
  std::optional<ClaimRequest> next = std::nullopt;
};

struct FailJob {
  JobError error;
  // With a retry policy and attempts left, a retryable failure schedules the next attempt
  // (job.retry_scheduled); otherwise the job fails.
  bool retryable = true;
  std::optional<ClaimRequest> next = std::nullopt;  // as CompleteJob's
};

struct CancelJob {
  std::string reason;
};

// Written by timers, never by clients directly.
struct ExpireLease {};
struct TimeOutHitl {
  std::string request_id;
};
struct ExpireJob {};
// POST /jobs/{id}/retry: a failed or cancelled job waits again, with a new attempts budget.
struct RetryJob {};
// The timer's: a scheduled job whose run_at came becomes pending.
struct MakeDue {};

// Schedules (core/schedule.h); the command's job_id is the schedule id.
// POST /schedules (create) and PATCH /schedules/{id} (each field optional).
struct SetSchedule {
  bool create = false;  // POST: the id must be free; PATCH: the schedule must exist
  std::optional<std::string> cron;
  std::optional<std::string> time_zone;
  std::optional<Json> job;  // the create body of each occurrence (checked by the API)
  std::optional<bool> paused;
};
struct DeleteSchedule {};
// The background's: the occurrence at `occurrence` created job `job_id`.
struct FireSchedule {
  TimeMs occurrence = 0;
  std::string job_id;
};

using CommandBody = std::variant<CreateJob, UpdateJob, StartJob, Heartbeat, RequestHitl,
                                 AnswerHitl, CompleteJob, FailJob, CancelJob, ExpireLease,
                                 TimeOutHitl, ExpireJob, RetryJob, MakeDue, SetSchedule,
                                 DeleteSchedule, FireSchedule>;

struct Command {
  std::string job_id;
  std::optional<std::uint64_t> if_match;  // expected version (If-Match)
  std::optional<std::string> caller;      // X-User-Id; checked against the job's owner
  CommandBody body;
  // Set when another instance forwarded the request (X-Jobstore-Request-Id): Decide stamps it
  // into the events, and the store answers a repeat from the job it made (Job::forward_id).
  std::optional<std::string> forward_id = std::nullopt;
};


// The name used in messages and metrics ("create", "start", ...).
std::string_view CommandName(const CommandBody& body);

}  // namespace jobstore
