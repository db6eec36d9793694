// Fuzzes the checks every request head passes before its body is read: the framing screen
// (request_framing.h) on the head as received, and the Host and Origin policy
// (origin_policy.h). The input is the raw head; it is also parsed into headers the simple way
// (name, colon, value), so that the parsed and the raw views may disagree, as httplib's and the
// raw text can. Invariants: nothing crashes; a head the screen accepts has at most one
// Content-Length, never beside Transfer-Encoding, no body on a GET, and no Range left on an API
// path.
#include <cstdlib>
#include <string>
#include <string_view>

#include <httplib.h>

#include "fuzz_check.h"
#include "origin_policy.h"
#include "request_framing.h"

namespace {

httplib::Request ParseLoosely(std::string_view head) {
  httplib::Request req;
  const std::size_t eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  const std::size_t a = line.find(' '), b = line.rfind(' ');
  req.method = std::string(line.substr(0, a));
  if (a != std::string_view::npos && b > a) {
    req.path = std::string(line.substr(a + 1, b - a - 1));
    req.version = std::string(line.substr(b + 1));
  }
  std::size_t pos = eol;
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    const std::size_t next = head.find("\r\n", pos + 2);
    const std::string_view h = head.substr(pos + 2, next == head.npos ? head.npos : next - pos - 2);
    pos = next;
    if (h.empty()) break;  // the blank line ends the head; what follows is body, as in httplib
    const std::size_t colon = h.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = h.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (!value.empty()) req.headers.emplace(std::string(h.substr(0, colon)), std::string(value));
  }
  if (req.has_header("Range")) req.ranges.push_back({0, 1});
  return req;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The server hands the screen the head as read: up to and including the blank line.
  std::string_view head(reinterpret_cast<const char*>(data), size);
  if (const std::size_t end = head.find("\r\n\r\n"); end != std::string_view::npos) {
    head = head.substr(0, end + 4);
  }
  httplib::Request req = ParseLoosely(head);
  jobstore::http::FramingPolicy framing;
  framing.max_body_bytes = 1024;
  const jobstore::Status st = jobstore::http::ScreenRequestHead(req, framing, head);
  if (st.ok()) {
    FUZZ_CHECK(req.headers.count("Content-Length") <= 1);
    FUZZ_CHECK(!(req.has_header("Content-Length") && req.has_header("Transfer-Encoding")));
    FUZZ_CHECK(req.method != "GET" || !req.has_header("Content-Length") ||
               std::strtoull(req.get_header_value("Content-Length").c_str(), nullptr, 10) == 0);
    FUZZ_CHECK(req.ranges.empty() || jobstore::http::IsStaticAssetPath(req.path));
  }
  jobstore::http::OriginPolicy policy{"127.0.0.1", false, {"jobs.internal"}, {"https://app.example"}};
  (void)jobstore::http::CheckHost(req, policy);
  (void)jobstore::http::CheckOrigin(req, policy);
  (void)jobstore::http::HostName(req.get_header_value("Host"));
  return 0;
}
