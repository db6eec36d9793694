// `jobstore serve --nats ...`: several instances on one replicated log (replication/). Without
// --nats nothing here runs. A binary built without NATS (JOBSTORE_WITH_NATS=OFF) refuses --nats.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "jobstore/core/status.h"
#include "jobstore/http/api_server.h"
#include "jobstore/store/job_store.h"

namespace jobstore::cli {

struct ClusterFlags {
  std::string nats;  // comma-separated URLs; empty: one instance on the embedded log
  std::string stream = "JOBSTORE";
  int replicas = 3;
  std::string instance;  // default: the API's host:port
  std::string writer_lease = "10s";
  std::string stream_max_age = "keep";  // a duration, or keep (every message, for ever)
  std::string nats_creds;
  std::string nats_tls_ca;
};

void AddClusterFlags(CLI::App& cmd, ClusterFlags& flags);

// The running instance's part of the cluster. Lifecycle: Join before the store opens (the store
// writes through appender()), Start once it is open, Stop before it closes.
class ClusterMembership {
 public:
  virtual ~ClusterMembership() = default;
  virtual eventlog::LogAppender* appender() = 0;
  virtual Status Start(JobStore& store) = 0;
  virtual void Stop() = 0;
  virtual bool is_writer() const = 0;
  // The writer's retention marker (BackgroundOptions::replicate_retention).
  virtual Status PublishRetention(std::uint64_t expired_seq) = 0;
  virtual http::ClusterHooks Hooks() = 0;
};

// `address`: this instance's API as other instances reach it ("host:port").
StatusOr<std::unique_ptr<ClusterMembership>> JoinCluster(const ClusterFlags& flags,
                                                         const std::string& address);

}  // namespace jobstore::cli
