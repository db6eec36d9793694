#include "jobstore/http/request_parsing.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <set>
#include <sstream>

#include "jobstore/core/split.h"
#include "jobstore/core/time_format.h"

namespace jobstore::http {
namespace {

// Reads typed fields of one JSON object, naming the field in every error, and rejects fields
// the route does not know (a typo such as "lease_second" must not pass silently).
class Fields {
 public:
  // `known` are string literals (views of them outlive every Fields), at most kMaxKnown; they are
  // kept in place, not in a set: a parse of each job of a batch built one set of 12 strings.
  Fields(const Json& body, std::initializer_list<const char*> known) : body_(body) {
    if (known.size() > kMaxKnown) std::abort();  // a programming error, found by any test
    for (const char* k : known) known_[known_count_++] = k;
  }

  Status CheckUnknown() const {
    const auto known_end = known_.begin() + known_count_;
    for (const auto& [key, value] : body_.items()) {
      if (std::find(known_.begin(), known_end, std::string_view(key)) == known_end) {
        return InvalidArgument("unknown field '" + key.substr(0, 64) + "'");
      }
    }
    return Status::Ok();
  }

  const Json* Get(const char* key) const {
    auto it = body_.find(key);
    return it == body_.end() || it->is_null() ? nullptr : &*it;
  }
  bool Has(const char* key) const { return body_.contains(key); }

  Status String(const char* key, std::size_t max_bytes, bool allow_empty,
                std::optional<std::string>* out) const {
    const Json* v = Get(key);
    if (!v) return Status::Ok();
    if (!v->is_string()) return InvalidArgument(std::string(key) + " must be a string");
    const auto& s = v->get_ref<const std::string&>();
    if (s.size() > max_bytes) {
      return InvalidArgument(std::string(key) + " must be at most " + std::to_string(max_bytes) +
                             " bytes");
    }
    if (!allow_empty && s.empty()) return InvalidArgument(std::string(key) + " must not be empty");
    *out = s;
    return Status::Ok();
  }

  Status Int(const char* key, std::int64_t min, std::int64_t max,
             std::optional<std::int64_t>* out) const {
    const Json* v = Get(key);
    if (!v) return Status::Ok();
    bool integral = v->is_number_integer() ||
                    (v->is_number_float() && std::trunc(v->get<double>()) == v->get<double>() &&
                     std::abs(v->get<double>()) < 9e15);
    if (!integral) return InvalidArgument(std::string(key) + " must be a whole number");
    if (v->is_number_unsigned() && v->get<std::uint64_t>() > static_cast<std::uint64_t>(max)) {
      return OutOfRange(key, min, max);
    }
    std::int64_t n = v->is_number_float() ? static_cast<std::int64_t>(v->get<double>())
                                          : v->get<std::int64_t>();
    if (n < min || n > max) return OutOfRange(key, min, max);
    *out = n;
    return Status::Ok();
  }

  Status Number(const char* key, double min, double max, std::optional<double>* out) const {
    const Json* v = Get(key);
    if (!v) return Status::Ok();
    if (!v->is_number()) return InvalidArgument(std::string(key) + " must be a number");
    const double n = v->get<double>();
    if (!(n >= min && n <= max)) {  // NaN fails too
      std::ostringstream range;
      range << key << " must be from " << min << " to " << max;
      return InvalidArgument(range.str());
    }
    *out = n;
    return Status::Ok();
  }

  Status Bool(const char* key, std::optional<bool>* out) const {
    const Json* v = Get(key);
    if (!v) return Status::Ok();
    if (!v->is_boolean()) return InvalidArgument(std::string(key) + " must be true or false");
    *out = v->get<bool>();
    return Status::Ok();
  }

  Status Object(const char* key, std::optional<Json>* out) const {
    const Json* v = Get(key);
    if (!v) return Status::Ok();
    if (!v->is_object()) return InvalidArgument(std::string(key) + " must be an object");
    *out = *v;
    return Status::Ok();
  }

 private:
  static Status OutOfRange(const char* key, std::int64_t min, std::int64_t max) {
    return InvalidArgument(std::string(key) + " must be from " + std::to_string(min) + " to " +
                           std::to_string(max));
  }

  static constexpr std::size_t kMaxKnown = 16;
  const Json& body_;
  std::array<std::string_view, kMaxKnown> known_;
  std::size_t known_count_ = 0;
};

// The shape of JSON text, counted without building it (strings are skipped): the deepest
// nesting, the objects and arrays, and the values (every ',' or ':' separates one more, and
// each container is one too).
struct TextShape {
  std::size_t depth = 0, containers = 0, values = 1;
};

TextShape ShapeOf(std::string_view text) {
  TextShape shape;
  std::size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      shape.depth = std::max(shape.depth, ++depth);
      ++shape.containers;
      ++shape.values;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    } else if (c == ',' || c == ':') {
      ++shape.values;
    }
  }
  return shape;
}

const std::string* FirstParam(const QueryParams& q, const char* name) {
  auto it = q.find(name);
  return it == q.end() ? nullptr : &it->second;
}

bool ParseUint(std::string_view s, std::uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

Status CheckJsonDepth(const Json& value, const char* key, const Limits& limits) {
  if (JsonDepth(value) > limits.max_json_depth) {
    return InvalidArgument(std::string(key) + " is nested deeper than " +
                           std::to_string(limits.max_json_depth) + " levels");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<Json> ParseJsonBody(std::string_view body, bool empty_ok, const Limits& limits) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    if (empty_ok) return Json::object();
    return InvalidArgument("the request needs a JSON object body");
  }
  // Checked before anything is built. +1: the body object itself is one level.
  const TextShape shape = ShapeOf(body);
  if (shape.depth > limits.max_json_depth + 1) {
    return InvalidArgument("the body is nested deeper than " +
                           std::to_string(limits.max_json_depth) + " levels");
  }
  if (shape.containers > limits.max_json_containers) {
    return InvalidArgument("the body holds more than " +
                           std::to_string(limits.max_json_containers) + " objects and arrays");
  }
  if (shape.values > limits.max_json_values) {
    return InvalidArgument("the body holds more than " + std::to_string(limits.max_json_values) +
                           " values");
  }
  Json parsed;
  try {
    parsed = Json::parse(body.begin(), body.end());
  } catch (const Json::exception& e) {
    // parse_error, and out_of_range for a number beyond double's range (1e900).
    return InvalidArgument(std::string("malformed JSON: ") + e.what());
  }
  if (!parsed.is_object()) return InvalidArgument("the body must be a JSON object");
  return parsed;
}

// The retry policy of a create: {max_attempts, backoff, initial_seconds, max_seconds, jitter},
// each optional (defaults in RetryPolicy). Its max_attempts is the job's.
Status ParseRetry(const Json& retry, const Limits& l, CreateJob* c) {
  if (!retry.is_object()) return InvalidArgument("retry must be an object");
  Fields f(retry, {"max_attempts", "backoff", "initial_seconds", "max_seconds", "jitter"});
  JOBSTORE_RETURN_IF_ERROR(f.CheckUnknown());
  RetryPolicy p;
  std::optional<std::int64_t> attempts;
  JOBSTORE_RETURN_IF_ERROR(f.Int("max_attempts", 1, l.max_attempts, &attempts));
  if (attempts) c->max_attempts = static_cast<std::uint32_t>(*attempts);
  std::optional<std::string> backoff;
  JOBSTORE_RETURN_IF_ERROR(f.String("backoff", 16, false, &backoff));
  if (backoff && *backoff != "exponential" && *backoff != "fixed") {
    return InvalidArgument("retry.backoff must be \"exponential\" or \"fixed\"");
  }
  if (backoff == "fixed") p.backoff = RetryPolicy::Backoff::kFixed;
  const auto max_seconds = static_cast<double>(l.max_backoff_seconds);
  std::optional<double> initial, max, jitter;
  JOBSTORE_RETURN_IF_ERROR(f.Number("initial_seconds", 0, max_seconds, &initial));
  JOBSTORE_RETURN_IF_ERROR(f.Number("max_seconds", 0, max_seconds, &max));
  JOBSTORE_RETURN_IF_ERROR(f.Number("jitter", 0, 1, &jitter));
  if (initial) p.initial_ms = std::llround(*initial * kMsPerSecond);
  if (max) p.max_ms = std::llround(*max * kMsPerSecond);
  if (!max && p.max_ms < p.initial_ms) p.max_ms = p.initial_ms;
  if (p.max_ms < p.initial_ms) {
    return InvalidArgument("retry.max_seconds must be at least retry.initial_seconds");
  }
  if (jitter) p.jitter = static_cast<double>(std::llround(*jitter * 1e6)) / 1e6;  // as stored
  c->retry = p;
  return Status::Ok();
}

StatusOr<CreateJob> ParseCreate(const Json& body, const std::string& generated_id,
                                const ParseLimits& limits, TimeMs now) {
  const Limits& l = limits.fields;
  Fields f(body, {"job_id", "type", "description", "input", "labels", "user_id", "ttl_seconds",
                  "max_attempts", "priority", "run_at", "delay_seconds", "retry"});
  JOBSTORE_RETURN_IF_ERROR(f.CheckUnknown());
  CreateJob c;
  std::optional<std::string> s;
  JOBSTORE_RETURN_IF_ERROR(f.String("job_id", 128, false, &s));
  if (s) {
    JOBSTORE_RETURN_IF_ERROR(ValidateJobId(*s));
    c.job_id = *s;
  } else {
    c.job_id = generated_id;
  }
  s.reset();
  JOBSTORE_RETURN_IF_ERROR(f.String("type", l.max_short_string_bytes, false, &s));
  if (s) c.type = *s;
  s.reset();
  JOBSTORE_RETURN_IF_ERROR(f.String("user_id", l.max_short_string_bytes, false, &s));
  if (s) c.user_id = *s;
  s.reset();
  JOBSTORE_RETURN_IF_ERROR(f.String("description", l.max_text_bytes, true, &s));
  if (s) c.description = *s;
  if (const Json* input = f.Get("input")) {
    JOBSTORE_RETURN_IF_ERROR(CheckJsonDepth(*input, "input", l));
    c.input = *input;
  }
  std::optional<Json> labels;
  JOBSTORE_RETURN_IF_ERROR(f.Object("labels", &labels));
  if (labels) {
    JOBSTORE_RETURN_IF_ERROR(ValidateLabels(*labels, l, false));
    c.labels = *labels;
  }
  std::optional<std::int64_t> n;
  JOBSTORE_RETURN_IF_ERROR(f.Int("ttl_seconds", 0, l.max_ttl_seconds, &n));
  c.ttl_seconds = n.value_or(limits.default_ttl_seconds);
  n.reset();
  JOBSTORE_RETURN_IF_ERROR(f.Int("max_attempts", 1, l.max_attempts, &n));
  if (n) c.max_attempts = static_cast<std::uint32_t>(*n);
  if (const Json* retry = f.Get("retry")) {
    const std::uint32_t top_level = c.max_attempts;
    JOBSTORE_RETURN_IF_ERROR(ParseRetry(*retry, l, &c));
    if (n && retry->contains("max_attempts") && top_level != c.max_attempts) {
      return InvalidArgument("max_attempts and retry.max_attempts differ; give one");
    }
  }
  n.reset();
  JOBSTORE_RETURN_IF_ERROR(f.Int("priority", kMinPriority, kMaxPriority, &n));
  if (n) c.priority = static_cast<std::int32_t>(*n);
  // When it may first run: a time, or a delay from now. A time not after now is no delay.
  std::optional<std::string> run_at;
  JOBSTORE_RETURN_IF_ERROR(f.String("run_at", 64, false, &run_at));
  std::optional<double> delay;
  JOBSTORE_RETURN_IF_ERROR(
      f.Number("delay_seconds", 0, static_cast<double>(l.max_delay_seconds), &delay));
  if (run_at && delay) return InvalidArgument("give run_at or delay_seconds, not both");
  std::optional<TimeMs> due;
  if (run_at) {
    auto at = ParseRfc3339(*run_at);
    if (!at.ok()) return InvalidArgument("run_at: " + at.status().message());
    if (*at > now + l.max_delay_seconds * kMsPerSecond) {
      return InvalidArgument("run_at is more than " + std::to_string(l.max_delay_seconds) +
                             " seconds ahead");
    }
    due = *at;
  }
  if (delay) due = now + std::llround(*delay * kMsPerSecond);
  if (due && *due > now) c.run_at = *due;
  return c;
}

StatusOr<UpdateJob> ParseUpdate(const Json& body, const ParseLimits& limits) {
  Fields f(body, {"progress", "data", "labels", "priority"});
  JOBSTORE_RETURN_IF_ERROR(f.CheckUnknown());
  UpdateJob u;
  u.max_labels = limits.fields.max_labels;
  JOBSTORE_RETURN_IF_ERROR(f.Object("progress", &u.progress));
  if (u.progress) {
    JOBSTORE_RETURN_IF_ERROR(ValidateProgress(*u.progress));
    JOBSTORE_RETURN_IF_ERROR(CheckJsonDepth(*u.progress, "progress", limits.fields));
  }
  JOBSTORE_RETURN_IF_ERROR(f.Object("data", &u.data_patch));
  if (u.data_patch) {
    JOBSTORE_RETURN_IF_ERROR(CheckJsonDepth(*u.data_patch, "data", limits.fields));
  }
  JOBSTORE_RETURN_IF_ERROR(f.Object("labels", &u.labels));
  if (u.labels) JOBSTORE_RETURN_IF_ERROR(ValidateLabels(*u.labels, limits.fields, true));
  std::optional<std::int64_t> priority;
  JOBSTORE_RETURN_IF_ERROR(f.Int("priority", kMinPriority, kMaxPriority, &priority));
  if (priority) u.priority = static_cast<std::int32_t>(*priority);
  if (!u.progress && !u.data_patch && !u.labels && !u.priority) {
    return InvalidArgument("a PATCH needs at least one of progress, data, labels, priority");
  }
  return u;
}

StatusOr<StartJob> ParseStart(const Json& body, const ParseLimits& limits) {
  Fields f(body, {"worker", "lease_seconds"});
  JOBSTORE_RETURN_IF_ERROR(f.CheckUnknown());
  StartJob s;
  JOBSTORE_RETURN_IF_ERROR(f.String("worker", limits.fields.max_short_string_bytes, false, &s.worker));
  std::optional<std::int64_t> lease;
  JOBSTORE_RETURN_IF_ERROR(f.Int("lease_seconds", 1, limits.fields.max_lease_seconds, &lease));
  s.lease_seconds = lease.value_or(0);
  return s;
}

StatusOr<Heartbeat> ParseHeartbeat(const Json& body, const ParseLimits& limits) {
  Fields f(body, {"lease_seconds", "progress"});
  JOBSTORE_RETURN_IF_ERROR(f.CheckUnknown());
  Heartbeat h;
  JOBSTORE_RETURN_IF_ERROR(f.Int("lease_seconds", 1, limits.fields.max_lease_seconds, &h.lease_seconds));
  JOBSTORE_RETURN_IF_ERROR(f.Object("progress", &h.progress));
  if (h.progress) {
    JOBSTORE_RETURN_IF_ERROR(ValidateProgress(*h.progress));
    JOBSTORE_RETURN_IF_ERROR(CheckJsonDepth(*h.progress, "progress", limits.fields));
  }
  return h;
}

StatusOr<RequestHitl> ParseRequestHitl(const Json& body, const ParseLimits& limits) {
  Fields f(body, {"type", "prompt", "timeout_seconds", "key"});
  JOBSTORE_RETURN_IF_ERROR(f.CheckUnknown());
  RequestHitl r;
  JOBSTORE_RETURN_IF_ERROR(f.String("key", limits.fields.max_short_string_bytes, false, &r.key));
  std::optional<std::string> type;
  JOBSTORE_RETURN_IF_ERROR(f.String("type", limits.fields.max_short_string_bytes, false, &type));
  if (type) r.type = *type;
  if (const Json* prompt = f.Get("prompt")) {
    JOBSTORE_RETURN_IF_ERROR(CheckJsonDepth(*prompt, "prompt", limits.fields));
    r.prompt = *prompt;
  }
  JOBSTORE_RETURN_IF_ERROR(
      f.Int("timeout_seconds", 1, limits.fields.max_hitl_timeout_seconds, &r.timeout_seconds));
  return r;
}

StatusOr<AnswerHitl> ParseAnswerHitl(const Json& body, const ParseLimits& limits) {
  Fields f(body, {"request_id", "response"});
  JOBSTORE_RETURN_IF_ERROR(f.CheckUnknown());
  AnswerHitl a;
  std::optional<std::string> id;
  JOBSTORE_RETURN_IF_ERROR(f.String("request_id", limits.fields.max_short_string_bytes, false, &id));
  if (!id) return InvalidArgument("request_id is required");
  a.request_id = *id;
  if (!f.Has("response")) return InvalidArgument("response is required");
  a.response = body.at("response");
  JOBSTORE_RETURN_IF_ERROR(CheckJsonDepth(a.response, "response", limits.fields));
  return a;
}

namespace {

// "next": {"worker", "types", "lease_seconds"} on complete and fail: a claim in the same write.
Status ParseNext(const Fields& f, const ParseLimits& limits, std::optional<ClaimRequest>* next) {
  const Json* n = f.Get("next");
  if (!n) return Status::Ok();
  if (!n->is_object()) return InvalidArgument("next must be an object: {\"worker\": ...}");
  auto claim = ParseClaim(*n, limits);
  if (!claim.ok()) return InvalidArgument("next: " + claim.status().message());
  *next = std::move(claim).value();
  return Status::Ok();
}

}  // namespace

StatusOr<CompleteJob> ParseComplete(const Json& body, const ParseLimits& limits) {
  Fields f(body, {"result", "next"});
  JOBSTORE_RETURN_IF_ERROR(f.CheckUnknown());
  CompleteJob c;
  if (const Json* r = f.Get("result")) {
    JOBSTORE_RETURN_IF_ERROR(CheckJsonDepth(*r, "result", limits.fields));
    c.result = *r;
  }
  JOBSTORE_RETURN_IF_ERROR(ParseNext(f, limits, &c.next));
  return c;
}

StatusOr<FailJob> ParseFail(const Json& body, const ParseLimits& limits) {
  Fields f(body, {"error", "retryable", "next"});
  JOBSTORE_RETURN_IF_ERROR(f.CheckUnknown());
  const Json* e = f.Get("error");
  if (!e) return InvalidArgument("error is required: {\"code\": ..., \"message\": ...} or a string");
  FailJob fail;
  JOBSTORE_RETURN_IF_ERROR(ParseNext(f, limits, &fail.next));
  std::optional<bool> retryable;
  JOBSTORE_RETURN_IF_ERROR(f.Bool("retryable", &retryable));
  fail.retryable = retryable.value_or(true);
  const std::size_t max_text = limits.fields.max_text_bytes;
  if (e->is_string()) {
    fail.error = {"error", e->get<std::string>()};
    if (fail.error.message.size() > max_text) return InvalidArgument("error is too long");
    return fail;
  }
  if (!e->is_object()) return InvalidArgument("error must be an object or a string");
  Fields ef(*e, {"code", "message"});
  JOBSTORE_RETURN_IF_ERROR(ef.CheckUnknown());
  std::optional<std::string> code, message;
  JOBSTORE_RETURN_IF_ERROR(ef.String("code", limits.fields.max_short_string_bytes, false, &code));
  JOBSTORE_RETURN_IF_ERROR(ef.String("message", max_text, true, &message));
  fail.error = {code.value_or("error"), message.value_or("")};
  return fail;
}

StatusOr<CancelJob> ParseCancel(const Json& body, const ParseLimits& limits) {
  Fields f(body, {"reason"});
  JOBSTORE_RETURN_IF_ERROR(f.CheckUnknown());
  std::optional<std::string> reason;
  JOBSTORE_RETURN_IF_ERROR(f.String("reason", limits.fields.max_text_bytes, true, &reason));
  return CancelJob{reason.value_or("")};
}

Status ValidateScheduleId(std::string_view id) {
  if (id.size() > 100) return InvalidArgument("schedule_id must be at most 100 bytes");
  Status st = ValidateJobId(id);
  if (!st.ok()) return InvalidArgument("schedule_id: " + st.message());
  return Status::Ok();
}

StatusOr<SetSchedule> ParseSetSchedule(const Json& body, bool create, const ParseLimits& limits,
                                       TimeMs now, std::string* schedule_id) {
  Fields f(body, create ? std::initializer_list<const char*>{"schedule_id", "cron", "timezone",
                                                             "job", "paused"}
                        : std::initializer_list<const char*>{"cron", "timezone", "job", "paused"});
  JOBSTORE_RETURN_IF_ERROR(f.CheckUnknown());
  SetSchedule set;
  set.create = create;
  if (create) {
    std::optional<std::string> id;
    JOBSTORE_RETURN_IF_ERROR(f.String("schedule_id", 128, false, &id));
    if (!id) return InvalidArgument("schedule_id is required");
    JOBSTORE_RETURN_IF_ERROR(ValidateScheduleId(*id));
    *schedule_id = *id;
  }
  JOBSTORE_RETURN_IF_ERROR(f.String("cron", 256, false, &set.cron));
  if (create && !set.cron) return InvalidArgument("cron is required, e.g. \"*/5 * * * *\"");
  JOBSTORE_RETURN_IF_ERROR(f.String("timezone", 64, false, &set.time_zone));
  if (set.time_zone) {
    // An IANA name: it becomes a path under the tz database, so nothing that could leave it.
    const std::string& tz = *set.time_zone;
    const bool plain = std::all_of(tz.begin(), tz.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '-' ||
             c == '+';
    });
    if (!plain || tz.find("..") != std::string::npos || tz.front() == '/') {
      return InvalidArgument("timezone must be an IANA name such as Europe/Berlin, or UTC");
    }
  }
  if (create && !set.time_zone) set.time_zone = "UTC";
  std::optional<bool> paused;
  JOBSTORE_RETURN_IF_ERROR(f.Bool("paused", &paused));
  set.paused = paused;
  std::optional<Json> job;
  JOBSTORE_RETURN_IF_ERROR(f.Object("job", &job));
  if (create && !job) job = Json::object();
  if (job) {
    for (const char* fixed : {"job_id", "run_at", "delay_seconds"}) {
      if (job->contains(fixed)) {
        return InvalidArgument("job." + std::string(fixed) +
                               ": an occurrence's id and time come from the schedule");
      }
    }
    auto create_body = ParseCreate(*job, "template", limits, now);
    if (!create_body.ok()) return InvalidArgument("job: " + create_body.status().message());
    set.job = *job;
  }
  if (!create && !set.cron && !set.time_zone && !set.job && !set.paused) {
    return InvalidArgument("a PATCH needs at least one of cron, timezone, job, paused");
  }
  return set;
}

StatusOr<RetryJob> ParseRetryJob(const Json& body, const ParseLimits&) {
  Fields f(body, {});
  JOBSTORE_RETURN_IF_ERROR(f.CheckUnknown());
  return RetryJob{};
}

StatusOr<ClaimRequest> ParseClaim(const Json& body, const ParseLimits& limits) {
  Fields f(body, {"worker", "types", "lease_seconds", "max_jobs"});
  JOBSTORE_RETURN_IF_ERROR(f.CheckUnknown());
  ClaimRequest c;
  std::optional<std::string> worker;
  JOBSTORE_RETURN_IF_ERROR(f.String("worker", limits.fields.max_short_string_bytes, false, &worker));
  if (!worker) return InvalidArgument("worker is required");
  c.worker = *worker;
  if (const Json* types = f.Get("types")) {
    if (!types->is_array() || types->size() > 100) {
      return InvalidArgument("types must be an array of at most 100 strings");
    }
    for (const Json& t : *types) {
      if (!t.is_string() || t.get_ref<const std::string&>().empty() ||
          t.get_ref<const std::string&>().size() > limits.fields.max_short_string_bytes) {
        return InvalidArgument("types must hold non-empty strings");
      }
      c.types.push_back(t.get<std::string>());
    }
  }
  std::optional<std::int64_t> lease;
  JOBSTORE_RETURN_IF_ERROR(f.Int("lease_seconds", 1, limits.fields.max_lease_seconds, &lease));
  if (lease) c.lease_seconds = *lease;
  std::optional<std::int64_t> max_jobs;
  JOBSTORE_RETURN_IF_ERROR(f.Int("max_jobs", 1, 100, &max_jobs));
  if (max_jobs) c.max_jobs = static_cast<std::size_t>(*max_jobs);
  return c;
}

namespace {

StatusOr<Command> ParseFinishEntry(const Json& entry, const ParseLimits& limits) {
  if (!entry.is_object()) return InvalidArgument("must be an object: {\"job_id\", \"complete\"|\"fail\"}");
  Fields f(entry, {"job_id", "if_match", "complete", "fail"});
  JOBSTORE_RETURN_IF_ERROR(f.CheckUnknown());
  std::optional<std::string> id;
  JOBSTORE_RETURN_IF_ERROR(f.String("job_id", limits.fields.max_short_string_bytes, false, &id));
  if (!id) return InvalidArgument("job_id is required");
  JOBSTORE_RETURN_IF_ERROR(ValidateJobId(*id));
  Command c{*id, {}, {}, CompleteJob{}};
  std::optional<std::int64_t> if_match;
  JOBSTORE_RETURN_IF_ERROR(f.Int("if_match", 1, std::numeric_limits<std::int64_t>::max(), &if_match));
  if (if_match) c.if_match = static_cast<std::uint64_t>(*if_match);
  const Json* complete = f.Get("complete");
  const Json* fail = f.Get("fail");
  if ((complete != nullptr) == (fail != nullptr)) {
    return InvalidArgument("give either complete or fail");
  }
  const Json& how = complete ? *complete : *fail;
  const char* name = complete ? "complete" : "fail";
  if (!how.is_object()) return InvalidArgument(std::string(name) + " must be an object");
  if (how.contains("next")) {
    return InvalidArgument(std::string(name) + ": next belongs to the request, not to a job");
  }
  if (complete) {
    auto parsed = ParseComplete(how, limits);
    if (!parsed.ok()) return InvalidArgument("complete: " + parsed.status().message());
    c.body = std::move(parsed).value();
  } else {
    auto parsed = ParseFail(how, limits);
    if (!parsed.ok()) return InvalidArgument("fail: " + parsed.status().message());
    c.body = std::move(parsed).value();
  }
  return c;
}

}  // namespace

StatusOr<FinishBatch> ParseFinishBatch(const Json& body, const ParseLimits& limits) {
  Fields f(body, {"jobs", "next"});
  JOBSTORE_RETURN_IF_ERROR(f.CheckUnknown());
  const Json* jobs = f.Get("jobs");
  if (!jobs || !jobs->is_array() || jobs->empty() || jobs->size() > limits.max_batch_jobs) {
    return InvalidArgument("jobs must be an array of 1 to " + std::to_string(limits.max_batch_jobs) +
                           " finished jobs");
  }
  FinishBatch batch;
  batch.commands.reserve(jobs->size());
  for (std::size_t i = 0; i < jobs->size(); ++i) {
    auto command = ParseFinishEntry((*jobs)[i], limits);
    if (!command.ok()) {
      return InvalidArgument("jobs[" + std::to_string(i) + "]: " + command.status().message());
    }
    batch.commands.push_back(std::move(command).value());
  }
  if (const Json* next = f.Get("next")) {
    if (!next->is_object()) return InvalidArgument("next must be an object: {\"worker\": ...}");
    auto claim = ParseClaim(*next, limits);
    if (!claim.ok()) return InvalidArgument("next: " + claim.status().message());
    batch.next = std::move(claim).value();
  }
  return batch;
}

StatusOr<std::optional<std::uint64_t>> ParseIfMatch(std::string_view h) {
  auto trimmed = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
  };
  h = trimmed(h);
  if (h == "*") return std::optional<std::uint64_t>();
  if (h.substr(0, 2) == "W/") h.remove_prefix(2);
  if (h.size() >= 2 && h.front() == '"' && h.back() == '"') h = h.substr(1, h.size() - 2);
  std::uint64_t v = 0;
  if (!ParseUint(h, &v)) {
    return InvalidArgument("If-Match must be a job version such as \"6\"");
  }
  return std::optional<std::uint64_t>(v);
}

Status ValidateHeaderToken(std::string_view name, std::string_view value) {
  if (value.empty() || value.size() > 256) {
    return InvalidArgument(std::string(name) + " must be 1 to 256 characters");
  }
  for (char c : value) {
    if (c < 0x21 || c > 0x7e) {
      return InvalidArgument(std::string(name) + " must be printable ASCII without spaces");
    }
  }
  return Status::Ok();
}

StatusOr<std::optional<double>> ParseWait(const QueryParams& q, const ParseLimits& limits) {
  const std::string* w = FirstParam(q, "wait");
  if (!w) return std::optional<double>();
  double v = 0;
  auto [end, ec] = std::from_chars(w->data(), w->data() + w->size(), v);
  if (w->empty() || ec != std::errc() || end != w->data() + w->size() || !std::isfinite(v) ||
      v < 0 || v > limits.max_wait_seconds) {
    return InvalidArgument("wait must be a number of seconds from 0 to " +
                           std::to_string(static_cast<int>(limits.max_wait_seconds)));
  }
  return std::optional<double>(v);
}

StatusOr<std::optional<std::uint64_t>> ParseUintParam(const QueryParams& q, const char* name) {
  const std::string* p = FirstParam(q, name);
  if (!p) return std::optional<std::uint64_t>();
  std::uint64_t v = 0;
  if (!ParseUint(*p, &v)) return InvalidArgument(std::string(name) + " must be a whole number");
  return std::optional<std::uint64_t>(v);
}

StatusOr<ListQuery> ParseListQuery(const QueryParams& q, const ParseLimits& limits) {
  static const std::set<std::string> kKnown = {"status", "type", "user_id", "label", "limit",
                                               "cursor"};
  for (const auto& [k, v] : q) {
    if (!kKnown.count(k) && k != kMinSeqParam) return InvalidArgument("unknown query parameter '" + k.substr(0, 64) + "'");
  }
  ListQuery out;
  if (const std::string* s = FirstParam(q, "status")) {
    for (std::string_view name : SplitComma(*s)) {
      auto status = ParseJobStatus(name);
      if (!status) {
        return InvalidArgument("unknown status '" + std::string(name.substr(0, 64)) +
                               "' (pending, scheduled, running, pending_hitl, completed, failed, cancelled)");
      }
      // Each status once: a repeated one would list its jobs twice.
      if (std::find(out.statuses.begin(), out.statuses.end(), *status) == out.statuses.end()) {
        out.statuses.push_back(*status);
      }
    }
  }
  if (const std::string* t = FirstParam(q, "type")) out.type = *t;
  if (const std::string* u = FirstParam(q, "user_id")) out.user_id = *u;
  auto labels = q.equal_range("label");
  for (auto it = labels.first; it != labels.second; ++it) {
    auto colon = it->second.find(':');
    if (colon == std::string::npos || colon == 0) {
      return InvalidArgument("label must be key:value, not '" + it->second.substr(0, 64) + "'");
    }
    out.labels.emplace_back(it->second.substr(0, colon), it->second.substr(colon + 1));
  }
  JOBSTORE_ASSIGN_OR_RETURN(auto limit, ParseUintParam(q, "limit"));
  if (limit && (*limit < 1 || *limit > limits.max_list_limit)) {
    return InvalidArgument("limit must be from 1 to " + std::to_string(limits.max_list_limit));
  }
  out.limit = limit.value_or(kDefaultListLimit);
  if (const std::string* c = FirstParam(q, "cursor")) {
    JOBSTORE_ASSIGN_OR_RETURN(auto before, DecodeCursor(*c));
    out.before = before;
  }
  return out;
}

std::string EncodeCursor(std::uint64_t before) { return "c" + std::to_string(before); }

StatusOr<std::uint64_t> DecodeCursor(std::string_view cursor) {
  std::uint64_t v = 0;
  if (cursor.size() < 2 || cursor[0] != 'c' || !ParseUint(cursor.substr(1), &v)) {
    return InvalidArgument("cursor is not one this server handed out");
  }
  return v;
}

}  // namespace jobstore::http
