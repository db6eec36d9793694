// Apply: folds one event into a job. Pure; shared by live writes and replay.
#include <string>

#include "jobstore/core/decide.h"
#include "transitions.h"

namespace jobstore {
namespace {

using internal::AllowedFrom;
using internal::Bit;

Status Broken(const Event& e, const std::string& why) {
  return Corruption("event seq " + std::to_string(e.seq) + " (" +
                    std::string(EventTypeName(e.type)) + " v" + std::to_string(e.version) +
                    " of job '" + e.job_id + "'): " + why);
}

// Field readers: a wrong or missing field is a corrupt event, never an exception.
const Json* Field(const Json& data, const char* key) {
  if (!data.is_object()) return nullptr;
  auto it = data.find(key);
  return it == data.end() ? nullptr : &*it;
}
bool ReadString(const Json& data, const char* key, std::string* out) {
  const Json* f = Field(data, key);
  if (!f || !f->is_string()) return false;
  *out = f->get<std::string>();
  return true;
}
bool ReadInt(const Json& data, const char* key, std::int64_t* out) {
  const Json* f = Field(data, key);
  if (!f || !f->is_number_integer()) return false;
  *out = f->get<std::int64_t>();
  return true;
}
std::optional<std::string> OptString(const Json& data, const char* key) {
  std::string s;
  return ReadString(data, key, &s) ? std::optional<std::string>(std::move(s)) : std::nullopt;
}
Json OptJson(const Json& data, const char* key) {
  const Json* f = Field(data, key);
  return f ? *f : Json();
}

void StartLease(Job& job, TimeMs at) {
  if (job.lease_seconds > 0) {
    job.lease_expires_at = at + job.lease_seconds * kMsPerSecond;
  } else {
    job.lease_expires_at.reset();
  }
}

bool ReadError(const Json& data, JobError* out) {
  const Json* e = Field(data, "error");
  return e && ReadString(*e, "code", &out->code) && ReadString(*e, "message", &out->message);
}

// Fills `job` (a default Job) from job.created, in place: a created job is built where it is
// kept, not moved there field by field.
Status ApplyCreated(Job& job, const Event& e) {
  job.job_id = e.job_id;
  std::int64_t ttl = 0, max_attempts = 0;
  if (!ReadString(e.data, "type", &job.type) || !ReadString(e.data, "user_id", &job.user_id) ||
      !ReadInt(e.data, "ttl_seconds", &ttl) || !ReadInt(e.data, "max_attempts", &max_attempts)) {
    return Broken(e, "job.created needs type, user_id, ttl_seconds and max_attempts");
  }
  ReadString(e.data, "description", &job.description);
  job.input = OptJson(e.data, "input");
  if (job.input.is_null()) job.input = Json::object();
  job.labels = OptJson(e.data, "labels");
  if (!job.labels.is_object()) job.labels = Json::object();
  job.ttl_seconds = ttl;
  job.max_attempts = static_cast<std::uint32_t>(max_attempts);
  if (auto key = OptString(e.data, "idempotency_key")) job.idempotency_key = std::move(*key);
  if (auto print = OptString(e.data, "idempotency_fingerprint")) {
    job.idempotency_fingerprint = std::move(*print);
  }
  std::int64_t priority = 0;
  if (ReadInt(e.data, "priority", &priority)) job.priority = static_cast<std::int32_t>(priority);
  std::int64_t run_at = 0;
  if (ReadInt(e.data, "run_at", &run_at)) job.run_at = run_at;
  if (const Json* retry = Field(e.data, "retry")) {
    RetryPolicy p;
    std::string backoff;
    if (!ReadString(*retry, "backoff", &backoff) || !ReadInt(*retry, "initial_ms", &p.initial_ms) ||
        !ReadInt(*retry, "max_ms", &p.max_ms)) {
      return Broken(e, "job.created's retry needs backoff, initial_ms and max_ms");
    }
    p.backoff = backoff == "fixed" ? RetryPolicy::Backoff::kFixed
                                   : RetryPolicy::Backoff::kExponential;
    if (const Json* jitter = Field(*retry, "jitter"); jitter && jitter->is_number()) {
      p.jitter = jitter->get<double>();
    }
    job.retry = p;
  }
  JOBSTORE_ASSIGN_OR_RETURN(job.status, StatusAfter(JobStatus::kPending, e.type, e.data));
  return Status::Ok();
}

// One step per event type but job.created: each folds the event's data into the job, or says
// (as a corrupt event) what the data lacks. The status itself is set by ApplyInPlace from
// StatusAfter, the one table of where each event leaves a job.
Status ApplyStarted(Job& job, const Event& e) {
  std::int64_t attempt = 0, lease = 0;
  if (!ReadInt(e.data, "attempt", &attempt) || !ReadInt(e.data, "lease_seconds", &lease)) {
    return Broken(e, "job.started needs attempt and lease_seconds");
  }
  job.attempt = static_cast<std::uint32_t>(attempt);
  job.worker = OptString(e.data, "worker");
  job.lease_seconds = lease;
  job.started_at = e.at;
  StartLease(job, e.at);
  return Status::Ok();
}

Status ApplyUpdated(Job& job, const Event& e) {
  std::int64_t priority = 0;
  if (ReadInt(e.data, "priority", &priority)) job.priority = static_cast<std::int32_t>(priority);
  if (const Json* p = Field(e.data, "progress")) job.progress = *p;
  if (const Json* patch = Field(e.data, "data")) job.data.merge_patch(*patch);
  if (const Json* labels = Field(e.data, "labels")) {
    if (!labels->is_object()) return Broken(e, "labels must be an object");
    for (const auto& [k, v] : labels->items()) {
      if (v.is_null()) {
        job.labels.erase(k);
      } else {
        job.labels[k] = v;
      }
    }
  }
  return Status::Ok();
}

Status ApplyHeartbeat(Job& job, const Event& e) {
  std::int64_t lease = 0;
  if (!ReadInt(e.data, "lease_seconds", &lease)) {
    return Broken(e, "job.heartbeat needs lease_seconds");
  }
  if (const Json* p = Field(e.data, "progress"); p && !p->is_null()) job.progress = *p;
  job.lease_seconds = lease;
  StartLease(job, e.at);
  return Status::Ok();
}

Status ApplyHitlRequested(Job& job, const Event& e) {
  HitlRequest h;
  if (!ReadString(e.data, "request_id", &h.request_id) || !ReadString(e.data, "type", &h.type)) {
    return Broken(e, "job.hitl_requested needs request_id and type");
  }
  h.prompt = OptJson(e.data, "prompt");
  h.key = OptString(e.data, "key");
  h.requested_at = e.at;
  std::int64_t timeout = 0;
  if (ReadInt(e.data, "timeout_seconds", &timeout)) h.expires_at = e.at + timeout * kMsPerSecond;
  job.hitl = std::move(h);
  job.hitl_rounds += 1;
  job.lease_expires_at.reset();  // a person thinking is not a dead worker
  return Status::Ok();
}

Status ApplyHitlAnswered(Job& job, const Event& e) {
  std::string request_id;
  if (!ReadString(e.data, "request_id", &request_id)) {
    return Broken(e, "job.hitl_answered needs request_id");
  }
  if (!job.hitl || job.hitl->request_id != request_id) {
    return Broken(e, "answers '" + request_id + "', which is not the open HITL request");
  }
  job.hitl->response = OptJson(e.data, "response");
  job.hitl->responded_at = e.at;
  job.hitl->responded_by = OptString(e.data, "responded_by");
  StartLease(job, e.at);
  return Status::Ok();
}

Status ApplyCompleted(Job& job, const Event& e) {
  job.result = OptJson(e.data, "result");
  return Status::Ok();
}

// job.failed, job.hitl_timed_out, job.retry_scheduled and job.lease_expired carry the error of
// the attempt that ended: the job's error now, and one more entry of its history.
Status ApplyError(Job& job, const Event& e) {
  JobError err;
  if (!ReadError(e.data, &err)) {
    return Broken(e, std::string(EventTypeName(e.type)) + " needs error.code and error.message");
  }
  job.errors.push_back({job.attempt, err.code, err.message, e.at});
  job.error = std::move(err);
  return Status::Ok();
}

// The next attempt waits until run_at.
Status ApplyRetryScheduled(Job& job, const Event& e) {
  std::int64_t run_at = 0;
  if (!ReadInt(e.data, "run_at", &run_at)) return Broken(e, "job.retry_scheduled needs run_at");
  job.run_at = run_at;
  job.worker.reset();
  job.lease_expires_at.reset();
  return ApplyError(job, e);
}

// Back to waiting, with a new attempts budget; the errors of the earlier attempts stay.
Status ApplyRetried(Job& job, const Event& e) {
  job.attempt = 0;
  job.error.reset();
  job.result = Json();
  job.worker.reset();
  job.lease_expires_at.reset();
  job.finished_at.reset();
  job.run_at = e.at;  // its place in the claim order: due now
  return Status::Ok();
}

Status ApplyCancelled(Job& job, const Event& e) {
  std::string reason;
  ReadString(e.data, "reason", &reason);
  job.error = JobError{"cancelled", reason.empty() ? "cancelled" : reason};
  return Status::Ok();
}

Status ApplyLeaseExpired(Job& job, const Event& e) {
  job.worker.reset();
  job.lease_expires_at.reset();
  if (job.status == JobStatus::kScheduled) {  // requeued after the retry policy's backoff
    std::int64_t run_at = 0;
    if (!ReadInt(e.data, "run_at", &run_at)) return Broken(e, "a scheduled retry needs run_at");
    job.run_at = run_at;
  }
  // A requeue recorded before errors were kept has none; a failure always has one.
  if (job.status == JobStatus::kPending && !Field(e.data, "error")) return Status::Ok();
  return ApplyError(job, e);
}

Status ApplyChange(Job& job, const Event& e) {
  switch (e.type) {
    case EventType::kCreated: return Broken(e, "job.created for a job that exists");
    case EventType::kStarted: return ApplyStarted(job, e);
    case EventType::kUpdated: return ApplyUpdated(job, e);
    case EventType::kHeartbeat: return ApplyHeartbeat(job, e);
    case EventType::kHitlRequested: return ApplyHitlRequested(job, e);
    case EventType::kHitlAnswered: return ApplyHitlAnswered(job, e);
    case EventType::kCompleted: return ApplyCompleted(job, e);
    case EventType::kFailed: return ApplyError(job, e);
    case EventType::kCancelled: return ApplyCancelled(job, e);
    case EventType::kLeaseExpired: return ApplyLeaseExpired(job, e);
    case EventType::kHitlTimedOut: return ApplyError(job, e);
    case EventType::kExpired: return Status::Ok();  // the projection drops the job
    case EventType::kRetryScheduled: return ApplyRetryScheduled(job, e);
    case EventType::kDue: return Status::Ok();  // pending now (StatusAfter)
    case EventType::kRetried: return ApplyRetried(job, e);
    case EventType::kScheduleSet:
    case EventType::kScheduleFired:
    case EventType::kScheduleDeleted: break;
  }
  return Broken(e, "unknown event type");
}

// Every applied event makes the job's next version.
void StampVersion(Job& job, const Event& e) {
  job.version = e.version;
  job.updated_at = e.at;
  job.last_seq = e.seq;
}

// data.forward_id: the forwarded request that made this change (Job::forward_id).
void StampForwardId(Job& job, const Event& e) {
  const Json* id = Field(e.data, "forward_id");
  if (id && id->is_string()) {
    job.forward_id = id->get<std::string>();
  } else {
    job.forward_id.reset();
  }
}

}  // namespace

StatusOr<JobStatus> StatusAfter(JobStatus before, EventType type, const Json& data) {
  switch (type) {
    case EventType::kCreated:
      return Field(data, "run_at") ? JobStatus::kScheduled : JobStatus::kPending;
    case EventType::kStarted: return JobStatus::kRunning;
    case EventType::kHitlRequested: return JobStatus::kPendingHitl;
    case EventType::kHitlAnswered: return JobStatus::kRunning;
    case EventType::kCompleted: return JobStatus::kCompleted;
    case EventType::kFailed: return JobStatus::kFailed;
    case EventType::kCancelled: return JobStatus::kCancelled;
    case EventType::kHitlTimedOut: return JobStatus::kFailed;
    case EventType::kLeaseExpired: {
      // The writer decided between a retry and the end, and recorded which.
      std::string status;
      ReadString(data, "status", &status);
      if (status == "pending") return JobStatus::kPending;
      if (status == "scheduled") return JobStatus::kScheduled;
      if (status == "failed") return JobStatus::kFailed;
      return Corruption("job.lease_expired needs status pending, scheduled or failed");
    }
    case EventType::kRetryScheduled: return JobStatus::kScheduled;
    case EventType::kDue: return JobStatus::kPending;
    case EventType::kRetried: return JobStatus::kPending;
    case EventType::kScheduleSet:
    case EventType::kScheduleFired:
    case EventType::kScheduleDeleted: return Corruption("a schedule's event applied to a job");
    case EventType::kUpdated:
    case EventType::kHeartbeat:
    case EventType::kExpired: return before;
  }
  return Corruption("unknown event type");
}

void StampCreated(Job& job, std::uint64_t seq, TimeMs at) {
  job.created_at = at;
  job.created_seq = seq;
  job.version = 1;
  job.updated_at = at;
  job.last_seq = seq;
}

Status ApplyInPlace(Job& job, const Event& e) {
  job.api_json.Clear();  // this value is about to become another version
  if (e.version != job.version + 1) {
    return Broken(e, "expected version " + std::to_string(job.version + 1));
  }
  if (job.job_id != e.job_id) return Broken(e, "applied to job '" + job.job_id + "'");
  if (e.type == EventType::kCreated) return Broken(e, "job.created for a job that exists");
  if ((AllowedFrom(e.type) & Bit(job.status)) == 0) {
    return Broken(e, "not allowed while the job is " + std::string(JobStatusName(job.status)));
  }
  auto next = StatusAfter(job.status, e.type, e.data);
  if (!next.ok()) return Broken(e, next.status().message());
  const bool finishes = IsTerminal(*next) && !IsTerminal(job.status);
  job.status = *next;
  JOBSTORE_RETURN_IF_ERROR(ApplyChange(job, e));
  if (finishes) {
    job.finished_at = e.at;
    job.lease_expires_at.reset();
  }
  StampVersion(job, e);
  StampForwardId(job, e);
  return Status::Ok();
}

// job.created folded into a default Job.
Status ApplyCreation(Job& job, const Event& e) {
  if (e.version != 1) return Broken(e, "expected version 1");
  if (e.type != EventType::kCreated) return Broken(e, "no job.created before it");
  JOBSTORE_RETURN_IF_ERROR(ApplyCreated(job, e));
  StampCreated(job, e.seq, e.at);
  StampForwardId(job, e);
  return Status::Ok();
}

Status ApplyInPlace(std::optional<Job>& job, const Event& e) {
  if (job) return ApplyInPlace(*job, e);
  Status created = ApplyCreation(job.emplace(), e);
  if (!created.ok()) job.reset();
  return created;
}

StatusOr<Job> Apply(const Job* job, const Event& e) {
  std::optional<Job> next;
  if (job) next = *job;
  JOBSTORE_RETURN_IF_ERROR(ApplyInPlace(next, e));
  return std::move(*next);
}

StatusOr<std::shared_ptr<Job>> ApplyShared(const std::shared_ptr<const Job>& job,
                                            const Event& e) {
  auto next = job ? std::make_shared<Job>(*job) : std::make_shared<Job>();
  JOBSTORE_RETURN_IF_ERROR(job ? ApplyInPlace(*next, e) : ApplyCreation(*next, e));
  return next;
}

}  // namespace jobstore
