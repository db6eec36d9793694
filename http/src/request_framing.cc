// The head checks of request_framing.h.
#include "request_framing.h"

#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cstdint>

namespace jobstore::http {
namespace {

// RFC 9110 §5.6.2: tchar.
bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) !=
                                  std::string_view::npos;
  });
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && s.size() <= 19 &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

Status Malformed(const std::string& why) {
  return InvalidArgument("malformed HTTP request: " + why);
}

// What the raw header lines say about framing.
struct RawFraming {
  std::size_t hosts = 0, lengths = 0, encodings = 0;
};

Status ScreenRawHead(std::string_view head, RawFraming* f) {
  for (std::size_t i = 0; i < head.size(); ++i) {
    const bool bare_lf = head[i] == '\n' && (i == 0 || head[i - 1] != '\r');
    const bool bare_cr = head[i] == '\r' && (i + 1 == head.size() || head[i + 1] != '\n');
    if (bare_lf || bare_cr) return Malformed("every line must end in CRLF, and only there");
  }
  std::size_t pos = head.find("\r\n");  // past the request line
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    const std::size_t begin = pos + 2;
    const std::size_t end = head.find("\r\n", begin);
    const std::string_view line = head.substr(begin, end == std::string_view::npos ? head.npos
                                                                                 : end - begin);
    pos = end;
    if (line.empty()) break;  // the end of the head
    const std::size_t colon = line.find(':');
    const std::string_view name = line.substr(0, colon);
    if (colon == std::string_view::npos || !IsToken(name)) {
      return Malformed("a header line is not 'name: value' with a token name (no spaces "
                       "before ':', no folded lines)");
    }
    const std::string_view value = Trim(line.substr(colon + 1));
    if (EqualsIgnoreCase(name, "Host")) {
      ++f->hosts;
    } else if (EqualsIgnoreCase(name, "Content-Length")) {
      ++f->lengths;
      if (!AllDigits(value)) return Malformed("Content-Length must be a decimal number of bytes");
    } else if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
      ++f->encodings;
      if (!EqualsIgnoreCase(value, "chunked")) {
        return Malformed("the only Transfer-Encoding accepted is 'chunked'");
      }
    } else if (EqualsIgnoreCase(name, "Idempotency-Key") && value.empty()) {
      return InvalidArgument("Idempotency-Key must be 1 to 256 characters");
    }
  }
  if (f->hosts > 1) return Malformed("more than one Host header");
  if (f->lengths > 1) return Malformed("more than one Content-Length");
  if (f->encodings > 1) return Malformed("more than one Transfer-Encoding");
  if (f->encodings > 0 && f->lengths > 0) {
    return Malformed("Content-Length and Transfer-Encoding together");
  }
  return Status::Ok();
}

}  // namespace

bool IsStaticAssetPath(const std::string& path) {
  return path == "/" || path.rfind("/dashboard/", 0) == 0;
}

Status ScreenRequestHead(httplib::Request& req, const FramingPolicy& policy,
                         std::string_view head) {
  RawFraming f;
  JOBSTORE_RETURN_IF_ERROR(ScreenRawHead(head, &f));
  if (f.hosts == 0 && req.version == "HTTP/1.1") return Malformed("HTTP/1.1 needs a Host header");
  if (f.encodings > 0 && req.version != "HTTP/1.1") {
    return Malformed("Transfer-Encoding needs HTTP/1.1");
  }
  const std::uint64_t length =
      f.lengths ? std::strtoull(req.get_header_value("Content-Length").c_str(), nullptr, 10) : 0;
  const bool has_body = length > 0 || f.encodings > 0;
  if (has_body && req.method != "POST" && req.method != "PATCH") {
    return InvalidArgument("a " + req.method.substr(0, 16) + " request takes no body");
  }
  if (length > policy.max_body_bytes) {
    return Status(StatusCode::kPayloadTooLarge,
                  "the body is larger than " + std::to_string(policy.max_body_bytes) + " bytes");
  }
  if (has_body && req.has_header("Content-Encoding") &&
      !EqualsIgnoreCase(req.get_header_value("Content-Encoding"), "identity")) {
    return Status(StatusCode::kUnsupportedMediaType,
                  "compressed request bodies are not accepted; send the JSON as it is");
  }
  if (f.lengths == 0 && f.encodings == 0) req.set_header("Content-Length", "0");
  if (!IsStaticAssetPath(req.path) || req.ranges.size() > 1) req.ranges.clear();
  return Status::Ok();
}

}  // namespace jobstore::http
