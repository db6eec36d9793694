// The job: the state that the live projection holds and the API returns (http/openapi.json, "Job").
//
// A Job is a value. It is only ever produced by Apply() from events, so a job rebuilt from its
// events at startup is identical to the one the server held before it stopped.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "jobstore/core/boxed.h"
#include "jobstore/core/clock.h"
#include "jobstore/core/rendered_text.h"

namespace jobstore {

using Json = nlohmann::json;

// Defaults and units, one copy each (the API documents them in http/openapi.json).
inline constexpr std::int64_t kMsPerSecond = 1000;
inline constexpr std::int64_t kDefaultTtlSeconds = 3600;   // a finished job's time to live
inline constexpr std::int64_t kDefaultLeaseSeconds = 30;   // a claim's lease term
inline constexpr std::uint32_t kDefaultMaxAttempts = 3;
inline constexpr std::size_t kDefaultListLimit = 50;       // jobs per page
inline constexpr char kDefaultJobType[] = "default";
// The user of a job created without X-User-Id. Such a job is shared: any caller may act on it
// (see CallerMayActOn in decide.h).
inline constexpr char kSharedUserId[] = "default";
inline constexpr std::int32_t kMinPriority = -1000;
inline constexpr std::int32_t kMaxPriority = 1000;

enum class JobStatus : std::uint8_t {
  kPending = 0,
  kRunning = 1,
  kPendingHitl = 2,
  kCompleted = 3,
  kFailed = 4,
  kCancelled = 5,
  kScheduled = 6,  // waiting, but not claimable before its run_at (a delay or a retry's backoff)
};
inline constexpr int kJobStatusCount = 7;

std::string_view JobStatusName(JobStatus s);  // "pending", "running", "pending_hitl", ...
std::optional<JobStatus> ParseJobStatus(std::string_view name);
inline bool IsTerminal(JobStatus s) {
  return s == JobStatus::kCompleted || s == JobStatus::kFailed || s == JobStatus::kCancelled;
}
// Waiting for a worker: claimable now (pending) or at its run_at (scheduled).
inline bool IsWaiting(JobStatus s) { return s == JobStatus::kPending || s == JobStatus::kScheduled; }

struct JobError {
  std::string code;
  std::string message;
  bool operator==(const JobError&) const = default;
};

// What a failed attempt of a job left behind: one entry per failure (fail, lease expiry, HITL
// timeout), oldest first, kept across retries.
struct AttemptError {
  std::uint32_t attempt = 0;
  std::string code;
  std::string message;
  TimeMs at = 0;
  bool operator==(const AttemptError&) const = default;
};

// How a job with a retry policy is retried after a failure (http/openapi.json, "RetryPolicy").
// The n-th retry waits initial * 2^(n-1) (exponential) or initial (fixed), at most max, less a
// jitter share of it: delay * (1 - jitter * u), u in [0, 1) derived from the job id and attempt,
// so that Decide stays pure and a replay recomputes nothing (the due time is in the event).
struct RetryPolicy {
  enum class Backoff : std::uint8_t { kExponential = 0, kFixed = 1 };
  Backoff backoff = Backoff::kExponential;
  std::int64_t initial_ms = 1000;
  std::int64_t max_ms = 600'000;
  double jitter = 0.2;  // 0..1
  bool operator==(const RetryPolicy&) const = default;
};

// The open or last human-in-the-loop request of a job.
struct HitlRequest {
  std::string request_id;  // "h-<n>": the job's n-th request
  std::string type;
  Json prompt;
  TimeMs requested_at = 0;
  std::optional<TimeMs> expires_at;
  Json response;  // null until answered
  std::optional<TimeMs> responded_at;
  std::optional<std::string> responded_by;
  std::optional<std::string> key;  // see RequestHitl
  bool operator==(const HitlRequest&) const = default;
};

struct Job {
  std::string job_id;
  std::string type;
  JobStatus status = JobStatus::kPending;
  std::string user_id;
  std::string description;
  Json input = Json::object();
  Json data = Json::object();
  Json labels = Json::object();  // string -> string
  Json progress;                 // null until reported
  Boxed<HitlRequest> hitl;  // boxed: most jobs never have one (one pointer instead of 184 B)
  std::uint32_t hitl_rounds = 0;  // requests so far; the next id is "h-<hitl_rounds + 1>"
  Json result;                    // null until completed
  Boxed<JobError> error;
  std::optional<std::string> worker;
  std::optional<TimeMs> lease_expires_at;
  std::int64_t lease_seconds = 0;  // the lease term in force while running (0: no lease)
  std::uint32_t attempt = 0;
  std::uint32_t max_attempts = kDefaultMaxAttempts;
  std::uint64_t version = 0;  // number of events of this job
  TimeMs created_at = 0;
  TimeMs updated_at = 0;
  std::optional<TimeMs> started_at;
  std::optional<TimeMs> finished_at;
  std::int64_t ttl_seconds = kDefaultTtlSeconds;
  // Boxed (one pointer each, not 40 B): they keep a Job within jemalloc's 512 B size class,
  // 128 B less per live job than 640 (bench/RESULTS.md, memory per job).
  Boxed<std::string> idempotency_key;
  Boxed<std::string> idempotency_fingerprint;  // see CreateJob
  // The id of the forwarded request (several instances: http/src/write_forwarding.h) whose
  // change made this version, if one did. A repeat of that request (its answer was lost with a
  // writer that died) is answered from the job instead of applied again. The next change that
  // carries no id clears it. Boxed: one pointer, as most jobs never have one.
  Boxed<std::string> forward_id;
  std::uint64_t created_seq = 0;  // seq of job.created: the list order and cursor key
  std::uint64_t last_seq = 0;     // seq of the newest event
  // Claim order: higher priority first (kMinPriority..kMaxPriority), then the due time, then
  // creation order.
  std::int32_t priority = 0;
  // Scheduled: when the job becomes claimable. Pending: when it last became claimable, if not
  // at its creation (a delay, a retry's backoff, a manual retry); the claim order's due time.
  std::optional<TimeMs> run_at;
  Boxed<RetryPolicy> retry;  // absent: a failure is final (a lease expiry still requeues)
  std::vector<AttemptError> errors;

  // JobJsonText()'s cache of this version's API JSON; empty in every copy (see rendered_text.h).
  RenderedText api_json;

  bool operator==(const Job&) const = default;
};

}  // namespace jobstore
