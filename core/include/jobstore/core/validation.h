// Shape checks shared by the HTTP layer, the tools and Decide.
#pragma once

#include <string_view>

#include "jobstore/core/job.h"
#include "jobstore/core/status.h"

namespace jobstore {

struct Limits {
  std::size_t max_labels = 64;
  std::size_t max_label_key_bytes = 128;
  std::size_t max_label_value_bytes = 1024;
  std::size_t max_json_depth = 64;
  // Per request body. A parsed value takes 16 bytes and an object or array a heap block besides,
  // so 1 MiB of "[{},{},...]" built ~62 MB: these caps keep what one job's body can cost within
  // ~7 MB whatever its shape (measured at the caps; http/request_parsing.cc checks them).
  std::size_t max_json_containers = 10000;  // objects and arrays
  std::size_t max_json_values = 100000;     // every value and object member
  std::int64_t max_ttl_seconds = 10LL * 365 * 24 * 3600;
  std::int64_t max_lease_seconds = 24 * 3600;
  std::int64_t max_hitl_timeout_seconds = 30LL * 24 * 3600;
  std::uint32_t max_attempts = 1000;
  std::int64_t max_delay_seconds = 10LL * 365 * 24 * 3600;  // run_at and delay_seconds
  std::int64_t max_backoff_seconds = 30LL * 24 * 3600;      // a retry policy's waits
  std::size_t max_short_string_bytes = 256;  // type, user_id, worker, codes, request ids
  std::size_t max_text_bytes = 64 * 1024;    // description, messages, reasons
};

// [A-Za-z0-9._:-]{1,128}, and not a reserved word ("batch", "claim").
Status ValidateJobId(std::string_view id);
// Labels: an object of string -> string within the limits. With allow_null, null values
// (removals in a PATCH) are accepted.
Status ValidateLabels(const Json& labels, const Limits& limits, bool allow_null);
// Nesting depth of arrays/objects (a scalar has depth 0).
std::size_t JsonDepth(const Json& j);
// A progress object: optional "percent" number in [0, 100], optional string "phase"/"message";
// other keys are kept as given.
Status ValidateProgress(const Json& progress);

}  // namespace jobstore
