// The /api/v1/jobs routes: create, batch, get (long-poll), list, patch, the status moves, claim,
// HITL, and one job's history.
#include <cstdint>
#include <cstring>
#include <optional>

#include <openssl/rand.h>

#include <boost/uuid/uuid.hpp>
#include <boost/uuid/uuid_generators.hpp>
#include <boost/uuid/uuid_io.hpp>

#include "jobstore/core/json_codec.h"
#include "jobstore/store/job_store.h"
#include "server_context.h"
#include "sha256_digest.h"
#include "thread_cache.h"
#include "woken_answer_gate.h"
#include "write_forwarding.h"

namespace jobstore::http {
namespace {

constexpr char kJobPath[] = R"(/api/v1/jobs/([^/]+))";

// A random (version 4) UUID. Its bytes come from OpenSSL's DRBG (seeded from the kernel),
// drawn 4 KiB at a time into a buffer per thread: Boost's generator made a getrandom system call
// for each id, and RAND_bytes a getpid one (its fork check); together 2-4 % of a bulk create's
// server CPU. Should the DRBG fail, Boost's generator takes over.
std::string NewJobId() {
  struct RandomBytes {
    unsigned char bytes[4096];
    std::size_t used = sizeof(bytes);
  };
  thread_local RandomBytes pool;
  boost::uuids::uuid id;
  if (pool.used + id.size() > sizeof(pool.bytes)) {
    if (RAND_bytes(pool.bytes, sizeof(pool.bytes)) != 1) {
      thread_local boost::uuids::random_generator generate;
      return boost::uuids::to_string(generate());
    }
    pool.used = 0;
  }
  std::memcpy(id.data, pool.bytes + pool.used, id.size());
  pool.used += id.size();
  id.data[6] = static_cast<std::uint8_t>((id.data[6] & 0x0F) | 0x40);  // version 4
  id.data[8] = static_cast<std::uint8_t>((id.data[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return boost::uuids::to_string(id);
}

// What an Idempotency-Key is bound to: the create's body, as parsed (so spacing and key order
// do not count), digested. 128 bits of SHA-256 in hex.
std::string Fingerprint(const Json& body) {
  const std::string canonical = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return Sha256Hex(canonical, 16);
}

// X-Jobstore-Request-Id: the id another instance gave a write it forwarded (write_forwarding.h).
StatusOr<std::optional<std::string>> ForwardId(const httplib::Request& req) {
  auto id = Header(req, kRequestIdHeader);
  if (!id) return std::optional<std::string>();
  JOBSTORE_RETURN_IF_ERROR(ValidateHeaderToken(kRequestIdHeader, *id));
  return id;
}

// If-Match, X-User-Id and X-Jobstore-Request-Id, common to every mutation.
Status ReadCommandHeaders(const httplib::Request& req, Command& c) {
  JOBSTORE_ASSIGN_OR_RETURN(c.forward_id, ForwardId(req));
  if (auto h = Header(req, "If-Match")) {
    JOBSTORE_ASSIGN_OR_RETURN(auto v, ParseIfMatch(*h));
    c.if_match = v;
  }
  if (auto user = Header(req, "X-User-Id")) {
    JOBSTORE_RETURN_IF_ERROR(ValidateHeaderToken("X-User-Id", *user));
    c.caller = *user;
  }
  return Status::Ok();
}

// Prefer: return=minimal (RFC 7240): the answer carries no job body (204 with the ETag, or for a
// create {"job_id", "version"}).
bool PrefersMinimal(const httplib::Request& req) {
  auto prefer = Header(req, "Prefer");
  return prefer && prefer->find("return=minimal") != std::string::npos;
}

// A complete or fail that also claims the next job (one request per job for workers).
bool WantsNext(const CommandBody& body) {
  if (const auto* c = std::get_if<CompleteJob>(&body)) return c->next.has_value();
  if (const auto* f = std::get_if<FailJob>(&body)) return f->next.has_value();
  return false;
}

// {"job": <the finished job>, "next": <the claimed job> | null}, from the jobs' rendered text.
void WriteJobAndNext(httplib::Response& res, const Job& job, const Job* next) {
  std::string body = "{\"job\":" + JobJsonText(job) + ",\"next\":";
  body += next ? JobJsonText(*next) : "null";
  body += "}";
  res.set_header("ETag", "\"" + std::to_string(job.version) + "\"");
  res.status = 200;
  res.set_content(body, "application/json; charset=utf-8");
}

// Builds a mutation route: parse the body with `parse`, submit, answer 200 with the job.
template <typename Parse>
Handler Mutation(ServerContext& ctx, Parse parse, bool empty_body_ok = true) {
  return [&ctx, parse, empty_body_ok](JobStore& store, const httplib::Request& req,
                                      httplib::Response& res) -> Status {
    JOBSTORE_ASSIGN_OR_RETURN(auto id, PathJobId(req));
    JOBSTORE_ASSIGN_OR_RETURN(auto body, RequestBody(req, empty_body_ok, ctx.options));
    JOBSTORE_ASSIGN_OR_RETURN(auto parsed, parse(body, ctx.options.limits));
    Command c{id, {}, {}, std::move(parsed)};
    JOBSTORE_RETURN_IF_ERROR(ReadCommandHeaders(req, c));
    if (auto* answer = std::get_if<AnswerHitl>(&c.body)) answer->responded_by = c.caller;
    const bool with_next = WantsNext(c.body);
    JOBSTORE_ASSIGN_OR_RETURN(auto out, store.Submit(std::move(c)));
    if (with_next) {
      WriteJobAndNext(res, *out.job, out.next.get());  // the next job is the point: full
    } else if (PrefersMinimal(req)) {
      res.set_header("ETag", "\"" + std::to_string(out.job->version) + "\"");
      res.status = 204;
    } else {
      WriteJob(res, 200, *out.job);
    }
    return Status::Ok();
  };
}

Status Create(ServerContext& ctx, JobStore& store, const httplib::Request& req,
              httplib::Response& res) {
  JOBSTORE_ASSIGN_OR_RETURN(auto body, RequestBody(req, /*empty_ok=*/true, ctx.options));
  JOBSTORE_ASSIGN_OR_RETURN(
      auto create, ParseCreate(body, NewJobId(), ctx.options.limits, store.clock().NowMs()));
  if (auto key = Header(req, "Idempotency-Key")) {
    JOBSTORE_RETURN_IF_ERROR(ValidateHeaderToken("Idempotency-Key", *key));
    create.idempotency_key = *key;
    create.idempotency_fingerprint = Fingerprint(body);
  }
  Command c{create.job_id, {}, {}, std::move(create)};
  JOBSTORE_RETURN_IF_ERROR(ReadCommandHeaders(req, c));
  JOBSTORE_ASSIGN_OR_RETURN(auto out, store.Submit(std::move(c)));
  res.set_header("Location", "/api/v1/jobs/" + out.job->job_id);
  if (PrefersMinimal(req)) {
    res.set_header("ETag", "\"" + std::to_string(out.job->version) + "\"");
    WriteJson(res, out.deduplicated ? 200 : 201,
              {{"job_id", out.job->job_id}, {"version", out.job->version}});
  } else {
    WriteJob(res, out.deduplicated ? 200 : 201, *out.job);
  }
  return Status::Ok();
}

Status CreateBatch(ServerContext& ctx, JobStore& store, const httplib::Request& req,
                   httplib::Response& res) {
  JOBSTORE_ASSIGN_OR_RETURN(auto body, RequestBody(req, /*empty_ok=*/false, ctx.options));
  auto jobs = body.find("jobs");
  if (body.size() != 1 || jobs == body.end() || !jobs->is_array() || jobs->empty() ||
      jobs->size() > ctx.options.limits.max_batch_jobs) {
    return InvalidArgument("the body must be {\"jobs\": [...]} with 1 to " +
                           std::to_string(ctx.options.limits.max_batch_jobs) + " entries");
  }
  std::vector<Command> commands;
  commands.reserve(jobs->size());
  const TimeMs now = store.clock().NowMs();
  for (std::size_t i = 0; i < jobs->size(); ++i) {
    const Json& entry = (*jobs)[i];
    auto create = entry.is_object() ? ParseCreate(entry, NewJobId(), ctx.options.limits, now)
                                    : StatusOr<CreateJob>(InvalidArgument("must be an object"));
    if (!create.ok()) {
      return InvalidArgument("jobs[" + std::to_string(i) + "]: " + create.status().message());
    }
    Command& command = commands.emplace_back();  // the create moved once, into its place
    command.job_id = create->job_id;
    command.body = std::move(create).value();
  }
  JOBSTORE_ASSIGN_OR_RETURN(auto forward_id, ForwardId(req));
  if (forward_id) {  // each job of a forwarded batch its own id, so a repeat finds them all
    for (std::size_t i = 0; i < commands.size(); ++i) commands[i].forward_id = *forward_id + "/" + std::to_string(i);
  }
  JOBSTORE_ASSIGN_OR_RETURN(auto out, store.SubmitAll(std::move(commands)));
  if (PrefersMinimal(req)) {  // {"jobs":[{"job_id":...,"version":...},...]}, written as text
    std::string text = "{\"jobs\":[";
    for (std::size_t i = 0; i < out.size(); ++i) {
      text += i ? ",{\"job_id\":" : "{\"job_id\":";
      AppendJsonString(&text, out[i].job->job_id);
      text += ",\"version\":" + std::to_string(out[i].job->version) + "}";
    }
    res.status = 201;
    res.set_content(text + "]}", "application/json; charset=utf-8");
    return Status::Ok();
  }
  // The jobs' rendered text, joined: no JSON tree is built for an answer of up to 1,000 jobs.
  std::string text = "{\"jobs\":[";
  for (std::size_t i = 0; i < out.size(); ++i) text += (i ? "," : "") + JobJsonText(*out[i].job);
  res.status = 201;
  res.set_content(text + "]}", "application/json; charset=utf-8");
  return Status::Ok();
}

// POST /jobs/finish: a worker's finished jobs, each on its own, and its next claim, in one
// durable write. 200 {"results": [{"job_id", "status", "version"|"error", "job"?}, ...],
// "next": [<claimed jobs>]} ("next" only when asked). A write that fails fails the whole request
// (nothing of it was written), as one finish would.
Status FinishJobs(ServerContext& ctx, JobStore& store, const httplib::Request& req,
                  httplib::Response& res) {
  JOBSTORE_ASSIGN_OR_RETURN(auto body, RequestBody(req, /*empty_ok=*/false, ctx.options));
  JOBSTORE_ASSIGN_OR_RETURN(auto batch, ParseFinishBatch(body, ctx.options.limits));
  JOBSTORE_ASSIGN_OR_RETURN(auto forward_id, ForwardId(req));
  std::optional<std::string> caller;
  if (auto user = Header(req, "X-User-Id")) {
    JOBSTORE_RETURN_IF_ERROR(ValidateHeaderToken("X-User-Id", *user));
    caller = *user;
  }
  for (std::size_t i = 0; i < batch.commands.size(); ++i) {
    batch.commands[i].caller = caller;
    if (forward_id) batch.commands[i].forward_id = *forward_id + "/" + std::to_string(i);
  }
  const bool with_next = batch.next.has_value();
  if (with_next && forward_id) batch.next->forward_id = *forward_id + "/next";
  std::vector<std::string> ids;
  ids.reserve(batch.commands.size());
  for (const Command& c : batch.commands) ids.push_back(c.job_id);
  auto results = store.SubmitEach(std::move(batch.commands), std::move(batch.next));
  for (const auto& r : results) {  // only a failed write (or a shutdown) says these
    if (!r.ok() && (r.status().code() == StatusCode::kUnavailable ||
                    r.status().code() == StatusCode::kInternal)) {
      return r.status();
    }
  }
  const bool minimal = PrefersMinimal(req);
  std::string text = "{\"results\":[";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const auto& r = results[i];
    if (i) text += ',';
    if (!r.ok()) {
      nlohmann::ordered_json item = {
          {"job_id", ids[i]},
          {"status", HttpStatusFor(r.status().code())},
          {"error", {{"code", StatusCodeName(r.status().code())}, {"message", r.status().message()}}}};
      text += item.dump(-1, ' ', false, Json::error_handler_t::replace);
      continue;
    }
    // Written straight (one per finished job, on every worker's request): the bytes an
    // ordered_json {"job_id", "status": 200, "version"} dumps, then the job.
    text += "{\"job_id\":";
    AppendJsonString(&text, ids[i]);
    text += ",\"status\":200,\"version\":";
    text += std::to_string(r->job->version);
    if (!minimal) {
      text += ",\"job\":";
      text += JobJsonText(*r->job);
    }
    text += '}';
  }
  text += "]";
  if (with_next) {
    // The finishes are written whatever became of the claim: a claim refused for any other
    // reason than the write (none is known) takes nothing, and the answer says so.
    const auto& claimed = results.back();
    text += ",\"next\":[";
    for (std::size_t i = 0; claimed.ok() && i < claimed->jobs.size(); ++i) {
      text += (i ? "," : "") + JobJsonText(*claimed->jobs[i]);
    }
    text += "]";
  }
  res.status = 200;
  res.set_content(text + "}", "application/json; charset=utf-8");
  return Status::Ok();
}

Status GetJob(ServerContext& ctx, JobStore& store, const httplib::Request& req,
              httplib::Response& res) {
  JOBSTORE_ASSIGN_OR_RETURN(auto id, PathJobId(req));
  JOBSTORE_ASSIGN_OR_RETURN(auto wait, ParseWait(req.params, ctx.options.limits));
  JOBSTORE_ASSIGN_OR_RETURN(auto after, ParseUintParam(req.params, "after_version"));
  JobPtr job = store.projection().Get(id);
  if (!job) return NotFound("no job '" + id + "'");
  std::optional<WokenAnswerTurn> turn;
  if (wait && *wait > 0) {
    SetThreadCacheAsideForWait();
    job = store.projection().WaitForVersion(id, after.value_or(job->version),
                                            DeadlineAfter(*wait));
    turn.emplace();
    if (!job) return NotFound("job '" + id + "' expired while waiting");
  }
  WriteJob(res, 200, *job);
  return Status::Ok();
}

Status ListJobs(ServerContext& ctx, JobStore& store, const httplib::Request& req,
                httplib::Response& res) {
  JOBSTORE_ASSIGN_OR_RETURN(auto query, ParseListQuery(req.params, ctx.options.limits));
  ListPage page = store.projection().List(query);
  Json jobs = Json::array();
  for (const JobPtr& j : page.jobs) jobs.push_back(JobToJson(*j));
  WriteJson(res, 200,
            {{"jobs", std::move(jobs)},
             {"next_cursor", page.next_cursor ? Json(EncodeCursor(*page.next_cursor)) : Json()}});
  return Status::Ok();
}

Status Claim(ServerContext& ctx, JobStore& store, const httplib::Request& req,
             httplib::Response& res) {
  JOBSTORE_ASSIGN_OR_RETURN(auto wait, ParseWait(req.params, ctx.options.limits));
  JOBSTORE_ASSIGN_OR_RETURN(auto body, RequestBody(req, /*empty_ok=*/false, ctx.options));
  JOBSTORE_ASSIGN_OR_RETURN(auto claim, ParseClaim(body, ctx.options.limits));
  JOBSTORE_ASSIGN_OR_RETURN(claim.forward_id, ForwardId(req));
  // With max_jobs the answer is {"jobs": [...]}: empty at once without ?wait, 204 after it.
  const bool many = body.contains("max_jobs");
  const Deadline deadline = DeadlineAfter(wait.value_or(0));
  for (;;) {
    // Note the seq before trying, so a create that lands during the attempt still wakes us.
    const std::uint64_t seen = store.projection().AppliedSeq();
    JOBSTORE_ASSIGN_OR_RETURN(auto out, store.Claim(claim));
    if (out.job && many) {
      std::string text = "{\"jobs\":[";
      for (std::size_t i = 0; i < out.jobs.size(); ++i) {
        text += (i ? "," : "") + JobJsonText(*out.jobs[i]);
      }
      res.status = 200;
      res.set_content(text + "]}", "application/json; charset=utf-8");
      return Status::Ok();
    }
    if (out.job) {
      WriteJob(res, 200, *out.job);
      return Status::Ok();
    }
    if (many && !wait) {
      WriteJson(res, 200, {{"jobs", Json::array()}});
      return Status::Ok();
    }
    if (std::chrono::steady_clock::now() >= deadline || store.projection().IsShutdown()) break;
    SetThreadCacheAsideForWait();
    store.projection().WaitForSeq(seen, deadline);
  }
  res.status = 204;
  return Status::Ok();
}

// GET /jobs/{id}/hitl/response: the worker's wait for the answer of the job's HITL request.
Status GetHitlResponse(ServerContext& ctx, JobStore& store, const httplib::Request& req,
                       httplib::Response& res) {
  JOBSTORE_ASSIGN_OR_RETURN(auto id, PathJobId(req));
  JOBSTORE_ASSIGN_OR_RETURN(auto wait, ParseWait(req.params, ctx.options.limits));
  const Deadline deadline = DeadlineAfter(wait.value_or(0));
  JobPtr job = store.projection().Get(id);
  std::optional<WokenAnswerTurn> turn;  // after each wait, until the next
  for (;;) {
    if (!job) return NotFound("no job '" + id + "'");
    if (!job->hitl) {
      return Status(StatusCode::kInvalidTransition,
                    "job '" + id + "' has no HITL request (it is " +
                        std::string(JobStatusName(job->status)) + ")");
    }
    const HitlRequest& h = *job->hitl;
    if (h.responded_at) {
      WriteJson(res, 200,
                {{"request_id", h.request_id},
                 {"response", h.response},
                 {"responded_at", JobToJson(*job)["hitl"]["responded_at"]}});
      return Status::Ok();
    }
    if (IsTerminal(job->status)) {
      std::string why = job->error ? " (" + job->error->code + ": " + job->error->message + ")" : "";
      return Status(StatusCode::kInvalidTransition,
                    "job '" + id + "' is " + std::string(JobStatusName(job->status)) + why +
                        "; HITL request '" + h.request_id + "' will not be answered");
    }
    if (std::chrono::steady_clock::now() >= deadline || store.projection().IsShutdown()) break;
    turn.reset();
    SetThreadCacheAsideForWait();
    job = store.projection().WaitForVersion(id, job->version, deadline);
    turn.emplace();
  }
  res.status = 204;
  return Status::Ok();
}

Status JobEvents(ServerContext&, JobStore& store, const httplib::Request& req,
                 httplib::Response& res) {
  JOBSTORE_ASSIGN_OR_RETURN(auto id, PathJobId(req));
  JobPtr job = store.projection().Get(id);
  if (!job) return NotFound("no job '" + id + "'");
  JOBSTORE_ASSIGN_OR_RETURN(auto events, store.log().ReadJob(id, job->created_seq));
  Json list = Json::array();
  for (const Event& e : events) list.push_back(EventToJson(e));
  WriteJson(res, 200, {{"events", std::move(list)}});
  return Status::Ok();
}

}  // namespace

void RegisterJobRoutes(Router& r, ServerContext& ctx) {
  const std::string job = kJobPath;
  r.Add("POST", "/api/v1/jobs", "/api/v1/jobs", Bind(ctx, Create));
  r.Add("POST", "/api/v1/jobs/batch", "/api/v1/jobs/batch", Bind(ctx, CreateBatch));
  r.Add("POST", "/api/v1/jobs/claim", "/api/v1/jobs/claim", Bind(ctx, Claim));
  r.Add("POST", "/api/v1/jobs/finish", "/api/v1/jobs/finish", Bind(ctx, FinishJobs));
  r.Add("GET", "/api/v1/jobs", "/api/v1/jobs", Bind(ctx, ListJobs));
  r.Add("GET", "/api/v1/jobs/{id}", job, Bind(ctx, GetJob));
  r.Add("PATCH", "/api/v1/jobs/{id}", job, Mutation(ctx, ParseUpdate, /*empty_body_ok=*/false));
  r.Add("POST", "/api/v1/jobs/{id}/start", job + "/start", Mutation(ctx, ParseStart));
  r.Add("POST", "/api/v1/jobs/{id}/heartbeat", job + "/heartbeat", Mutation(ctx, ParseHeartbeat));
  r.Add("POST", "/api/v1/jobs/{id}/hitl", job + "/hitl", Mutation(ctx, ParseRequestHitl));
  r.Add("POST", "/api/v1/jobs/{id}/hitl/response", job + "/hitl/response",
        Mutation(ctx, ParseAnswerHitl, /*empty_body_ok=*/false));
  r.Add("GET", "/api/v1/jobs/{id}/hitl/response", job + "/hitl/response",
        Bind(ctx, GetHitlResponse));
  r.Add("POST", "/api/v1/jobs/{id}/complete", job + "/complete", Mutation(ctx, ParseComplete));
  r.Add("POST", "/api/v1/jobs/{id}/fail", job + "/fail",
        Mutation(ctx, ParseFail, /*empty_body_ok=*/false));
  r.Add("POST", "/api/v1/jobs/{id}/cancel", job + "/cancel", Mutation(ctx, ParseCancel));
  r.Add("POST", "/api/v1/jobs/{id}/retry", job + "/retry", Mutation(ctx, ParseRetryJob));
  r.Add("GET", "/api/v1/jobs/{id}/events", job + "/events", Bind(ctx, JobEvents));
}

}  // namespace jobstore::http
