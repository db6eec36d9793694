// The REST API of http/openapi.json over cpp-httplib, plus /healthz, /readyz and /metrics.
//
// Lifecycle: construct, Bind() (the port is open and answers 503 on /api/v1 and /readyz),
// SetStore() once the log is replayed (then ready), Run() on a thread until Stop().
// Stop() may be called from any thread: it releases every long-poll and stream, stops
// accepting, and lets Run() return after in-flight requests finish.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "jobstore/core/status.h"
#include "jobstore/http/request_parsing.h"

namespace jobstore {
class JobStore;
class BackgroundWorker;
}

namespace jobstore::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                            // 0: an ephemeral port (see ApiServer::port())
  std::size_t max_body_bytes = 1 << 20;
  std::optional<std::string> token;           // bearer token for /api/v1; none: open
  ParseLimits limits;
  std::size_t min_threads = 8;
  std::size_t max_threads = 4096;             // concurrent connections served at once
  int listen_backlog = 4096;
  // A client is dropped when a read waits longer than this for its next bytes, when a write
  // waits longer for it to take bytes, or when a kept-alive connection idles longer (rounded up
  // to whole seconds there). A slow-loris client therefore holds one connection thread at most
  // this long per byte, never the server; see --max-connections.
  int client_timeout_ms = 5000;
  int sse_heartbeat_ms = 15000;
  std::string tls_cert_file;  // both set: serve HTTPS (PEM files)
  std::string tls_key_file;
  // The request line and headers of one request together (beyond: 431 and close).
  std::size_t max_head_bytes = 64 * 1024;
  // Accepted connections that may wait for a free thread when max_threads serve; beyond that a
  // new connection gets 503 and is closed at once (each waiting one holds a descriptor).
  std::size_t max_waiting_connections = 1024;
  // Browser protections (see http/src/origin_policy.h): Host names beyond the listen address
  // and the loopback names, and origins whose pages may use the API (CORS). "*" allows any.
  std::vector<std::string> allowed_hosts;
  std::vector<std::string> allowed_origins;
  // --access-log: one line per answered request (http/src/access_log.h); json_logs: as objects.
  bool access_log = false;
  bool json_logs = false;
};

// Several instances on one replicated log (--nats; replication/cluster_node.h), as the API sees
// them. A write that reaches an instance that is not the writer is forwarded to the writer's
// API (http/src/write_forwarding.h).
struct ClusterHooks {
  std::string instance;            // this instance's name
  std::function<bool()> is_writer;
  // The writer's "host:port" when another instance writes; empty when none is known.
  std::function<std::string()> writer_address;
  // OK once this copy caught up with the replicated log; why not otherwise (/readyz).
  std::function<Status()> ready;
  // Appends this instance's replication figures to /metrics (Prometheus text).
  std::function<void(std::string&)> render_metrics;
};

class ApiServer {
 public:
  explicit ApiServer(ServerOptions options);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Opens the listening socket. kUnavailable when the address is taken.
  Status Bind();
  int port() const;
  // Makes the API ready; `store` must outlive the server.
  void SetStore(JobStore* store);
  // Adds the background worker's figures to /stats and /metrics; it must outlive the server.
  void SetBackground(const BackgroundWorker* background);
  // Joins the API to a cluster of instances; call before Run().
  void SetCluster(ClusterHooks hooks);
  // Serves until Stop(). Returns when the listener is closed and in-flight requests finished.
  void Run();
  void Stop();

  // Every (method, OpenAPI path) the router serves, e.g. ("GET", "/api/v1/jobs/{id}").
  std::vector<std::pair<std::string, std::string>> Routes() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// The OpenAPI 3 document served at /api/v1/openapi.json.
const std::string& OpenApiDocument();

}  // namespace jobstore::http
