#include "serve_command.h"

#include <cmath>
#include <signal.h>

#include <csignal>

#include <algorithm>
#include <memory>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "cluster_flags.h"
#include "config_file.h"
#include "descriptor_budget.h"
#include "futex_hash.h"
#include "flags.h"
#include "log_format.h"
#include "jobstore/core/log_fields.h"
#include "jobstore/background/background_worker.h"
#include "jobstore/core/time_format.h"
#include "jobstore/http/api_server.h"
#include "jobstore/http/request_parsing.h"
#include "jobstore/store/job_store.h"

namespace jobstore::cli {
namespace {

struct ServeFlags {
  std::string config;
  std::string data_dir = "./data";
  std::string listen = "127.0.0.1:8000";
  std::string sync = "always";
  std::size_t commit_delay_us = 0;
  std::string job_ttl = "1h";
  std::string token_file;
  std::size_t max_body_bytes = 1 << 20;
  std::size_t max_connections = 4096;
  std::string sse_heartbeat = "15s";
  std::string client_timeout = "5s";
  std::string compaction_interval = "5m";
  std::string history_retention = "keep";
  std::string snapshot_interval = "10m";
  std::string tls_cert, tls_key;
  std::vector<std::string> allowed_hosts;
  std::vector<std::string> allowed_origins;
  std::size_t max_header_bytes = 64 * 1024;
  std::string log_format = "text";
  bool access_log = false;
  ClusterFlags cluster;
};

// What the flags ask for, checked: every option of the server, the store and the background.
struct ServePlan {
  http::ServerOptions server;
  StoreOptions store;
  BackgroundOptions background;
  DescriptorBudget descriptors;
};

// Reads the flags into a plan; a bad flag is kInvalidArgument naming it (exit code kExitUsage).
StatusOr<ServePlan> PlanServe(const ServeFlags& f) {
  JOBSTORE_ASSIGN_OR_RETURN(auto listen, ParseHostPort(f.listen));
  JOBSTORE_ASSIGN_OR_RETURN(auto sync, eventlog::ParseSyncMode(f.sync));
  JOBSTORE_ASSIGN_OR_RETURN(auto ttl_ms, ParseDurationMs(f.job_ttl));
  JOBSTORE_ASSIGN_OR_RETURN(auto heartbeat_ms, ParseDurationMs(f.sse_heartbeat));
  JOBSTORE_ASSIGN_OR_RETURN(auto client_timeout_ms, ParseDurationMs(f.client_timeout));
  JOBSTORE_ASSIGN_OR_RETURN(auto compaction_ms, ParseDurationMs(f.compaction_interval));
  JOBSTORE_ASSIGN_OR_RETURN(auto snapshot_ms, ParseDurationMs(f.snapshot_interval));
  std::int64_t retention_ms = -1;  // keep
  if (f.history_retention != "keep") {
    JOBSTORE_ASSIGN_OR_RETURN(retention_ms, ParseDurationMs(f.history_retention));
  }
  if (compaction_ms < 100) return InvalidArgument("--compaction-interval must be at least 100ms");
  if (f.tls_cert.empty() != f.tls_key.empty()) {
    return InvalidArgument("--tls-cert and --tls-key go together");
  }

  ServePlan plan;
  http::ServerOptions& options = plan.server;
  options.host = listen.host;
  options.port = listen.port;
  options.max_body_bytes = f.max_body_bytes;
  options.access_log = f.access_log;
  options.json_logs = f.log_format == "json";
  plan.descriptors = PlanDescriptors(f.max_connections);
  options.max_threads = plan.descriptors.connections;
  options.max_waiting_connections = plan.descriptors.waiting;
  options.min_threads = std::min(options.min_threads, options.max_threads);
  options.max_head_bytes = std::max<std::size_t>(f.max_header_bytes, 1024);
  options.allowed_hosts = f.allowed_hosts;
  options.allowed_origins = f.allowed_origins;
  options.limits.default_ttl_seconds = ttl_ms / kMsPerSecond;
  options.tls_cert_file = f.tls_cert;
  options.tls_key_file = f.tls_key;
  options.sse_heartbeat_ms = static_cast<int>(std::clamp<std::int64_t>(heartbeat_ms, 10, 3600000));
  options.client_timeout_ms =
      static_cast<int>(std::clamp<std::int64_t>(client_timeout_ms, 100, 3600000));
  if (!f.token_file.empty()) {
    JOBSTORE_ASSIGN_OR_RETURN(options.token, ReadSecretFile(f.token_file));
  }

  plan.store.data_dir = f.data_dir;
  plan.store.log.sync = sync;
  plan.store.commit_delay = std::chrono::microseconds(f.commit_delay_us);
  plan.store.track_retained_history = retention_ms >= 0;
  plan.background.compaction_interval_ms = compaction_ms;
  plan.background.snapshot_interval_ms = snapshot_ms;
  if (retention_ms >= 0) plan.background.history_retention_ms = retention_ms;
  // A schedule's occurrence is created from its template as POST /jobs would create it.
  plan.background.occurrence_job = [limits = options.limits](const Schedule& schedule,
                                                             const std::string& job_id,
                                                             TimeMs now) {
    return http::ParseCreate(schedule.job, job_id, limits, now);
  };
  return plan;
}

// Says at start what an operator would want to know before exposing the server.
void WarnAboutTheSetup(const ServeFlags& f, const ServePlan& plan) {
  const http::ServerOptions& options = plan.server;
  const DescriptorBudget& fds = plan.descriptors;
  if (fds.connections < f.max_connections) {
    spdlog::warn("--max-connections {} lowered to {}: the open-file limit is {} and {} "
                 "descriptors stay reserved for the log (raise the limit, e.g. LimitNOFILE=)",
                 f.max_connections, fds.connections, fds.limit, fds.reserved);
  }
  if (!options.token && !IsLoopback(options.host)) {
    spdlog::warn("listening on {} with no --token-file: anyone who reaches this address can "
                 "read and change every job", options.host);
  }
  if (options.host == "0.0.0.0" || options.host == "::" || options.host == "[::]") {
    spdlog::warn("listening on the wildcard address {}: any Host header is accepted (no guard "
                 "against DNS rebinding); listen on one address to have Host checked",
                 options.host);
  }
}

// SIGINT and SIGTERM are taken by one thread with sigwait, so every other thread starts with them
// blocked: call before starting any thread. SIGPIPE is ignored: a client that disconnects
// mid-response must not kill the server (httplib ignores it too; this covers every writer).
sigset_t BlockShutdownSignals() {
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// Logged once the API answers, so whoever waits for these lines can use the server at once.
void LogServing(const ServeFlags& f, const ServePlan& plan, const http::ApiServer& server,
                const JobStore& store) {
  const DescriptorBudget& fds = plan.descriptors;
  const RecoveryInfo& r = store.recovery();
  spdlog::info("connections: {} served at once, {} more may wait (open-file limit {}, {} "
               "reserved for the log)", fds.connections, fds.waiting, fds.limit, fds.reserved);
  LogFields fields({{"port", server.port()},
                    {"seq", store.log().LastSeq()},
                    {"jobs", r.jobs_loaded},
                    {"duration_ms", std::round(r.log_open_ms + r.replay_ms)}});
  spdlog::info("jobstore serving {}://{}:{} data dir '{}' (sync {}), seq {}..{}, {} jobs loaded, "
               "snapshot at seq {}, {} events replayed; started in {:.0f} ms (RocksDB open {:.0f}, "
               "snapshot {:.0f}, log replay {:.0f}, indexes {:.0f})",
               f.tls_cert.empty() ? "http" : "https", plan.server.host, server.port(), f.data_dir,
               f.sync, store.log().FirstSeq(), store.log().LastSeq(), r.jobs_loaded,
               r.snapshot_seq, r.events_replayed, r.log_open_ms + r.replay_ms, r.log_open_ms,
               r.snapshot_ms, r.log_ms, r.index_ms);
}

// After the connections drained: a snapshot for a fast next start (best effort), then the
// store's close, which finishes queued writes and syncs the log (its error is the exit's).
Status CloseStore(JobStore& store) {
  if (Status st = store.WriteSnapshot(); !st.ok()) {
    spdlog::warn("no snapshot at shutdown ({}); the next start replays the log", st.message());
  }
  const std::uint64_t last_seq = store.log().LastSeq();
  if (Status st = store.Close(); !st.ok()) {
    return Status(st.code(), "closing the log failed: " + st.message());
  }
  spdlog::info("stopped cleanly at seq {}", last_seq);
  return Status::Ok();
}

int Serve(const ServeFlags& f) {
  if (Status st = ConfigureLogFormat(f.log_format); !st.ok()) {
    spdlog::error("{}", st.message());
    return kExitUsage;
  }
  auto plan = PlanServe(f);
  if (!plan.ok()) {
    spdlog::error("{}", plan.status().message());
    return kExitUsage;
  }
  WarnAboutTheSetup(f, *plan);
  SizeFutexHashForThreads(plan->server.max_threads);
  sigset_t signals = BlockShutdownSignals();

  http::ApiServer server(plan->server);
  if (Status st = server.Bind(); !st.ok()) {
    spdlog::error("{}", st.message());
    return kExitFailure;
  }
  // Several instances: join the cluster first; the store then writes through the stream.
  std::unique_ptr<ClusterMembership> cluster;
  if (!f.cluster.nats.empty()) {
    auto joined = JoinCluster(f.cluster, plan->server.host + ":" + std::to_string(server.port()));
    if (!joined.ok()) {
      spdlog::error("--nats: {}", joined.status().message());
      return joined.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
    }
    cluster = std::move(joined).value();
    plan->store.appender = cluster->appender();
    plan->background.is_writer = [c = cluster.get()] { return c->is_writer(); };
    // The writer decides what history goes and every copy deletes it on the writer's marker,
    // so every copy keeps the list of expired jobs whose history is still in the log.
    plan->store.track_retained_history = true;
    plan->background.replicate_retention = [c = cluster.get()](std::uint64_t expired_seq) {
      return c->PublishRetention(expired_seq);
    };
    server.SetCluster(cluster->Hooks());
  }
  std::thread serving([&] { server.Run(); });  // answers 503 until the store is ready
  auto store = JobStore::Open(plan->store);
  if (!store.ok()) {
    spdlog::error("cannot open the store in '{}': {}", f.data_dir, store.status().message());
    server.Stop();
    serving.join();
    return kExitFailure;
  }
  for (const auto& warning : (*store)->recovery().warnings) spdlog::warn("{}", warning);
  // Built before the copy follows the stream: it indexes the deadlines of the jobs loaded so
  // far, then hears of every replicated batch (a batch between the two would be missed).
  BackgroundWorker background(**store, plan->background);
  if (cluster) {
    if (Status st = cluster->Start(**store); !st.ok()) {
      spdlog::error("--nats: {}", st.message());
      server.Stop();
      serving.join();
      return kExitFailure;
    }
  }
  background.Start();
  server.SetBackground(&background);
  server.SetStore(store->get());
  LogServing(f, *plan, server, **store);

  std::thread stopper([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::info("received {}, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    background.Stop();  // no timer decides anything while the connections drain
    server.Stop();      // releases waiters; idle keep-alive connections close within 5 s
  });
  serving.join();
  if (cluster) cluster->Stop();  // hands the writer's lease over, stops the tail
  Status closed = CloseStore(**store);
  if (stopper.joinable()) stopper.join();
  if (!closed.ok()) {
    spdlog::error("{}", closed.message());
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

void AddServeCommand(CLI::App& app, std::function<int()>& run) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve the REST API on a data directory");
  AddFlag(*cmd, "--config", flags->config,
          "TOML or INI file holding any of these flags as `key = value` (data-dir = \"/var/lib/"
          "jobstore\"); the command line and JOBSTORE_* variables win over it");
  AddFlag(*cmd, "--data-dir", flags->data_dir, "Where the event log lives (created 0700)");
  AddFlag(*cmd, "--listen", flags->listen, "HOST:PORT to listen on (port 0: any free port)");
  AddFlag(*cmd, "--sync", flags->sync,
          "always: fsync every acknowledged write; batch: fsync every 100 ms (a power loss may "
          "lose that window, a crash loses nothing); none: benchmarks only")
      ->check(CLI::IsMember({"always", "batch", "none"}));
  AddFlag(*cmd, "--commit-delay-us", flags->commit_delay_us,
          "Microseconds a group commit may wait for more writes when many writers are at once "
          "(as many as the last group held, or as the twelve or more that wrote lately), so one "
          "fsync acknowledges more of them (0: off). Less CPU per write on a busy server, more "
          "latency on a quiet one; a lone writer never waits")
      ->check(CLI::Range(0, 100000));
  AddFlag(*cmd, "--job-ttl", flags->job_ttl,
          "How long a finished job stays before it expires, when it names no ttl_seconds");
  AddFlag(*cmd, "--compaction-interval", flags->compaction_interval,
          "How often finished jobs past their TTL are expired (and retention applied)");
  AddFlag(*cmd, "--history-retention", flags->history_retention,
          "How long the events of expired jobs stay in the log (keep: forever)");
  AddFlag(*cmd, "--snapshot-interval", flags->snapshot_interval,
          "How often the projection is snapshotted for a fast start (0: only at shutdown)");
  AddFlag(*cmd, "--tls-cert", flags->tls_cert, "PEM certificate: serve HTTPS (with --tls-key)");
  AddFlag(*cmd, "--tls-key", flags->tls_key, "PEM private key of --tls-cert");
  AddFlag(*cmd, "--token-file", flags->token_file,
          "File holding the bearer token that /api/v1 requires (none: no auth)");
  AddFlag(*cmd, "--max-body-bytes", flags->max_body_bytes, "Largest request body accepted");
  AddFlag(*cmd, "--max-connections", flags->max_connections,
          "Connections served at once (each long-poll holds one); up to 1024 more wait, then new "
          "ones get 503. Lowered at start to fit the open-file limit");
  AddFlag(*cmd, "--max-header-bytes", flags->max_header_bytes,
          "Largest request line plus headers of one request (beyond: 431)");
  AddFlag(*cmd, "--allowed-hosts", flags->allowed_hosts,
          "Host names clients may use besides the listen address and the loopback names "
          "(guards against DNS rebinding); '*' allows any")
      ->delimiter(',');
  AddFlag(*cmd, "--allowed-origins", flags->allowed_origins,
          "Origins (scheme://host[:port]) whose web pages may call the API, with CORS; others' "
          "cross-site requests get 403. '*' allows any")
      ->delimiter(',');
  AddFlag(*cmd, "--client-timeout", flags->client_timeout,
          "A client that sends or reads nothing for this long (or idles on a kept-alive "
          "connection) is dropped (100ms..1h)");
  AddFlag(*cmd, "--sse-heartbeat", flags->sse_heartbeat,
          "How often an idle SSE stream sends a comment line (keeps proxies from closing it)");
  AddFlag(*cmd, "--log-format", flags->log_format,
          "text: a line per message; json: one object a line ({\"time\",\"level\",\"message\"}, "
          "access lines with their fields) for log shippers")
      ->check(CLI::IsMember({"text", "json"}));
  cmd->add_flag("--access-log", flags->access_log,
                "Log every answered request: method, path without its query, status, duration, "
                "bytes, client address, route (never a token or a body)")
      ->envname(EnvNameFor("--access-log"));
  AddClusterFlags(*cmd, flags->cluster);
  cmd->callback([flags, cmd, &run] {
    if (!flags->config.empty()) {
      if (Status st = ApplyConfigFile(*cmd, flags->config); !st.ok()) {
        run = [st] {
          spdlog::error("{}", st.message());
          return kExitUsage;
        };
        return;
      }
    }
    run = [flags] { return Serve(*flags); };
  });
}

}  // namespace jobstore::cli
