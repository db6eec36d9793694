// Internal: a write that reached an instance that is not the writer (several instances on one
// replicated log) goes to the writer's API as it came, and its answer comes back as it went,
// once this instance has applied what it wrote (read-your-writes on the instance the client
// talks to).
//
//   - No writer known (an election under way): waits up to 3 s for one, then 503 unavailable,
//     nothing sent.
//   - The writer cannot be connected to: 503, nothing sent.
//   - Sent, but no answer (the writer died mid-request): 500 internal: the write may have been
//     taken; the client reads before it retries (or retries with If-Match / Idempotency-Key).
//   - A request that was forwarded once is never forwarded again (X-Jobstore-Forwarded): an
//     instance that lost the lease meanwhile answers 503 and the client retries.
#pragma once

#include <optional>

#include <httplib.h>

#include "jobstore/core/status.h"
#include "jobstore/store/job_store.h"
#include "server_context.h"

namespace jobstore::http {

inline constexpr char kForwardedHeader[] = "X-Jobstore-Forwarded";

// nullopt: this instance became the writer while it waited for one; serve the request here.
std::optional<Status> ForwardToWriter(ServerContext& ctx, JobStore& store,
                                      const httplib::Request& req, httplib::Response& res);

// GET ...?min_seq=N: waits (at most 10 s) until this instance has applied seq N.
// kInvalidArgument for a malformed value; kUnavailable when the wait ran out.
Status WaitForMinSeq(JobStore& store, const httplib::Request& req);

}  // namespace jobstore::http
