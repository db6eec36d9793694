// JobJsonText: a job's API JSON written straight from the Job.
//
// Building JobToJson's object (a std::map node and a copy of each field) and then dumping it was
// 17 % of the server's CPU in the worker workload, where every answer carries the claimed jobs
// (bench/RESULTS.md, "a job's JSON written straight"). This writer gives the same bytes: the keys
// in the order std::map keeps them (sorted), numbers as nlohmann prints integers, strings copied
// as they are when nothing in them needs escaping, and everything else (escaped or invalid UTF-8
// text, the free-form JSON fields, the rare hitl and retry objects) through nlohmann's own
// serializer. Tests and the mutation fuzzer compare it with JobToJson(job).dump().
#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "jobstore/core/json_codec.h"
#include "jobstore/core/time_format.h"

namespace jobstore {
namespace {

void AppendDump(std::string* out, const Json& value) {
  out->append(value.dump(-1, ' ', false, Json::error_handler_t::replace));
}

// Text nlohmann prints unchanged between quotes: no quote, backslash or control character, and
// ASCII only (so nothing for its UTF-8 check to replace).
bool PrintsAsIs(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') return false;
  }
  return true;
}

class ObjectWriter {
 public:
  explicit ObjectWriter(std::string* out) : out_(out) { out_->push_back('{'); }
  void Close() { out_->push_back('}'); }

  // `key` is a literal of the API (plain ASCII), given in sorted order by the caller.
  ObjectWriter& Key(std::string_view key) {
    if (!first_) out_->push_back(',');
    first_ = false;
    out_->push_back('"');
    out_->append(key);
    out_->append("\":");
    return *this;
  }
  void String(std::string_view s) { AppendJsonString(out_, s); }
  template <typename Integer>
  void Number(Integer n) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
    out_->append(buf, end);
  }
  void Time(TimeMs t) {
    out_->push_back('"');
    AppendRfc3339(out_, t);
    out_->push_back('"');
  }
  void TimeOrNull(const std::optional<TimeMs>& t) { t ? Time(*t) : Null(); }
  void Value(const Json& value) {
    if (value.is_null()) return Null();
    if (value.is_object() && value.empty()) {
      out_->append("{}");
      return;
    }
    AppendDump(out_, value);
  }
  void Null() { out_->append("null"); }

 private:
  std::string* out_;
  bool first_ = true;
};

void WriteError(std::string* out, const JobError& error) {
  ObjectWriter o(out);
  o.Key("code").String(error.code);
  o.Key("message").String(error.message);
  o.Close();
}

void WriteAttemptErrors(std::string* out, const std::vector<AttemptError>& errors) {
  out->push_back('[');
  for (std::size_t i = 0; i < errors.size(); ++i) {
    if (i) out->push_back(',');
    ObjectWriter o(out);
    o.Key("at").Time(errors[i].at);
    o.Key("attempt").Number(errors[i].attempt);
    o.Key("code").String(errors[i].code);
    o.Key("message").String(errors[i].message);
    o.Close();
  }
  out->push_back(']');
}

std::string Render(const Job& job) {
  std::string out;
  out.reserve(640);
  ObjectWriter o(&out);
  o.Key("attempt").Number(job.attempt);
  o.Key("created_at").Time(job.created_at);
  o.Key("data").Value(job.data);
  o.Key("description").String(job.description);
  o.Key("error");
  job.error ? WriteError(&out, *job.error) : o.Null();
  o.Key("errors");
  WriteAttemptErrors(&out, job.errors);
  o.Key("finished_at").TimeOrNull(job.finished_at);
  o.Key("hitl");
  job.hitl ? AppendDump(&out, HitlToJson(*job.hitl)) : o.Null();
  o.Key("input").Value(job.input);
  o.Key("job_id").String(job.job_id);
  o.Key("labels").Value(job.labels);
  o.Key("lease_expires_at").TimeOrNull(job.lease_expires_at);
  o.Key("max_attempts").Number(job.max_attempts);
  o.Key("priority").Number(job.priority);
  o.Key("progress").Value(job.progress);
  o.Key("result").Value(job.result);
  o.Key("retry");
  job.retry ? AppendDump(&out, RetryToJson(job)) : o.Null();
  o.Key("run_at").TimeOrNull(job.run_at);
  o.Key("started_at").TimeOrNull(job.started_at);
  o.Key("status").String(JobStatusName(job.status));
  o.Key("ttl_seconds").Number(job.ttl_seconds);
  o.Key("type").String(job.type);
  o.Key("updated_at").Time(job.updated_at);
  o.Key("user_id").String(job.user_id);
  o.Key("version").Number(job.version);
  o.Key("worker");
  job.worker ? o.String(*job.worker) : o.Null();
  o.Close();
  return out;
}

}  // namespace

void AppendJsonString(std::string* out, std::string_view s) {
  if (!PrintsAsIs(s)) return AppendDump(out, Json(std::string(s)));
  out->push_back('"');
  out->append(s);
  out->push_back('"');
}

const std::string& JobJsonText(const Job& job) {
  return job.api_json.Get([&] { return Render(job); });
}

}  // namespace jobstore
