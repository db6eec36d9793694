#include "access_log.h"

#include <cmath>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "jobstore/core/time_format.h"

namespace jobstore::http {
namespace {

std::shared_ptr<spdlog::logger> AccessLogger() {
  std::shared_ptr<spdlog::logger> logger = spdlog::get("access");
  return logger ? logger : spdlog::default_logger();
}

// A path as the client sent it may hold control characters (decoded %0A): in a text line they
// would forge another line, so they become '?'.
std::string Printable(const std::string& s) {
  std::string out = s.substr(0, 2048);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return out;
}

}  // namespace

void LogAccess(const httplib::Request& req, const httplib::Response& res, std::string_view route,
               std::chrono::steady_clock::duration took, bool json) {
  const double ms = std::chrono::duration<double, std::milli>(took).count();
  const std::string remote = req.remote_addr + ":" + std::to_string(req.remote_port);
  if (json) {
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    nlohmann::ordered_json line = {{"time", FormatRfc3339(now)},
                                   {"level", "info"},
                                   {"message", "request"},
                                   {"method", req.method},
                                   {"path", req.path.substr(0, 2048)},
                                   {"status", res.status},
                                   {"duration_ms", std::round(ms * 1000) / 1000},
                                   {"bytes", res.body.size()},
                                   {"remote", remote},
                                   {"route", std::string(route)}};
    AccessLogger()->info(
        "{}", line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
    return;
  }
  AccessLogger()->info("access {} {} {} {:.3f} ms {} B from {} ({})", Printable(req.method),
                       Printable(req.path), res.status, ms, res.body.size(), remote, route);
}

}  // namespace jobstore::http
