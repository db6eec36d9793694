// Internal: the checks on a request's head that decide how its body is framed, run once the
// head is parsed and before any byte of the body is read (GuardedServer's HeadScreen).
//
// A server behind a proxy must agree with the proxy on where each request ends, or a request
// hidden in another's body runs unseen (request smuggling, RFC 9112 §6.3 and §11.2). So this
// refuses (400 unless said) what two parsers could read two ways, and bodies on requests that
// take none. On the head as received (httplib drops empty header values and percent-decodes
// the rest, so its parsed headers cannot be trusted for this):
//   - a bare LF or a bare CR (some parsers end a line there); a header name that is not a token ("Content-Length :", a
//     folded line); more than one Host; an HTTP/1.1 request without Host;
//   - more than one Content-Length, or one that is not 1*DIGIT ("abc", "-1", "2, 2", empty);
//   - Transfer-Encoding other than exactly one "chunked", with HTTP/1.0, or beside
//     Content-Length;
//   - an empty Idempotency-Key (it would otherwise be silently ignored);
// and on the parsed request:
//   - a body (Content-Length > 0 or chunked) on anything but POST and PATCH;
//   - a Content-Length over the body limit (413, unread), and any Content-Encoding but
//     identity (415: a compressed body could inflate past every limit).
// It normalizes what remains: a request with neither header has no body (Content-Length: 0 is
// set so nothing waits for one), and Range is dropped everywhere except one range on the
// dashboard's static files (JSON is never ranged; many ranges amplify a small request).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <httplib.h>

#include "jobstore/core/status.h"

namespace jobstore::http {

struct FramingPolicy {
  std::size_t max_body_bytes = 1 << 20;
};

// `head` is the request line and header lines as received, up to the empty line. OK, or the
// refusal to answer (the caller closes the connection after it).
Status ScreenRequestHead(httplib::Request& req, const FramingPolicy& policy,
                         std::string_view head);

// The dashboard's page and files: the only answers that honour a (single) Range.
bool IsStaticAssetPath(const std::string& path);

}  // namespace jobstore::http
