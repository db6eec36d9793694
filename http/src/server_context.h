// Internal: what every route file shares: the server's state, the router that records each
// route for the OpenAPI check, and the helpers that write JSON replies and errors.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <httplib.h>

#include "jobstore/core/job.h"
#include "jobstore/core/status.h"
#include "jobstore/http/api_server.h"
#include "jobstore/projections/job_projection.h"
#include "metrics.h"

namespace jobstore {
class JobStore;
class BackgroundWorker;
}

namespace jobstore::http {

class ElasticThreadPool;

struct ServerContext {
  explicit ServerContext(const ServerOptions& o) : options(o) {}
  const ServerOptions& options;
  std::atomic<JobStore*> store{nullptr};  // null until the log is replayed
  std::atomic<const BackgroundWorker*> background{nullptr};
  std::atomic<bool> stopping{false};
  std::atomic<ElasticThreadPool*> pool{nullptr};
  RequestMetrics metrics;
  std::optional<ClusterHooks> cluster;  // set before Run() when --nats joins a cluster
  std::atomic<std::uint64_t> forwarded{0};        // writes forwarded to the writer
  std::atomic<std::uint64_t> forward_failures{0};  // of which the writer did not answer
};

// A route handler: runs with the store ready; returns an error Status to have it written as the
// contract's error body, or OK after writing the response itself.
using Handler = std::function<Status(JobStore&, const httplib::Request&, httplib::Response&)>;
using OpenHandler = std::function<void(const httplib::Request&, httplib::Response&)>;

class Router {
 public:
  Router(httplib::Server& server, ServerContext& ctx) : server_(server), ctx_(ctx) {}
  // `doc_path` is the OpenAPI path ("/api/v1/jobs/{id}"), `pattern` the regex httplib matches.
  void Add(const std::string& method, const std::string& doc_path, const std::string& pattern,
           Handler handler);
  // A route that works before the store is ready (health, readiness, metrics).
  void AddOpen(const std::string& method, const std::string& doc_path, const std::string& pattern,
               OpenHandler handler);
  const std::vector<std::pair<std::string, std::string>>& routes() const { return routes_; }

 private:
  void Register(const std::string& method, const std::string& pattern, httplib::Server::Handler h);

  httplib::Server& server_;
  ServerContext& ctx_;
  std::vector<std::pair<std::string, std::string>> routes_;
};

// The route label of the request being served on this thread (for metrics).
void SetCurrentRoute(const std::string& route);
const std::string& CurrentRoute();

int HttpStatusFor(StatusCode code);
void WriteJson(httplib::Response& res, int status, const Json& body);
void WriteError(httplib::Response& res, const Status& status, const Json& extra = nullptr);
// The job with its ETag.
void WriteJob(httplib::Response& res, int status, const Job& job);
// Says Connection: close on `res` and closes this thread's connection once it is written (an
// unread body, or a head that did not parse, leaves nothing after it to trust).
void CloseAfterResponse(httplib::Response& res);

std::optional<std::string> Header(const httplib::Request& req, const char* name);
StatusOr<Json> RequestBody(const httplib::Request& req, bool empty_ok, const ServerOptions& o);
// The path's job id, validated.
StatusOr<std::string> PathJobId(const httplib::Request& req);
// A steady-clock deadline `seconds` from now.
Deadline DeadlineAfter(double seconds);

// Binds a route function to the context.
using RouteFunction = Status (*)(ServerContext&, JobStore&, const httplib::Request&,
                                 httplib::Response&);
Handler Bind(ServerContext& ctx, RouteFunction fn);

void RegisterJobRoutes(Router& router, ServerContext& ctx);
void RegisterEventRoutes(Router& router, ServerContext& ctx);
void RegisterScheduleRoutes(Router& router, ServerContext& ctx);
void RegisterOpsRoutes(Router& router, ServerContext& ctx);
// The dashboard's page and assets (not API routes: not in the router or the OpenAPI document).
void RegisterDashboard(httplib::Server& server);

}  // namespace jobstore::http
