// ApiServer: cpp-httplib configured for durable job traffic, with auth, JSON errors, metrics.
#include "access_log.h"
#include "jobstore/http/api_server.h"

#include <openssl/crypto.h>
#include <sys/socket.h>

#include <algorithm>
#include <thread>

#include <spdlog/spdlog.h>

#include "elastic_thread_pool.h"
#include "guarded_connection.h"
#include "jobstore/store/job_store.h"
#include "origin_policy.h"
#include "request_framing.h"
#include "server_context.h"
#include "sha256_digest.h"

namespace jobstore::http {
namespace {

thread_local std::chrono::steady_clock::time_point t_request_start;

// Compares a presented token with the configured one in time that depends on neither: both are
// hashed first, and the digests are compared with OpenSSL's constant-time memcmp.
bool TokenMatches(std::string_view presented, const std::string& expected) {
  const Sha256Bytes a = Sha256Digest(presented);
  const Sha256Bytes b = Sha256Digest(expected);
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool IsApiPath(const std::string& path) { return path.rfind("/api/v1", 0) == 0; }

ConnectionLimits LimitsOf(const ServerOptions& o) {
  ConnectionLimits l;
  l.max_head_bytes = o.max_head_bytes;
  const int timeout_ms = std::max(o.client_timeout_ms, 1);
  l.keep_alive_ms = timeout_ms;
  l.read_timeout_ms = timeout_ms;
  l.write_timeout_ms = timeout_ms;
  return l;
}

OriginPolicy OriginPolicyOf(const ServerOptions& o) {
  return {o.host, !o.tls_cert_file.empty(), o.allowed_hosts, o.allowed_origins};
}

// Answers `why` and closes the connection after it: a refused request's body is never read,
// so the next bytes on the connection cannot be trusted to start a request.
void Refuse(httplib::Response& res, const Status& why) {
  WriteError(res, why);
  CloseAfterResponse(res);
}

}  // namespace

class ApiServer::Impl {
 public:
  explicit Impl(ServerOptions options)
      : options_(std::move(options)),
        ctx_(options_),
        origins_(OriginPolicyOf(options_)),
        server_(MakeServer(options_)),
        router_(*server_, ctx_) {
    Configure();
    RegisterJobRoutes(router_, ctx_);
    RegisterScheduleRoutes(router_, ctx_);
    RegisterEventRoutes(router_, ctx_);
    RegisterOpsRoutes(router_, ctx_);
    RegisterDashboard(*server_);
  }

  Status Bind() {
    if (!server_->is_valid()) {
      return InvalidArgument("cannot use the TLS certificate '" + options_.tls_cert_file +
                             "' with the key '" + options_.tls_key_file + "'");
    }
    if (options_.port == 0) {
      port_ = server_->bind_to_any_port(options_.host);
      if (port_ <= 0) return Unavailable("cannot listen on " + options_.host + ": no free port");
    } else if (server_->bind_to_port(options_.host, options_.port)) {
      port_ = options_.port;
    } else {
      return Unavailable("cannot listen on " + options_.host + ":" +
                         std::to_string(options_.port) + " (in use, or not an address here)");
    }
    // httplib listens with a backlog of 5, whose overflow gave second-long tails under load;
    // listening again on the same socket only raises the backlog.
    if (listen_fd_ >= 0) ::listen(listen_fd_, options_.listen_backlog);
    return Status::Ok();
  }

  void Run() {
    running_.store(true);
    if (!ctx_.stopping.load()) server_->listen_after_bind();
    running_.store(false);
  }

  void Stop() {
    if (ctx_.stopping.exchange(true)) return;  // once: later calls (the destructor) do nothing
    if (JobStore* store = ctx_.store.load()) store->ReleaseWaiters();
    // httplib's stop() does nothing until listen has begun: a Stop() that comes right after Run()
    // started (a store that fails to open) waits for the listener, or Run() would never return.
    while (running_.load() && !server_->is_running()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    server_->stop();
  }

  // Plain HTTP, or HTTPS with the configured certificate and key; either way our connection
  // loop (guarded_connection.h) with the framing screen on every request head.
  static std::unique_ptr<httplib::Server> MakeServer(const ServerOptions& o) {
    const FramingPolicy framing{o.max_body_bytes};
    auto screen = [framing](httplib::Request& req, ConnectionState& conn) {
      Status st = ScreenRequestHead(req, framing, conn.stream().head_text());
      if (!st.ok()) conn.Refuse(std::move(st));
    };
    return MakeGuardedServer(LimitsOf(o), screen, o.tls_cert_file, o.tls_key_file);
  }

  ServerOptions options_;
  ServerContext ctx_;
  const OriginPolicy origins_;
  std::unique_ptr<httplib::Server> server_;
  Router router_;
  int port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> running_{false};  // Run() is inside (or about to enter) listen

 private:
  void Configure() {
    server_->new_task_queue = [this] {
      auto* pool = new ElasticThreadPool(options_.min_threads, options_.max_threads,
                                         options_.max_waiting_connections,
                                         std::chrono::seconds(30));
      ctx_.pool.store(pool);
      return pool;
    };
    server_->set_tcp_nodelay(true);
    server_->set_keep_alive_max_count(100000);
    const int timeout_ms = std::max(options_.client_timeout_ms, 1);
    server_->set_keep_alive_timeout((timeout_ms + 999) / 1000);
    server_->set_read_timeout(timeout_ms / 1000, (timeout_ms % 1000) * 1000);
    server_->set_write_timeout(timeout_ms / 1000, (timeout_ms % 1000) * 1000);
    server_->set_payload_max_length(options_.max_body_bytes);
    server_->set_default_headers({{"X-Content-Type-Options", "nosniff"}});
    server_->set_socket_options([this](socket_t sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
      listen_fd_ = sock;
    });
    server_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      t_request_start = std::chrono::steady_clock::now();
      SetCurrentRoute("unmatched");
      return PreRoute(req, res) ? httplib::Server::HandlerResponse::Handled
                                : httplib::Server::HandlerResponse::Unhandled;
    });
    // The event seq each answer reflects: a client that wrote through one instance and reads
    // from another passes it as min_seq (several instances; harmless with one).
    server_->set_post_routing_handler([this](const httplib::Request&, httplib::Response& res) {
      if (JobStore* store = ctx_.store.load(); store && !res.has_header("X-Jobstore-Seq")) {
        res.set_header("X-Jobstore-Seq", std::to_string(store->projection().AppliedSeq()));
      }
    });
    server_->set_error_handler(httplib::Server::HandlerWithResponse(
        [](const httplib::Request& req, httplib::Response& res) {
      ConnectionState* conn = CurrentConnection();
      if (conn && conn->stream().in_head()) {  // the head did not parse: nothing after it counts
        CloseAfterResponse(res);
        if (conn->stream().head_too_large()) {
          res.body.clear();
          WriteError(res, Status(StatusCode::kHeadersTooLarge,
                                 "the request line and headers are larger than the server's "
                                 "limit"));
          return httplib::Server::HandlerResponse::Handled;
        }
      }
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      switch (res.status) {
        case 404:
          WriteError(res, NotFound("no route for " + req.method + " " + req.path.substr(0, 200)));
          break;
        case 413:
          WriteError(res, Status(StatusCode::kPayloadTooLarge,
                                 "the body is larger than the server's limit"));
          break;
        case 400:
          WriteError(res, InvalidArgument("malformed HTTP request"));
          break;
        default:
          WriteJson(res, res.status,
                    {{"error", {{"code", "http_" + std::to_string(res.status)},
                                {"message", "HTTP status " + std::to_string(res.status)}}}});
      }
      return httplib::Server::HandlerResponse::Handled;
    }));
    server_->set_exception_handler(
        [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
          std::string what = "unknown exception";
          try {
            std::rethrow_exception(ep);
          } catch (const std::exception& e) {
            what = e.what();
          } catch (...) {
          }
          spdlog::error("{} {}: unexpected exception: {}", req.method, req.path, what);
          WriteError(res, Internal("the server failed to handle this request; it is logged"));
        });
    server_->set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      const auto took = std::chrono::steady_clock::now() - t_request_start;
      ctx_.metrics.Observe(CurrentRoute(), req.method, res.status, took);
      if (options_.access_log) LogAccess(req, res, CurrentRoute(), took, options_.json_logs);
    });
  }

  // Every request passes here before its route, in this order: the framing screen's refusal,
  // the Host check, the Origin check (and CORS), then the token. True when it answered.
  bool PreRoute(const httplib::Request& req, httplib::Response& res) {
    ConnectionState* conn = CurrentConnection();
    if (conn && conn->refusal()) {
      SetCurrentRoute("refused");
      Refuse(res, *conn->refusal());
      return true;
    }
    if (Status st = CheckHost(req, origins_); !st.ok()) {
      SetCurrentRoute("refused");
      Refuse(res, st);
      return true;
    }
    if (Status st = CheckOrigin(req, origins_); !st.ok()) {
      SetCurrentRoute("refused");
      Refuse(res, st);
      return true;
    }
    const bool cors = IsAllowedCrossOrigin(req, origins_);
    if (req.method == "OPTIONS") {
      SetCurrentRoute("preflight");
      if (!cors || !req.has_header("Access-Control-Request-Method")) {
        Refuse(res, NotFound("no route for OPTIONS " + req.path.substr(0, 200) +
                             " (CORS preflights are answered for --allowed-origins only)"));
        return true;
      }
      AddCorsHeaders(req, res, /*preflight=*/true);
      res.status = 204;
      return true;
    }
    if (cors) AddCorsHeaders(req, res, /*preflight=*/false);
    if (options_.token && IsApiPath(req.path) && !Authorized(req)) {
      SetCurrentRoute("unauthenticated");
      WriteError(res, Status(StatusCode::kUnauthenticated,
                             "this server needs 'Authorization: Bearer <token>'"));
      return true;
    }
    return false;
  }

  bool Authorized(const httplib::Request& req) const {
    std::string auth = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (auth.size() <= kBearer.size() || auth.compare(0, kBearer.size(), kBearer) != 0) {
      return false;
    }
    return TokenMatches(std::string_view(auth).substr(kBearer.size()), *options_.token);
  }
};

ApiServer::ApiServer(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
ApiServer::~ApiServer() { Stop(); }
Status ApiServer::Bind() { return impl_->Bind(); }
int ApiServer::port() const { return impl_->port_; }
void ApiServer::SetStore(JobStore* store) { impl_->ctx_.store.store(store); }
void ApiServer::SetBackground(const BackgroundWorker* background) {
  impl_->ctx_.background.store(background);
}
void ApiServer::SetCluster(ClusterHooks hooks) { impl_->ctx_.cluster = std::move(hooks); }
void ApiServer::Run() { impl_->Run(); }
void ApiServer::Stop() { impl_->Stop(); }
std::vector<std::pair<std::string, std::string>> ApiServer::Routes() const {
  return impl_->router_.routes();
}

}  // namespace jobstore::http
