// The reply helpers and the router of server_context.h.
#include <charconv>
#include <chrono>

#include "jobstore/core/json_codec.h"
#include "jobstore/core/validation.h"
#include "guarded_connection.h"
#include "jobstore/store/job_store.h"
#include "server_context.h"
#include "write_forwarding.h"

namespace jobstore::http {
namespace {
thread_local std::string t_route;
}  // namespace

void SetCurrentRoute(const std::string& route) { t_route = route; }

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kForbidden: return 403;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kInvalidTransition:
    case StatusCode::kAlreadyExists:
    case StatusCode::kStaleRequest: return 409;
    case StatusCode::kTruncated: return 410;
    case StatusCode::kVersionMismatch: return 412;
    case StatusCode::kPayloadTooLarge: return 413;
    case StatusCode::kUnsupportedMediaType: return 415;
    case StatusCode::kMisdirectedRequest: return 421;
    case StatusCode::kIdempotencyKeyReused: return 422;
    case StatusCode::kHeadersTooLarge: return 431;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kCorruption:
    case StatusCode::kInternal: return 500;
  }
  return 500;
}

void WriteJson(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  // Replace (never throw on) invalid UTF-8 that a truncated echo of client input might hold.
  res.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace),
                  "application/json; charset=utf-8");
}

void WriteError(httplib::Response& res, const Status& status, const Json& extra) {
  Json body = {{"error", {{"code", StatusCodeName(status.code())}, {"message", status.message()}}}};
  if (extra.is_object()) body.update(extra);
  if (status.code() == StatusCode::kUnauthenticated) {
    res.set_header("WWW-Authenticate", "Bearer");
  }
  WriteJson(res, HttpStatusFor(status.code()), body);
}

void WriteJob(httplib::Response& res, int status, const Job& job) {
  res.set_header("ETag", "\"" + std::to_string(job.version) + "\"");
  res.status = status;
  res.set_content(JobJsonText(job), "application/json; charset=utf-8");
}

void CloseAfterResponse(httplib::Response& res) {
  res.set_header("Connection", "close");
  if (ConnectionState* conn = CurrentConnection()) conn->CloseAfterResponse();
}

std::optional<std::string> Header(const httplib::Request& req, const char* name) {
  const auto it = req.headers.find(name);  // one case-insensitive search, not two
  if (it == req.headers.end()) return std::nullopt;
  return it->second;
}

StatusOr<Json> RequestBody(const httplib::Request& req, bool empty_ok, const ServerOptions& o) {
  return ParseJsonBody(req.body, empty_ok, o.limits.fields);
}

StatusOr<std::string> PathJobId(const httplib::Request& req) {
  std::string id = req.matches.size() > 1 ? std::string(req.matches[1]) : std::string();
  JOBSTORE_RETURN_IF_ERROR(ValidateJobId(id));
  return id;
}

Deadline DeadlineAfter(double seconds) {
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(
             std::chrono::duration<double>(seconds));
}

namespace {

// cpp-httplib 0.11 reads a body without Content-Length until the peer closes, so a plain
// `curl -X POST` would hang for the read timeout and get 400. RFC 9112 says such a request has
// no body; POST and PATCH routes therefore read the body themselves, only when one is announced.
std::uint64_t ContentLength(const httplib::Request& req) {
  const std::string v = req.get_header_value("Content-Length");
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  return ec == std::errc() && end == v.data() + v.size() ? n : UINT64_MAX;
}

httplib::Server::HandlerWithContentReader WithBody(httplib::Server::Handler h,
                                                   std::size_t max_body_bytes) {
  return [h = std::move(h), max_body_bytes](const httplib::Request& req, httplib::Response& res,
                                            const httplib::ContentReader& reader) {
    // httplib owns a mutable Request; it hands it over as const only by convention.
    auto& mutable_req = const_cast<httplib::Request&>(req);
    if (req.has_header("Content-Length") || req.has_header("Transfer-Encoding")) {
      const std::uint64_t announced =
          req.has_header("Content-Length") ? ContentLength(req) : 0;  // 0: chunked
      bool too_large = announced > max_body_bytes;
      const bool read = !too_large && reader([&](const char* data, std::size_t n) {
        too_large = mutable_req.body.size() + n > max_body_bytes;
        if (!too_large) mutable_req.body.append(data, n);
        return !too_large;
      });
      if (!read) {
        // Over the limit (ours, or httplib's on the same number), or the client stopped
        // sending before the announced length (the read timed out or the peer closed).
        WriteError(res, too_large ? Status(StatusCode::kPayloadTooLarge,
                                           "the body is larger than " +
                                               std::to_string(max_body_bytes) + " bytes")
                                  : InvalidArgument("the request body ended before its "
                                                    "Content-Length (or its last chunk)"));
        CloseAfterResponse(res);
        return;
      }
    }
    h(req, res);
  };
}

}  // namespace

void Router::Register(const std::string& method, const std::string& pattern,
                      httplib::Server::Handler h) {
  const std::size_t max = ctx_.options.max_body_bytes;
  if (method == "GET") {
    server_.Get(pattern, std::move(h));
  } else if (method == "POST") {
    server_.Post(pattern, WithBody(std::move(h), max));
  } else if (method == "PATCH") {
    server_.Patch(pattern, WithBody(std::move(h), max));
  } else if (method == "DELETE") {
    server_.Delete(pattern, std::move(h));
  }
}

Handler Bind(ServerContext& ctx, RouteFunction fn) {
  return [&ctx, fn](JobStore& store, const httplib::Request& req, httplib::Response& res) {
    return fn(ctx, store, req, res);
  };
}

void Router::Add(const std::string& method, const std::string& doc_path,
                 const std::string& pattern, Handler handler) {
  routes_.emplace_back(method, doc_path);
  Register(method, pattern, [this, doc_path, handler](const httplib::Request& req,
                                                       httplib::Response& res) {
    SetCurrentRoute(doc_path);
    JobStore* store = ctx_.store.load(std::memory_order_acquire);
    if (!store) {
      WriteError(res, Unavailable("jobstore is starting: the log is being replayed"));
      return;
    }
    std::optional<Status> forwarded;
    std::string request_id;
    if (ctx_.cluster && req.method != "GET" && !ctx_.cluster->is_writer()) {
      forwarded = ForwardToWriter(ctx_, *store, req, res, &request_id);  // a write on a follower
    }
    Status st = Status::Ok();
    if (forwarded) {
      st = *forwarded;
    } else if (!request_id.empty() && !req.has_header(kRequestIdHeader)) {
      // Forwarded before this instance became the writer: served here under the same id.
      httplib::Request with_id = req;
      with_id.headers.emplace(kRequestIdHeader, request_id);
      st = handler(*store, with_id, res);
    } else {
      st = WaitForMinSeq(*store, req);
      if (st.ok()) st = handler(*store, req, res);
    }
    if (!st.ok()) {
      // A forwarded write this instance refused because it lost the lease meanwhile: the
      // forwarding instance tries the writer again (write_forwarding.h).
      if (st.code() == StatusCode::kUnavailable && ctx_.cluster && req.has_header(kForwardedHeader) &&
          !ctx_.cluster->is_writer()) {
        res.set_header(kNotWriterHeader, ctx_.cluster->instance);
      }
      WriteError(res, st);
    }
  });
}

void Router::AddOpen(const std::string& method, const std::string& doc_path,
                     const std::string& pattern, OpenHandler handler) {
  routes_.emplace_back(method, doc_path);
  Register(method, pattern, [doc_path, handler](const httplib::Request& req,
                                                httplib::Response& res) {
    SetCurrentRoute(doc_path);
    handler(req, res);
  });
}

const std::string& CurrentRoute() { return t_route; }

}  // namespace jobstore::http
