// Decide: command + current state -> events, or the error a client gets. Pure.
#include "jobstore/core/decide.h"

#include <algorithm>
#include <string>

#include "transitions.h"

namespace jobstore {
namespace {

using internal::AllowedFrom;
using internal::Bit;
using internal::DescribeMask;

// Maps each command to the event type it records (timers included).
struct EventTypeOf {
  EventType operator()(const CreateJob&) const { return EventType::kCreated; }
  EventType operator()(const UpdateJob&) const { return EventType::kUpdated; }
  EventType operator()(const StartJob&) const { return EventType::kStarted; }
  EventType operator()(const Heartbeat&) const { return EventType::kHeartbeat; }
  EventType operator()(const RequestHitl&) const { return EventType::kHitlRequested; }
  EventType operator()(const AnswerHitl&) const { return EventType::kHitlAnswered; }
  EventType operator()(const CompleteJob&) const { return EventType::kCompleted; }
  EventType operator()(const FailJob&) const { return EventType::kFailed; }
  EventType operator()(const CancelJob&) const { return EventType::kCancelled; }
  EventType operator()(const ExpireLease&) const { return EventType::kLeaseExpired; }
  EventType operator()(const TimeOutHitl&) const { return EventType::kHitlTimedOut; }
  EventType operator()(const ExpireJob&) const { return EventType::kExpired; }
  EventType operator()(const RetryJob&) const { return EventType::kRetried; }
  EventType operator()(const MakeDue&) const { return EventType::kDue; }
  EventType operator()(const SetSchedule&) const { return EventType::kScheduleSet; }
  EventType operator()(const DeleteSchedule&) const { return EventType::kScheduleDeleted; }
  EventType operator()(const FireSchedule&) const { return EventType::kScheduleFired; }
};

// A failure that the job's retry policy turns into a later attempt.
bool WillRetry(const Job& job, bool retryable) {
  return retryable && job.retry && job.attempt < job.max_attempts;
}

Json ErrorJson(const JobError& e) { return {{"code", e.code}, {"message", e.message}}; }

Json RetryPolicyJson(const RetryPolicy& p) {
  return {{"backoff", p.backoff == RetryPolicy::Backoff::kFixed ? "fixed" : "exponential"},
          {"initial_ms", p.initial_ms},
          {"max_ms", p.max_ms},
          {"jitter", p.jitter}};
}

// Builds the event data of a command that passed every check.
class DataOf {
 public:
  DataOf(const Job& job, TimeMs now) : job_(job), now_(now) {}

  StatusOr<Json> operator()(const CreateJob&) const { return Internal("create has no job"); }

  StatusOr<Json> operator()(const UpdateJob& c) const {
    if (c.labels) {
      // The patch alone was checked when parsed; the merged result must fit as well.
      std::size_t merged = job_.labels.size();
      for (const auto& [key, value] : c.labels->items()) {
        const bool present = job_.labels.contains(key);
        if (value.is_null() && present) --merged;
        if (!value.is_null() && !present) ++merged;
      }
      if (merged > c.max_labels) {
        return InvalidArgument("labels: the job would have " + std::to_string(merged) +
                               " labels; at most " + std::to_string(c.max_labels) + " are allowed");
      }
    }
    if (c.priority && !IsWaiting(job_.status)) {
      return Status(StatusCode::kInvalidTransition,
                    "cannot change the priority of job '" + job_.job_id + "': it is " +
                        std::string(JobStatusName(job_.status)) +
                        ", and a priority changes only while the job waits (pending or scheduled)");
    }
    Json d = Json::object();
    if (c.priority) d["priority"] = *c.priority;
    if (c.progress) d["progress"] = *c.progress;
    if (c.data_patch) d["data"] = *c.data_patch;
    if (c.labels) d["labels"] = *c.labels;
    return d;
  }

  StatusOr<Json> operator()(const StartJob& c) const {
    Json d = {{"attempt", job_.attempt + 1}, {"lease_seconds", c.lease_seconds}};
    if (c.worker) d["worker"] = *c.worker;
    return d;
  }

  StatusOr<Json> operator()(const Heartbeat& c) const {
    return Json{{"progress", c.progress.value_or(Json())},
                {"lease_seconds", c.lease_seconds.value_or(job_.lease_seconds)}};
  }

  StatusOr<Json> operator()(const RequestHitl& c) const {
    Json d = {{"request_id", "h-" + std::to_string(job_.hitl_rounds + 1)},
              {"type", c.type},
              {"prompt", c.prompt}};
    if (c.timeout_seconds) d["timeout_seconds"] = *c.timeout_seconds;
    if (c.key) d["key"] = *c.key;
    return d;
  }

  StatusOr<Json> operator()(const AnswerHitl& c) const {
    if (!job_.hitl || job_.hitl->request_id != c.request_id) {
      return Status(StatusCode::kStaleRequest,
                    "HITL request '" + c.request_id + "' is not the open request of job '" +
                        job_.job_id + "' (open: '" +
                        (job_.hitl ? job_.hitl->request_id : std::string()) + "')");
    }
    Json d = {{"request_id", c.request_id}, {"response", c.response}};
    if (c.responded_by) d["responded_by"] = *c.responded_by;
    return d;
  }

  StatusOr<Json> operator()(const CompleteJob& c) const { return Json{{"result", c.result}}; }

  StatusOr<Json> operator()(const FailJob& c) const {
    Json d = {{"error", ErrorJson(c.error)}, {"attempt", job_.attempt}};
    if (WillRetry(job_, c.retryable)) {
      d["run_at"] = now_ + RetryDelayMs(*job_.retry, job_.job_id, job_.attempt);
    }
    return d;
  }

  StatusOr<Json> operator()(const CancelJob& c) const { return Json{{"reason", c.reason}}; }

  StatusOr<Json> operator()(const ExpireLease&) const {
    auto due = LeaseDeadline(job_);
    if (!due || *due > now_) return NotDue("lease");
    // Attempts left: back to waiting, at once or (with a retry policy) after the backoff.
    const bool exhausted = job_.attempt >= job_.max_attempts;
    const char* status = exhausted ? "failed" : job_.retry ? "scheduled" : "pending";
    Json d = {{"status", status},
              {"attempt", job_.attempt},
              {"error",
               {{"code", "lease_expired"},
                {"message", "the worker's lease expired on attempt " +
                                std::to_string(job_.attempt) + " of " +
                                std::to_string(job_.max_attempts)}}}};
    if (!exhausted && job_.retry) {
      d["run_at"] = now_ + RetryDelayMs(*job_.retry, job_.job_id, job_.attempt);
    }
    return d;
  }

  StatusOr<Json> operator()(const TimeOutHitl& c) const {
    auto due = HitlDeadline(job_);
    if (!due || *due > now_ || job_.hitl->request_id != c.request_id) return NotDue("HITL timeout");
    return Json{{"request_id", c.request_id},
                {"error",
                 {{"code", "hitl_timeout"},
                  {"message", "nobody answered HITL request '" + c.request_id + "' in time"}}}};
  }

  StatusOr<Json> operator()(const ExpireJob&) const {
    auto due = ExpiryDeadline(job_);
    if (!due || *due > now_) return NotDue("expiry");
    return Json::object();
  }

  StatusOr<Json> operator()(const RetryJob&) const {
    return Json{{"previous_status", JobStatusName(job_.status)}};
  }

  // Schedules are decided by DecideSchedule (core/schedule.h), never against a job.
  StatusOr<Json> operator()(const SetSchedule&) const { return NotAJobCommand(); }
  StatusOr<Json> operator()(const DeleteSchedule&) const { return NotAJobCommand(); }
  StatusOr<Json> operator()(const FireSchedule&) const { return NotAJobCommand(); }

  StatusOr<Json> operator()(const MakeDue&) const {
    auto due = RunAtDeadline(job_);
    if (!due || *due > now_) return NotDue("run_at");
    return Json::object();
  }

 private:
  static Status NotAJobCommand() { return Internal("a schedule's command decided for a job"); }
  Status NotDue(const char* what) const {
    return InvalidArgument(std::string(what) + " of job '" + job_.job_id + "' is not due");
  }

  const Job& job_;
  TimeMs now_;
};

// The one event of a command, moved into its vector (a braced list would copy its data).
std::vector<Event> OneEvent(const std::string& job_id, std::uint64_t version, EventType type,
                            TimeMs now, Json data) {
  std::vector<Event> events;
  events.push_back(Event{
      .job_id = job_id, .version = version, .type = type, .at = now, .data = std::move(data)});
  return events;
}

Json CreatedData(const CreateJob& c) {
  Json d = Json::object();
  d.emplace("type", c.type);
  d.emplace("user_id", c.user_id);
  d.emplace("description", c.description);
  d.emplace("input", c.input);
  d.emplace("labels", c.labels);
  d.emplace("ttl_seconds", c.ttl_seconds);
  d.emplace("max_attempts", c.max_attempts);
  if (c.idempotency_key) d.emplace("idempotency_key", *c.idempotency_key);
  if (c.idempotency_fingerprint) d.emplace("idempotency_fingerprint", *c.idempotency_fingerprint);
  if (c.priority != 0) d.emplace("priority", c.priority);
  if (c.run_at) d.emplace("run_at", *c.run_at);
  if (c.retry) d.emplace("retry", RetryPolicyJson(*c.retry));
  return d;
}

}  // namespace

Status CheckCreate(const Job* job, const std::string& job_id) {
  if (job) return Status(StatusCode::kAlreadyExists, "job '" + job_id + "' already exists");
  return Status::Ok();
}

static StatusOr<std::vector<Event>> DecideJob(const Job* job, const Command& command, TimeMs now) {
  const EventType type = std::visit(EventTypeOf{}, command.body);
  if (AllowedFrom(type) == 0 && type != EventType::kCreated) {
    return Internal("command " + std::string(CommandName(command.body)) +
                    " is not a job's (schedules: DecideSchedule)");
  }
  if (const auto* create = std::get_if<CreateJob>(&command.body)) {
    JOBSTORE_RETURN_IF_ERROR(CheckCreate(job, command.job_id));
    return OneEvent(command.job_id, 1, type, now, CreatedData(*create));
  }
  if (!job) return NotFound("no job '" + command.job_id + "'");
  if (command.if_match && *command.if_match != job->version) {
    return Status(StatusCode::kVersionMismatch,
                  "If-Match is \"" + std::to_string(*command.if_match) + "\" but job '" +
                      job->job_id + "' is at version \"" + std::to_string(job->version) + "\"");
  }
  if (!CallerMayActOn(*job, command.caller)) {
    return Status(StatusCode::kForbidden,
                  "user '" + *command.caller + "' does not own job '" + job->job_id + "'");
  }
  if ((AllowedFrom(type) & Bit(job->status)) == 0) {
    return Status(StatusCode::kInvalidTransition,
                  "cannot " + std::string(CommandName(command.body)) + " job '" + job->job_id +
                      "': it is " + std::string(JobStatusName(job->status)) + ", and " +
                      std::string(CommandName(command.body)) + " needs " +
                      DescribeMask(AllowedFrom(type)));
  }
  if (const auto* hb = std::get_if<Heartbeat>(&command.body); hb && !hb->progress) {
    return std::vector<Event>{};  // a bare lease extension is not an event; see ApplyUnrecorded
  }
  JOBSTORE_ASSIGN_OR_RETURN(auto data, std::visit(DataOf(*job, now), command.body));
  // A failure with attempts left under a retry policy is recorded as the retry it becomes.
  const auto* fail = std::get_if<FailJob>(&command.body);
  const EventType recorded =
      fail && WillRetry(*job, fail->retryable) ? EventType::kRetryScheduled : type;
  return OneEvent(job->job_id, job->version + 1, recorded, now, std::move(data));
}

StatusOr<std::vector<Event>> Decide(const Job* job, const Command& command, TimeMs now) {
  auto events = DecideJob(job, command, now);
  if (events.ok() && command.forward_id) {
    for (Event& e : *events) e.data["forward_id"] = *command.forward_id;
  }
  return events;
}

std::optional<TimeMs> LeaseDeadline(const Job& job) {
  if (job.status != JobStatus::kRunning) return std::nullopt;
  return job.lease_expires_at;
}

std::optional<TimeMs> HitlDeadline(const Job& job) {
  if (job.status != JobStatus::kPendingHitl || !job.hitl) return std::nullopt;
  return job.hitl->expires_at;
}

std::optional<TimeMs> RunAtDeadline(const Job& job) {
  if (job.status != JobStatus::kScheduled) return std::nullopt;
  return job.run_at;
}

std::int64_t RetryDelayMs(const RetryPolicy& policy, std::string_view job_id,
                          std::uint32_t attempt) {
  const std::int64_t cap = std::max<std::int64_t>(policy.max_ms, 0);
  std::int64_t delay = std::min(std::max<std::int64_t>(policy.initial_ms, 0), cap);
  if (policy.backoff == RetryPolicy::Backoff::kExponential) {
    for (std::uint32_t i = 1; i < attempt && delay < cap; ++i) delay = std::min(delay * 2, cap);
  }
  // u in [0, 1) from the job id and the attempt (FNV-1a, then the top 53 bits).
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&h](unsigned char c) { h = (h ^ c) * 1099511628211ull; };
  for (char c : job_id) mix(static_cast<unsigned char>(c));
  for (int i = 0; i < 4; ++i) mix(static_cast<unsigned char>(attempt >> (8 * i)));
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 32;
  const double u = static_cast<double>(h >> 11) * 0x1.0p-53;
  const double jitter = std::clamp(policy.jitter, 0.0, 1.0);
  return static_cast<std::int64_t>(static_cast<double>(delay) * (1.0 - jitter * u));
}

std::optional<TimeMs> ExpiryDeadline(const Job& job) {
  if (!IsTerminal(job.status) || !job.finished_at) return std::nullopt;
  return *job.finished_at + job.ttl_seconds * kMsPerSecond;
}

std::optional<Job> ApplyUnrecorded(const Job& job, const Command& command, TimeMs now) {
  const auto* heartbeat = std::get_if<Heartbeat>(&command.body);
  if (!heartbeat) return std::nullopt;
  Job next = job;
  if (heartbeat->lease_seconds) next.lease_seconds = *heartbeat->lease_seconds;
  if (next.lease_seconds > 0) next.lease_expires_at = now + next.lease_seconds * kMsPerSecond;
  return next;
}

bool CallerMayActOn(const Job& job, const std::optional<std::string>& caller) {
  return !caller || job.user_id == kSharedUserId || *caller == job.user_id;
}

namespace internal {

std::string DescribeMask(StatusMask mask) {
  std::string out;
  int count = 0;
  for (int i = 0; i < kJobStatusCount; ++i) {
    if ((mask & (1u << i)) == 0) continue;
    if (count++) out += " or ";
    out += JobStatusName(static_cast<JobStatus>(i));
  }
  return count ? out : "no job";
}

}  // namespace internal
}  // namespace jobstore
