// Apply: folds one event into a job. Pure; shared by live writes and replay.
#include <string>

#include "jobstore/core/decide.h"
#include "transitions.h"

namespace jobstore {
namespace {

using internal::AllowedFrom;
using internal::Bit;

constexpr std::int64_t kMsPerSecond = 1000;

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

void Finish(Job& job, JobStatus status, TimeMs at) {
  job.status = status;
  job.finished_at = at;
  job.lease_expires_at.reset();
}

bool ReadError(const Json& data, JobError* out) {
  const Json* e = Field(data, "error");
  return e && ReadString(*e, "code", &out->code) && ReadString(*e, "message", &out->message);
}

StatusOr<Job> ApplyCreated(const Event& e) {
  Job job;
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
  job.idempotency_key = OptString(e.data, "idempotency_key");
  job.idempotency_fingerprint = OptString(e.data, "idempotency_fingerprint");
  job.status = JobStatus::kPending;
  return job;
}

// Applies every event type but job.created to a copy of the job. Returns an error message, or
// an empty string when the event applied.
std::string ApplyChange(Job& job, const Event& e) {
  const Json& d = e.data;
  switch (e.type) {
    case EventType::kCreated:
      return "job.created for a job that exists";
    case EventType::kStarted: {
      std::int64_t attempt = 0, lease = 0;
      if (!ReadInt(d, "attempt", &attempt) || !ReadInt(d, "lease_seconds", &lease)) {
        return "job.started needs attempt and lease_seconds";
      }
      job.status = JobStatus::kRunning;
      job.attempt = static_cast<std::uint32_t>(attempt);
      job.worker = OptString(d, "worker");
      job.lease_seconds = lease;
      job.started_at = e.at;
      StartLease(job, e.at);
      return "";
    }
    case EventType::kUpdated: {
      if (const Json* p = Field(d, "progress")) job.progress = *p;
      if (const Json* patch = Field(d, "data")) job.data.merge_patch(*patch);
      if (const Json* labels = Field(d, "labels")) {
        if (!labels->is_object()) return "labels must be an object";
        for (const auto& [k, v] : labels->items()) {
          if (v.is_null()) {
            job.labels.erase(k);
          } else {
            job.labels[k] = v;
          }
        }
      }
      return "";
    }
    case EventType::kHeartbeat: {
      std::int64_t lease = 0;
      if (!ReadInt(d, "lease_seconds", &lease)) return "job.heartbeat needs lease_seconds";
      if (const Json* p = Field(d, "progress"); p && !p->is_null()) job.progress = *p;
      job.lease_seconds = lease;
      StartLease(job, e.at);
      return "";
    }
    case EventType::kHitlRequested: {
      HitlRequest h;
      if (!ReadString(d, "request_id", &h.request_id) || !ReadString(d, "type", &h.type)) {
        return "job.hitl_requested needs request_id and type";
      }
      h.prompt = OptJson(d, "prompt");
      h.requested_at = e.at;
      std::int64_t timeout = 0;
      if (ReadInt(d, "timeout_seconds", &timeout)) h.expires_at = e.at + timeout * kMsPerSecond;
      job.hitl = std::move(h);
      job.hitl_rounds += 1;
      job.status = JobStatus::kPendingHitl;
      job.lease_expires_at.reset();  // a person thinking is not a dead worker
      return "";
    }
    case EventType::kHitlAnswered: {
      std::string request_id;
      if (!ReadString(d, "request_id", &request_id)) return "job.hitl_answered needs request_id";
      if (!job.hitl || job.hitl->request_id != request_id) {
        return "answers '" + request_id + "', which is not the open HITL request";
      }
      job.hitl->response = OptJson(d, "response");
      job.hitl->responded_at = e.at;
      job.hitl->responded_by = OptString(d, "responded_by");
      job.status = JobStatus::kRunning;
      StartLease(job, e.at);
      return "";
    }
    case EventType::kCompleted:
      job.result = OptJson(d, "result");
      Finish(job, JobStatus::kCompleted, e.at);
      return "";
    case EventType::kFailed: {
      JobError err;
      if (!ReadError(d, &err)) return "job.failed needs error.code and error.message";
      job.error = std::move(err);
      Finish(job, JobStatus::kFailed, e.at);
      return "";
    }
    case EventType::kCancelled: {
      std::string reason;
      ReadString(d, "reason", &reason);
      job.error = JobError{"cancelled", reason.empty() ? "cancelled" : reason};
      Finish(job, JobStatus::kCancelled, e.at);
      return "";
    }
    case EventType::kLeaseExpired: {
      std::string status;
      if (!ReadString(d, "status", &status)) return "job.lease_expired needs status";
      job.worker.reset();
      if (status == "pending") {
        job.status = JobStatus::kPending;
        job.lease_expires_at.reset();
        return "";
      }
      JobError err;
      if (status != "failed" || !ReadError(d, &err)) {
        return "job.lease_expired needs status pending, or failed with an error";
      }
      job.error = std::move(err);
      Finish(job, JobStatus::kFailed, e.at);
      return "";
    }
    case EventType::kHitlTimedOut: {
      JobError err;
      if (!ReadError(d, &err)) return "job.hitl_timed_out needs an error";
      job.error = std::move(err);
      Finish(job, JobStatus::kFailed, e.at);
      return "";
    }
    case EventType::kExpired:
      return "";  // the projection drops the job; the state itself does not change
  }
  return "unknown event type";
}

// Every applied event makes the job's next version.
void StampVersion(Job& job, const Event& e) {
  job.version = e.version;
  job.updated_at = e.at;
  job.last_seq = e.seq;
}

}  // namespace

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
  std::string error = ApplyChange(job, e);
  if (!error.empty()) return Broken(e, error);
  StampVersion(job, e);
  return Status::Ok();
}

Status ApplyInPlace(std::optional<Job>& job, const Event& e) {
  if (job) return ApplyInPlace(*job, e);
  if (e.version != 1) return Broken(e, "expected version 1");
  if (e.type != EventType::kCreated) return Broken(e, "no job.created before it");
  JOBSTORE_ASSIGN_OR_RETURN(auto created, ApplyCreated(e));
  job = std::move(created);
  StampCreated(*job, e.seq, e.at);
  return Status::Ok();
}

StatusOr<Job> Apply(const Job* job, const Event& e) {
  std::optional<Job> next;
  if (job) next = *job;
  JOBSTORE_RETURN_IF_ERROR(ApplyInPlace(next, e));
  return std::move(*next);
}

}  // namespace jobstore
