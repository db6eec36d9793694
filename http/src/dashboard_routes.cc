// The web dashboard: GET / and its two assets, served from the binary. The page talks to the
// API like any client (and asks for the token when the API answers 401), so these routes stay
// open; they hold no data.
#include "dashboard_assets.h"
#include "server_context.h"

namespace jobstore::http {
namespace {

// The page may load only its own files and talk only to its own origin, and no other site may
// frame it (clickjacking its Cancel button). X-Frame-Options for browsers without CSP 2.
constexpr char kContentSecurityPolicy[] =
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'";

void Serve(httplib::Server& server, const std::string& path, const char* body, const char* type) {
  server.Get(path, [body, type, path](const httplib::Request&, httplib::Response& res) {
    SetCurrentRoute(path);
    res.set_header("Cache-Control", "no-cache");
    res.set_header("Content-Security-Policy", kContentSecurityPolicy);
    res.set_header("X-Frame-Options", "DENY");
    res.set_header("Cross-Origin-Resource-Policy", "same-origin");
    res.set_content(body, type);
  });
}

}  // namespace

void RegisterDashboard(httplib::Server& server) {
  Serve(server, "/", kDashboard_index_html, "text/html; charset=utf-8");
  Serve(server, "/dashboard/app.js", kDashboard_app_js, "text/javascript; charset=utf-8");
  Serve(server, "/dashboard/style.css", kDashboard_style_css, "text/css; charset=utf-8");
}

}  // namespace jobstore::http
