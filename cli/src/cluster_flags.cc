#include "cluster_flags.h"

#include "flags.h"
#include "jobstore/core/time_format.h"

#ifdef JOBSTORE_WITH_NATS
#include "jobstore/replication/cluster_node.h"
#endif

namespace jobstore::cli {

void AddClusterFlags(CLI::App& cmd, ClusterFlags& f) {
  AddFlag(cmd, "--nats", f.nats,
          "NATS server URLs (comma-separated, e.g. nats://127.0.0.1:4222,...): several instances "
          "share one replicated JetStream log; unset: this instance's embedded log");
  AddFlag(cmd, "--stream", f.stream, "With --nats: the JetStream stream that is the log");
  AddFlag(cmd, "--replicas", f.replicas,
          "With --nats: the stream's replicas when this instance creates it")
      ->check(CLI::Range(1, 5));
  AddFlag(cmd, "--instance", f.instance,
          "With --nats: this instance's name, unique in the cluster (default: HOST:PORT of "
          "--listen)");
  AddFlag(cmd, "--writer-lease", f.writer_lease,
          "With --nats: the writer's lease; another instance takes over this long after the "
          "writer dies (plus NATS's election when a NATS server died too)");
  AddFlag(cmd, "--stream-max-age", f.stream_max_age,
          "With --nats: how long the stream keeps a message when this instance creates it (a "
          "duration of at least 2m such as 7d, or keep); an instance whose copy falls further "
          "behind is seeded from a backup");
  AddFlag(cmd, "--nats-creds", f.nats_creds, "With --nats: a NATS credentials file");
  AddFlag(cmd, "--nats-tls-ca", f.nats_tls_ca,
          "With --nats: CA certificates (PEM) to verify the NATS servers with; requires TLS");
}

#ifdef JOBSTORE_WITH_NATS
namespace {

class NatsMembership final : public ClusterMembership {
 public:
  explicit NatsMembership(std::unique_ptr<replication::ClusterNode> node) : node_(std::move(node)) {}
  eventlog::LogAppender* appender() override { return node_->appender(); }
  Status Start(JobStore& store) override { return node_->Start(store); }
  void Stop() override { node_->Stop(); }
  bool is_writer() const override { return node_->is_writer(); }
  Status PublishRetention(std::uint64_t expired_seq) override {
    return node_->PublishRetention(expired_seq);
  }

  http::ClusterHooks Hooks() override {
    replication::ClusterNode* node = node_.get();
    http::ClusterHooks hooks;
    hooks.instance = node->options().instance;
    hooks.is_writer = [node] { return node->is_writer(); };
    hooks.writer_address = [node] {
      auto st = node->status();
      return st.writer ? std::string() : st.writer_address;
    };
    hooks.ready = [node]() -> Status {
      auto st = node->status();
      if (!st.failure.empty()) return Unavailable("this copy stopped following the log: " + st.failure);
      if (!st.caught_up) {
        return Unavailable("catching up with the replicated log: stream seq " +
                           std::to_string(st.applied_stream_seq) + " of " +
                           std::to_string(st.stream_last_seq));
      }
      return Status::Ok();
    };
    hooks.render_metrics = [node](std::string& out) {
      auto st = node->status();
      const auto& c = node->appender_counters();
      auto line = [&](const char* name, const char* help, const char* type, double v) {
        out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
        char buf[256];
        std::snprintf(buf, sizeof buf, "%s{instance=\"%s\"} %.17g\n", name,
                      node->options().instance.c_str(), v);
        out += buf;
      };
      line("jobstore_cluster_writer", "1 while this instance is the writer.", "gauge", st.writer);
      line("jobstore_cluster_connected",
           "1 while this instance's NATS connection is up (0 while it reconnects: writes get 503).",
           "gauge", st.connected);
      line("jobstore_cluster_lag_seqs",
           "Stream messages this copy has not applied yet (as of the last lease round).", "gauge",
           static_cast<double>(st.stream_last_seq > st.applied_stream_seq
                                   ? st.stream_last_seq - st.applied_stream_seq
                                   : 0));
      line("jobstore_cluster_applied_stream_seq", "The stream seq this copy reached.", "gauge",
           static_cast<double>(st.applied_stream_seq));
      line("jobstore_cluster_fence_errors_total",
           "Appends refused because another instance writes.", "counter",
           static_cast<double>(c.fence_errors.load()));
      line("jobstore_cluster_failovers_total", "Times this instance became the writer.",
           "counter", static_cast<double>(c.epochs_opened.load()));
      line("jobstore_cluster_republished_total", "Unanswered publishes sent again.", "counter",
           static_cast<double>(c.republished.load()));
      line("jobstore_cluster_retention_markers_total",
           "Retention markers this instance put in the stream as the writer.", "counter",
           static_cast<double>(c.retention_markers.load()));
      line("jobstore_cluster_retention_events_deleted_total",
           "Events of expired history this copy deleted on the writer's retention markers.",
           "counter", static_cast<double>(st.retention_events_deleted));
    };
    return hooks;
  }

 private:
  std::unique_ptr<replication::ClusterNode> node_;
};

}  // namespace

StatusOr<std::unique_ptr<ClusterMembership>> JoinCluster(const ClusterFlags& f,
                                                         const std::string& address) {
  replication::ClusterOptions options;
  options.nats.urls = replication::SplitUrls(f.nats);
  options.nats.creds_file = f.nats_creds;
  options.nats.tls_ca_file = f.nats_tls_ca;
  options.stream.stream = f.stream;
  options.stream.replicas = f.replicas;
  JOBSTORE_ASSIGN_OR_RETURN(options.stream.writer_lease_ms, ParseDurationMs(f.writer_lease));
  if (f.stream_max_age != "keep") {
    JOBSTORE_ASSIGN_OR_RETURN(options.stream.max_age_ms, ParseDurationMs(f.stream_max_age));
    // NATS refuses a max age below the stream's duplicate window, which makes a re-sent
    // publish safe (replication/stream_setup.h).
    if (options.stream.max_age_ms < replication::kDuplicateWindowMs) {
      return InvalidArgument("--stream-max-age must be at least 2m (the stream's duplicate window), or keep");
    }
  }
  options.instance = f.instance.empty() ? address : f.instance;
  options.address = address;
  if (f.stream.empty() || f.stream.find_first_of(" .*>") != std::string::npos) {
    return InvalidArgument("--stream '" + f.stream + "' must be a JetStream name (no spaces, dots or wildcards)");
  }
  JOBSTORE_ASSIGN_OR_RETURN(auto node, replication::ClusterNode::Connect(std::move(options)));
  return std::unique_ptr<ClusterMembership>(new NatsMembership(std::move(node)));
}
#else
StatusOr<std::unique_ptr<ClusterMembership>> JoinCluster(const ClusterFlags&, const std::string&) {
  return InvalidArgument("--nats: this jobstore was built without NATS (JOBSTORE_WITH_NATS=OFF)");
}
#endif

}  // namespace jobstore::cli
