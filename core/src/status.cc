#include "jobstore/core/status.h"

#include <cstdio>
#include <cstdlib>

namespace jobstore {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid_argument";
    case StatusCode::kUnauthenticated: return "unauthenticated";
    case StatusCode::kForbidden: return "forbidden";
    case StatusCode::kNotFound: return "not_found";
    case StatusCode::kInvalidTransition: return "invalid_transition";
    case StatusCode::kAlreadyExists: return "already_exists";
    case StatusCode::kStaleRequest: return "stale_request";
    case StatusCode::kTruncated: return "truncated";
    case StatusCode::kVersionMismatch: return "version_mismatch";
    case StatusCode::kPayloadTooLarge: return "payload_too_large";
    case StatusCode::kUnsupportedMediaType: return "unsupported_media_type";
    case StatusCode::kHeadersTooLarge: return "headers_too_large";
    case StatusCode::kMisdirectedRequest: return "misdirected_request";
    case StatusCode::kIdempotencyKeyReused: return "idempotency_key_reused";
    case StatusCode::kUnavailable: return "unavailable";
    case StatusCode::kCorruption: return "corruption";
    case StatusCode::kInternal: return "internal";
  }
  return "internal";
}

namespace internal {
void DieOnBadStatusOrAccess(const Status& status) {
  std::fprintf(stderr, "jobstore: value() of a StatusOr holding an error: %s\n",
               status.ToString().c_str());
  std::abort();
}
}  // namespace internal

std::string Status::ToString() const {
  if (ok()) return "ok";
  return std::string(StatusCodeName(code_)) + ": " + message_;
}

}  // namespace jobstore
