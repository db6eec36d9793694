#include "jobstore/core/json_codec.h"

#include "jobstore/core/time_format.h"

namespace jobstore {
namespace {

Json TimeOrNull(const std::optional<TimeMs>& t) { return t ? Json(FormatRfc3339(*t)) : Json(); }
template <typename T>
Json OrNull(const std::optional<T>& v) {
  return v ? Json(*v) : Json();
}

Json ErrorsToJson(const std::vector<AttemptError>& errors) {
  Json list = Json::array();
  for (const AttemptError& e : errors) {
    list.push_back({{"attempt", e.attempt},
                    {"code", e.code},
                    {"message", e.message},
                    {"at", FormatRfc3339(e.at)}});
  }
  return list;
}

}  // namespace

Json HitlToJson(const HitlRequest& h) {
  return {{"request_id", h.request_id},
          {"type", h.type},
          {"prompt", h.prompt},
          {"requested_at", FormatRfc3339(h.requested_at)},
          {"expires_at", TimeOrNull(h.expires_at)},
          {"response", h.response},
          {"responded_at", TimeOrNull(h.responded_at)},
          {"responded_by", OrNull(h.responded_by)},
          {"key", OrNull(h.key)}};
}

Json RetryToJson(const Job& job) {
  if (!job.retry) return Json();
  const RetryPolicy& p = *job.retry;
  return {{"max_attempts", job.max_attempts},
          {"backoff", p.backoff == RetryPolicy::Backoff::kFixed ? "fixed" : "exponential"},
          {"initial_seconds", static_cast<double>(p.initial_ms) / kMsPerSecond},
          {"max_seconds", static_cast<double>(p.max_ms) / kMsPerSecond},
          {"jitter", p.jitter}};
}

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
            {"ttl_seconds", job.ttl_seconds},
            {"priority", job.priority},
            {"run_at", TimeOrNull(job.run_at)},
            {"retry", RetryToJson(job)},
            {"errors", ErrorsToJson(job.errors)}};
  return j;
}

Json ScheduleToJson(const Schedule& s, std::optional<TimeMs> next_run_at) {
  return {{"schedule_id", s.schedule_id},
          {"cron", s.cron},
          {"timezone", s.time_zone},
          {"job", s.job},
          {"paused", s.paused},
          {"version", s.version},
          {"created_at", FormatRfc3339(s.created_at)},
          {"updated_at", FormatRfc3339(s.updated_at)},
          {"last_run_at", TimeOrNull(s.last_occurrence)},
          {"last_job_id", OrNull(s.last_job_id)},
          {"next_run_at", TimeOrNull(next_run_at)}};
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
  JOBSTORE_ASSIGN_OR_RETURN(auto parsed_at, ParseRfc3339(at->get<std::string>()));
  Event e;
  e.seq = seq->get<std::uint64_t>();
  e.job_id = job_id->get<std::string>();
  e.version = version->get<std::uint64_t>();
  e.type = *parsed_type;
  e.at = parsed_at;
  auto data = j.find("data");
  e.data = data != j.end() ? *data : Json::object();
  return e;
}

}  // namespace jobstore
