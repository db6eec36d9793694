// The Host and Origin checks of origin_policy.h.
#include "origin_policy.h"

#include <algorithm>
#include <cctype>

namespace jobstore::http {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool Contains(const std::vector<std::string>& list, const std::string& item) {
  return std::any_of(list.begin(), list.end(),
                     [&](const std::string& e) { return e == "*" || Lower(e) == item; });
}

bool IsWildcardAddress(const std::string& host) {
  return host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]";
}

bool IsApiPath(const std::string& path) { return path.rfind("/api/v1", 0) == 0; }

// A safe request for something that holds no data: the dashboard's page and files, health.
bool IsExempt(const httplib::Request& req) {
  return (req.method == "GET" || req.method == "HEAD") && !IsApiPath(req.path);
}

}  // namespace

std::string HostName(std::string_view host) {
  if (host.empty()) return "";
  if (host.front() == '[') {  // [v6]:port
    const auto close = host.find(']');
    if (close == std::string_view::npos) return "";
    return Lower(host.substr(1, close - 1));
  }
  const auto colon = host.find(':');
  return Lower(host.substr(0, colon));
}

Status CheckHost(const httplib::Request& req, const OriginPolicy& policy) {
  if (IsWildcardAddress(policy.listen_host)) return Status::Ok();
  const std::string header = req.get_header_value("Host");
  const std::string name = HostName(header);
  std::string listen = Lower(policy.listen_host);  // an address: 127.0.0.1, ::1 or [::1]
  if (listen.size() > 1 && listen.front() == '[') listen = listen.substr(1, listen.size() - 2);
  if (!name.empty() && (name == listen || name == "localhost" || name == "127.0.0.1" ||
                        name == "::1" || Contains(policy.allowed_hosts, name))) {
    return Status::Ok();
  }
  return Status(StatusCode::kMisdirectedRequest,
                "this server does not answer for the host '" + header.substr(0, 200) +
                    "' (a guard against DNS rebinding); add it to --allowed-hosts if clients "
                    "reach the server by that name");
}

bool IsAllowedCrossOrigin(const httplib::Request& req, const OriginPolicy& policy) {
  if (!req.has_header("Origin") || policy.allowed_origins.empty()) return false;
  return Contains(policy.allowed_origins, Lower(req.get_header_value("Origin")));
}

Status CheckOrigin(const httplib::Request& req, const OriginPolicy& policy) {
  if (IsExempt(req)) return Status::Ok();
  if (req.has_header("Origin")) {
    const std::string origin = Lower(req.get_header_value("Origin"));
    const std::string own = std::string(policy.tls ? "https://" : "http://") +
                            Lower(req.get_header_value("Host"));
    if (origin == own || IsAllowedCrossOrigin(req, policy)) return Status::Ok();
    return Status(StatusCode::kForbidden,
                  "cross-origin request from '" + origin.substr(0, 200) +
                      "' refused (a guard against cross-site request forgery); start the "
                      "server with --allowed-origins " + origin.substr(0, 200) +
                      " to let pages from there use the API");
  }
  if (req.get_header_value("Sec-Fetch-Site") == "cross-site") {
    return Status(StatusCode::kForbidden,
                  "cross-site request refused (Sec-Fetch-Site: cross-site, a guard against "
                  "cross-site request forgery); pages of other sites cannot use this API "
                  "unless their origin is in --allowed-origins");
  }
  return Status::Ok();
}

void AddCorsHeaders(const httplib::Request& req, httplib::Response& res, bool preflight) {
  res.set_header("Access-Control-Allow-Origin", req.get_header_value("Origin"));
  res.set_header("Vary", "Origin");
  if (preflight) {
    res.set_header("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE");
    res.set_header("Access-Control-Allow-Headers",
                   "Authorization, Content-Type, If-Match, Idempotency-Key, X-User-Id, "
                   "Last-Event-ID, Prefer");
    res.set_header("Access-Control-Max-Age", "600");
  } else {
    res.set_header("Access-Control-Expose-Headers", "ETag, Location");
  }
}

}  // namespace jobstore::http
