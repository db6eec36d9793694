#include "jobstore/core/json_codec.h"

#include "jobstore/core/time_format.h"

namespace jobstore {
namespace {

Json TimeOrNull(const std::optional<TimeMs>& t) { return t ? Json(FormatRfc3339(*t)) : Json(); }
template <typename T>
Json OrNull(const std::optional<T>& v) {
  return v ? Json(*v) : Json();
}

Json HitlToJson(const HitlRequest& h) {
  return {{"request_id", h.request_id},
          {"type", h.type},
          {"prompt", h.prompt},
          {"requested_at", FormatRfc3339(h.requested_at)},
          {"expires_at", TimeOrNull(h.expires_at)},
          {"response", h.response},
          {"responded_at", TimeOrNull(h.responded_at)},
          {"responded_by", OrNull(h.responded_by)}};
}

}  // namespace

Json JobToJson(const Job& job) {
  Json j = {{"job_id", job.job_id},
            {"type", job.type},
            {"status", JobStatusName(job.status)},
            {"user_id", job.user_id},
            {"description", job.description},
            {"input", job.input},
            {"data", job.data},
            {"labels", job.labels},
            {"progress", job.progress},
            {"hitl", job.hitl ? HitlToJson(*job.hitl) : Json()},
            {"result", job.result},
            {"error", job.error ? Json{{"code", job.error->code}, {"message", job.error->message}}
                                : Json()},
            {"worker", OrNull(job.worker)},
            {"lease_expires_at", TimeOrNull(job.lease_expires_at)},
            {"attempt", job.attempt},
            {"max_attempts", job.max_attempts},
            {"version", job.version},
            {"created_at", FormatRfc3339(job.created_at)},
            {"updated_at", FormatRfc3339(job.updated_at)},
            {"started_at", TimeOrNull(job.started_at)},
            {"finished_at", TimeOrNull(job.finished_at)},
            {"ttl_seconds", job.ttl_seconds}};
  return j;
}

const std::string& JobJsonText(const Job& job) {
  return job.api_json.Get(
      [&] { return JobToJson(job).dump(-1, ' ', false, Json::error_handler_t::replace); });
}

Json EventToJson(const Event& e) {
  return {{"seq", e.seq},
          {"job_id", e.job_id},
          {"version", e.version},
          {"type", EventTypeName(e.type)},
          {"at", FormatRfc3339(e.at)},
          {"data", e.data}};
}

StatusOr<Event> EventFromJson(const Json& j) {
  if (!j.is_object()) return InvalidArgument("an event must be a JSON object");
  auto str = [&](const char* k) -> const Json* {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? &*it : nullptr;
  };
  auto uint = [&](const char* k) -> const Json* {
    auto it = j.find(k);
    return it != j.end() && it->is_number_unsigned() ? &*it : nullptr;
  };
  const Json *seq = uint("seq"), *version = uint("version"), *job_id = str("job_id"),
             *type = str("type"), *at = str("at");
  if (!seq || !version || !job_id || !type || !at) {
    return InvalidArgument("an event needs seq, job_id, version, type and at");
  }
  auto parsed_type = ParseEventType(type->get<std::string>());
  if (!parsed_type) return InvalidArgument("unknown event type '" + type->get<std::string>() + "'");
  auto parsed_at = ParseRfc3339(at->get<std::string>());
  if (!parsed_at.ok()) return parsed_at.status();
  Event e;
  e.seq = seq->get<std::uint64_t>();
  e.job_id = job_id->get<std::string>();
  e.version = version->get<std::uint64_t>();
  e.type = *parsed_type;
  e.at = *parsed_at;
  auto data = j.find("data");
  e.data = data != j.end() ? *data : Json::object();
  return e;
}

namespace {

template <typename T>
void ReadOpt(const Json& j, const char* key, std::optional<T>* out) {
  const Json& v = j.at(key);
  if (v.is_null()) {
    out->reset();
  } else {
    *out = v.get<T>();
  }
}

}  // namespace

Json JobToStateJson(const Job& job) {
  Json hitl;
  if (job.hitl) {
    const HitlRequest& h = *job.hitl;
    hitl = {{"request_id", h.request_id}, {"type", h.type}, {"prompt", h.prompt},
            {"requested_at", h.requested_at}, {"expires_at", OrNull(h.expires_at)},
            {"response", h.response}, {"responded_at", OrNull(h.responded_at)},
            {"responded_by", OrNull(h.responded_by)}};
  }
  return {{"job_id", job.job_id}, {"type", job.type}, {"status", static_cast<int>(job.status)},
          {"user_id", job.user_id}, {"description", job.description}, {"input", job.input},
          {"data", job.data}, {"labels", job.labels}, {"progress", job.progress},
          {"hitl", hitl}, {"hitl_rounds", job.hitl_rounds}, {"result", job.result},
          {"error", job.error ? Json{job.error->code, job.error->message} : Json()},
          {"worker", OrNull(job.worker)}, {"lease_expires_at", OrNull(job.lease_expires_at)},
          {"lease_seconds", job.lease_seconds}, {"attempt", job.attempt},
          {"max_attempts", job.max_attempts}, {"version", job.version},
          {"created_at", job.created_at}, {"updated_at", job.updated_at},
          {"started_at", OrNull(job.started_at)}, {"finished_at", OrNull(job.finished_at)},
          {"ttl_seconds", job.ttl_seconds}, {"idempotency_key", OrNull(job.idempotency_key)},
          {"created_seq", job.created_seq}, {"last_seq", job.last_seq}};
}

StatusOr<Job> JobFromStateJson(const Json& j) {
  try {
    Job job;
    job.job_id = j.at("job_id").get<std::string>();
    job.type = j.at("type").get<std::string>();
    int status = j.at("status").get<int>();
    if (status < 0 || status >= kJobStatusCount) return InvalidArgument("bad status");
    job.status = static_cast<JobStatus>(status);
    job.user_id = j.at("user_id").get<std::string>();
    job.description = j.at("description").get<std::string>();
    job.input = j.at("input");
    job.data = j.at("data");
    job.labels = j.at("labels");
    job.progress = j.at("progress");
    if (const Json& h = j.at("hitl"); !h.is_null()) {
      HitlRequest r;
      r.request_id = h.at("request_id").get<std::string>();
      r.type = h.at("type").get<std::string>();
      r.prompt = h.at("prompt");
      r.requested_at = h.at("requested_at").get<TimeMs>();
      ReadOpt(h, "expires_at", &r.expires_at);
      r.response = h.at("response");
      ReadOpt(h, "responded_at", &r.responded_at);
      ReadOpt(h, "responded_by", &r.responded_by);
      job.hitl = std::move(r);
    }
    job.hitl_rounds = j.at("hitl_rounds").get<std::uint32_t>();
    job.result = j.at("result");
    if (const Json& e = j.at("error"); !e.is_null()) {
      job.error = JobError{e.at(0).get<std::string>(), e.at(1).get<std::string>()};
    }
    ReadOpt(j, "worker", &job.worker);
    ReadOpt(j, "lease_expires_at", &job.lease_expires_at);
    job.lease_seconds = j.at("lease_seconds").get<std::int64_t>();
    job.attempt = j.at("attempt").get<std::uint32_t>();
    job.max_attempts = j.at("max_attempts").get<std::uint32_t>();
    job.version = j.at("version").get<std::uint64_t>();
    job.created_at = j.at("created_at").get<TimeMs>();
    job.updated_at = j.at("updated_at").get<TimeMs>();
    ReadOpt(j, "started_at", &job.started_at);
    ReadOpt(j, "finished_at", &job.finished_at);
    job.ttl_seconds = j.at("ttl_seconds").get<std::int64_t>();
    ReadOpt(j, "idempotency_key", &job.idempotency_key);
    job.created_seq = j.at("created_seq").get<std::uint64_t>();
    job.last_seq = j.at("last_seq").get<std::uint64_t>();
    return job;
  } catch (const Json::exception& e) {
    return InvalidArgument(std::string("not a job state: ") + e.what());
  }
}

}  // namespace jobstore
