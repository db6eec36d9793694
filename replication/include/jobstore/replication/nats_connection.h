// One connection to a NATS cluster with its JetStream context (nats.c, Debian's libnats).
//
// The connection reconnects by itself (to any of the URLs), but with no reconnect buffer: once
// the connection saw its server go (connected() is false), a publish fails at once with
// NATS_INSUFFICIENT_BUFFER instead of being sent later, so a write the store answered 503 for can
// never reach the stream afterwards (SCALE-OUT.md). A publish made before the connection noticed
// went to the socket: its outcome is unknown (JetStreamAppender answers it 500, never 503).
//
// Thread-safety: nats.c connections and contexts are safe from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nats/nats.h>

#include "jobstore/core/status.h"

namespace jobstore::replication {

struct NatsOptions {
  std::vector<std::string> urls;  // nats://host:port, any member of the cluster
  std::string name;               // the connection's name in NATS monitoring (the instance)
  std::string creds_file;         // --nats-creds: a NATS credentials file (JWT + nkey)
  std::string tls_ca_file;        // --nats-tls-ca: trust these CAs, and require TLS
  std::int64_t timeout_ms = 2000;  // connect timeout and JetStream API wait
};

// "a,b,c" -> {"a","b","c"} (spaces trimmed, empties dropped).
std::vector<std::string> SplitUrls(std::string_view urls);

// A nats.c status as ours: timeouts, no responders and lost connections are kUnavailable.
Status FromNats(natsStatus s, std::string_view what, jsErrCode js_error = static_cast<jsErrCode>(0));

class NatsConnection {
 public:
  static StatusOr<std::unique_ptr<NatsConnection>> Connect(const NatsOptions& options);
  ~NatsConnection();
  NatsConnection(const NatsConnection&) = delete;
  NatsConnection& operator=(const NatsConnection&) = delete;

  natsConnection* nc() const { return nc_; }
  jsCtx* js() const { return js_; }
  bool connected() const { return natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED; }
  const NatsOptions& options() const { return options_; }

 private:
  explicit NatsConnection(NatsOptions options) : options_(std::move(options)) {}
  const NatsOptions options_;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
};

}  // namespace jobstore::replication
