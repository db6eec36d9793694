// Internal: a write that reached an instance that is not the writer (several instances on one
// replicated log) goes to the writer's API as it came, and its answer comes back as it went,
// once this instance has applied what it wrote (read-your-writes on the instance the client
// talks to).
//
//   - Every forwarded write carries a request id (X-Jobstore-Request-Id; the client's own if it
//     sent one). The writer stamps it into the events it makes (Job::forward_id), so a repeat of
//     the write, on this writer or the next, is answered from what the first one made.
//   - No writer known (an election under way): waits up to 3 s for one, then 503 unavailable,
//     nothing sent.
//   - Sent, but no answer (the writer died mid-request), or the writer cannot be reached: sent
//     again with the same id until a writer answers, for up to 20 s after the first failure (a
//     dead writer's lease and the election). Then 503 if no attempt reached a writer, else 500 internal: the write may
//     have been taken.
//   - This instance became the writer meanwhile: the request is served here, with the id
//     (*request_id), so a first attempt that the old writer took is not applied again.
//   - A request that was forwarded once is never forwarded again (X-Jobstore-Forwarded). The
//     instance it reached, when it does not write, waits up to 3 s for its own epoch if the
//     lease is its own (just elected, catching up), else answers 503 with X-Jobstore-Not-Writer:
//     nothing applied there. The forwarding instance takes such an answer as it takes no answer:
//     it sends again to the writer its lease names, for up to 3 s, or, when an earlier attempt
//     may have been taken, for the full 20 s, so a write the dead writer took is never answered
//     503 (the client would retry it into a second job).
#pragma once

#include <optional>
#include <string>

#include <httplib.h>

#include "jobstore/core/status.h"
#include "jobstore/store/job_store.h"
#include "server_context.h"

namespace jobstore::http {

inline constexpr char kForwardedHeader[] = "X-Jobstore-Forwarded";
// The forwarding instance's id for the write: a repeat of it (after the writer died without
// answering) is answered from what the first one made, never applied twice.
inline constexpr char kRequestIdHeader[] = "X-Jobstore-Request-Id";
// On a 503 to a forwarded write: the instance that answered does not write (not yet, or no
// longer), so nothing was applied there; the forwarding instance tries the writer again.
inline constexpr char kNotWriterHeader[] = "X-Jobstore-Not-Writer";

// nullopt: this instance became the writer while it waited for one; serve the request here,
// with the header X-Jobstore-Request-Id set to *request_id.
std::optional<Status> ForwardToWriter(ServerContext& ctx, JobStore& store,
                                      const httplib::Request& req, httplib::Response& res,
                                      std::string* request_id);

// GET ...?min_seq=N: waits (at most 10 s) until this instance has applied seq N.
// kInvalidArgument for a malformed value; kUnavailable when the wait ran out.
Status WaitForMinSeq(JobStore& store, const httplib::Request& req);

}  // namespace jobstore::http
