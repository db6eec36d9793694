// The /api/v1/schedules routes: recurring jobs (core/schedule.h). Create, list, read, change
// (pause, resume, a new cron or template), delete. The background creates the occurrences.
#include "jobstore/core/json_codec.h"
#include "jobstore/core/schedule.h"
#include "jobstore/http/request_parsing.h"
#include "jobstore/store/job_store.h"
#include "server_context.h"

namespace jobstore::http {
namespace {

constexpr char kSchedulePath[] = R"(/api/v1/schedules/([^/]+))";

StatusOr<std::string> PathScheduleId(const httplib::Request& req) {
  std::string id = req.matches.size() > 1 ? std::string(req.matches[1]) : std::string();
  JOBSTORE_RETURN_IF_ERROR(ValidateScheduleId(id));
  return id;
}

Json ScheduleJson(const Schedule& s, const JobStore& store) {
  return ScheduleToJson(s, NextOccurrence(s, store.clock().NowMs()));
}

void WriteSchedule(httplib::Response& res, int status, const Schedule& s, const JobStore& store) {
  res.set_header("ETag", "\"" + std::to_string(s.version) + "\"");
  WriteJson(res, status, ScheduleJson(s, store));
}

// Submits a schedule command with the request's If-Match.
StatusOr<Outcome> SubmitSchedule(JobStore& store, const httplib::Request& req, std::string id,
                                 CommandBody body) {
  Command c{std::move(id), std::nullopt, std::nullopt, std::move(body)};
  if (auto h = Header(req, "If-Match")) {
    JOBSTORE_ASSIGN_OR_RETURN(auto v, ParseIfMatch(*h));
    c.if_match = v;
  }
  return store.Submit(std::move(c));
}

Status Create(ServerContext& ctx, JobStore& store, const httplib::Request& req,
              httplib::Response& res) {
  JOBSTORE_ASSIGN_OR_RETURN(auto body, RequestBody(req, /*empty_ok=*/false, ctx.options));
  std::string id;
  JOBSTORE_ASSIGN_OR_RETURN(
      auto set, ParseSetSchedule(body, true, ctx.options.limits, store.clock().NowMs(), &id));
  JOBSTORE_ASSIGN_OR_RETURN(auto out, SubmitSchedule(store, req, id, std::move(set)));
  res.set_header("Location", "/api/v1/schedules/" + id);
  WriteSchedule(res, 201, *out.schedule, store);
  return Status::Ok();
}

Status List(ServerContext&, JobStore& store, const httplib::Request&, httplib::Response& res) {
  Json list = Json::array();
  for (const SchedulePtr& s : store.schedules().List()) list.push_back(ScheduleJson(*s, store));
  WriteJson(res, 200, {{"schedules", std::move(list)}});
  return Status::Ok();
}

Status Get(ServerContext&, JobStore& store, const httplib::Request& req, httplib::Response& res) {
  JOBSTORE_ASSIGN_OR_RETURN(auto id, PathScheduleId(req));
  SchedulePtr s = store.schedules().Get(id);
  if (!s) return NotFound("no schedule '" + id + "'");
  WriteSchedule(res, 200, *s, store);
  return Status::Ok();
}

Status Patch(ServerContext& ctx, JobStore& store, const httplib::Request& req,
             httplib::Response& res) {
  JOBSTORE_ASSIGN_OR_RETURN(auto id, PathScheduleId(req));
  JOBSTORE_ASSIGN_OR_RETURN(auto body, RequestBody(req, /*empty_ok=*/false, ctx.options));
  JOBSTORE_ASSIGN_OR_RETURN(
      auto set, ParseSetSchedule(body, false, ctx.options.limits, store.clock().NowMs(), nullptr));
  JOBSTORE_ASSIGN_OR_RETURN(auto out, SubmitSchedule(store, req, id, std::move(set)));
  WriteSchedule(res, 200, *out.schedule, store);
  return Status::Ok();
}

Status Delete(ServerContext&, JobStore& store, const httplib::Request& req,
              httplib::Response& res) {
  JOBSTORE_ASSIGN_OR_RETURN(auto id, PathScheduleId(req));
  JOBSTORE_RETURN_IF_ERROR(SubmitSchedule(store, req, id, DeleteSchedule{}).status());
  res.status = 204;
  return Status::Ok();
}

}  // namespace

void RegisterScheduleRoutes(Router& r, ServerContext& ctx) {
  r.Add("POST", "/api/v1/schedules", "/api/v1/schedules", Bind(ctx, Create));
  r.Add("GET", "/api/v1/schedules", "/api/v1/schedules", Bind(ctx, List));
  r.Add("GET", "/api/v1/schedules/{schedule_id}", kSchedulePath, Bind(ctx, Get));
  r.Add("PATCH", "/api/v1/schedules/{schedule_id}", kSchedulePath, Bind(ctx, Patch));
  r.Add("DELETE", "/api/v1/schedules/{schedule_id}", kSchedulePath, Bind(ctx, Delete));
}

}  // namespace jobstore::http
