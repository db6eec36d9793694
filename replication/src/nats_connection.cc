#include "jobstore/replication/nats_connection.h"

#include <spdlog/spdlog.h>

#include "jobstore/core/split.h"

namespace jobstore::replication {

std::vector<std::string> SplitUrls(std::string_view urls) {
  std::vector<std::string> out;
  for (std::string_view part : SplitComma(urls)) {
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    if (!part.empty()) out.emplace_back(part);
  }
  return out;
}

Status FromNats(natsStatus s, std::string_view what, jsErrCode js_error) {
  if (s == NATS_OK) return Status::Ok();
  std::string message = std::string(what) + ": " + natsStatus_GetText(s);
  // nats.c keeps the server's own words for the last error of this thread.
  if (const char* detail = nats_GetLastError(nullptr); detail && *detail && detail != natsStatus_GetText(s)) {
    message += " (" + std::string(detail) + ")";
  }
  if (js_error != 0) message += " (JetStream error " + std::to_string(js_error) + ")";
  switch (s) {
    case NATS_TIMEOUT:
    case NATS_NO_RESPONDERS:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NO_SERVER:
    case NATS_STALE_CONNECTION:
    case NATS_IO_ERROR:
    case NATS_INSUFFICIENT_BUFFER:
      return Unavailable(message);
    case NATS_NOT_FOUND:
      return NotFound(message);
    default:
      return Status(js_error != 0 ? StatusCode::kUnavailable : StatusCode::kInternal, message);
  }
}

StatusOr<std::unique_ptr<NatsConnection>> NatsConnection::Connect(const NatsOptions& options) {
  if (options.urls.empty()) return InvalidArgument("--nats names no server URL");
  std::unique_ptr<NatsConnection> conn(new NatsConnection(options));
  natsOptions* opts = nullptr;
  JOBSTORE_RETURN_IF_ERROR(FromNats(natsOptions_Create(&opts), "creating NATS options"));
  std::unique_ptr<natsOptions, void (*)(natsOptions*)> owned(opts, natsOptions_Destroy);
  std::vector<const char*> urls;
  for (const std::string& u : options.urls) urls.push_back(u.c_str());
  JOBSTORE_RETURN_IF_ERROR(FromNats(
      natsOptions_SetServers(opts, urls.data(), static_cast<int>(urls.size())), "--nats"));
  if (!options.name.empty()) natsOptions_SetName(opts, options.name.c_str());
  natsOptions_SetTimeout(opts, options.timeout_ms);
  natsOptions_SetAllowReconnect(opts, true);
  natsOptions_SetMaxReconnect(opts, -1);  // forever: the instance keeps serving reads meanwhile
  natsOptions_SetReconnectWait(opts, 250);
  // See the header: nothing is sent late. nats.c checks the buffer's length before it appends
  // (`len >= size` refuses), so a size of 1 still took the first publish made while reconnecting
  // and sent it once reconnected (that publish then timed out: an unknown outcome, 500, where
  // 503 was due). 0 refuses every one.
  natsOptions_SetReconnectBufSize(opts, 0);
  natsOptions_SetRetryOnFailedConnect(opts, false, nullptr, nullptr);
  if (!options.creds_file.empty()) {
    JOBSTORE_RETURN_IF_ERROR(FromNats(
        natsOptions_SetUserCredentialsFromFiles(opts, options.creds_file.c_str(), nullptr),
        "--nats-creds '" + options.creds_file + "'"));
  }
  if (!options.tls_ca_file.empty()) {
    JOBSTORE_RETURN_IF_ERROR(FromNats(natsOptions_SetSecure(opts, true), "NATS TLS"));
    JOBSTORE_RETURN_IF_ERROR(
        FromNats(natsOptions_LoadCATrustedCertificates(opts, options.tls_ca_file.c_str()),
                 "--nats-tls-ca '" + options.tls_ca_file + "'"));
  }
  JOBSTORE_RETURN_IF_ERROR(FromNats(natsConnection_Connect(&conn->nc_, opts),
                                    "connecting to NATS at " + options.urls.front()));
  jsOptions js_opts;
  jsOptions_Init(&js_opts);
  js_opts.Wait = options.timeout_ms;
  JOBSTORE_RETURN_IF_ERROR(
      FromNats(natsConnection_JetStream(&conn->js_, conn->nc_, &js_opts), "opening JetStream"));
  return conn;
}

NatsConnection::~NatsConnection() {
  if (js_) jsCtx_Destroy(js_);
  if (nc_) {
    natsConnection_Close(nc_);
    natsConnection_Destroy(nc_);
  }
}

}  // namespace jobstore::replication
