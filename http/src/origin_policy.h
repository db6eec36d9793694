// Internal: which browsers' requests the server takes. The defence against a web page in the
// operator's browser driving a local jobstore (cross-site request forgery) and against reading
// it through DNS rebinding, as Redis's protected mode and Jupyter's Host/XSRF checks do.
//
//   - Host: the name in a request's Host header must be one the server answers for: the
//     listen address, localhost, 127.0.0.1, [::1], or one of --allowed-hosts. A listen address
//     of 0.0.0.0 or :: answers any name (the start-up warning says so). Otherwise 421
//     misdirected_request: a rebound name (attacker.example resolving to 127.0.0.1) reaches the
//     socket but not the API.
//   - Origin: a request that carries Origin is taken only when Origin is the server's own
//     ("<scheme>://<Host>") or listed in --allowed-origins ("*": any). A request without Origin
//     but with Sec-Fetch-Site: cross-site is refused too. Both refusals are 403 forbidden. The
//     dashboard's page and files (GET/HEAD outside /api/v1) are exempt: they hold no data.
//     curl, the clients and the dashboard's own fetches send no foreign Origin and pass.
//   - CORS: only for --allowed-origins. A preflight (OPTIONS with Origin and
//     Access-Control-Request-Method) from such an origin gets 204 with the methods and headers
//     the API takes; its real requests get Access-Control-Allow-Origin. No other answer carries
//     a CORS header.
#pragma once

#include <string>
#include <vector>

#include <httplib.h>

#include "jobstore/core/status.h"

namespace jobstore::http {

struct OriginPolicy {
  std::string listen_host;                   // as given to --listen
  bool tls = false;                          // the server's own scheme is https
  std::vector<std::string> allowed_hosts;    // --allowed-hosts: names ("*": any)
  std::vector<std::string> allowed_origins;  // --allowed-origins: "https://host[:port]" ("*")
};

// The host name of a Host header value ("Example.com:8000" -> "example.com", "[::1]:80" ->
// "::1"), lowercased; empty when malformed.
std::string HostName(std::string_view host_header);

// OK, or kMisdirectedRequest naming the Host and how to allow it.
Status CheckHost(const httplib::Request& req, const OriginPolicy& policy);
// OK, or kForbidden saying why and how to allow the origin.
Status CheckOrigin(const httplib::Request& req, const OriginPolicy& policy);
// True when `req` carries an Origin listed in --allowed-origins (then CORS headers apply).
bool IsAllowedCrossOrigin(const httplib::Request& req, const OriginPolicy& policy);
// Adds the CORS headers of an allowed cross-origin request (preflight: also methods, headers
// and max-age).
void AddCorsHeaders(const httplib::Request& req, httplib::Response& res, bool preflight);

}  // namespace jobstore::http
