#include "write_forwarding.h"

#include "jobstore/http/request_parsing.h"

#include <strings.h>

#include <charconv>
#include <chrono>
#include <thread>
#include <cstdio>
#include <memory>
#include <random>
#include <unordered_map>

namespace jobstore::http {

namespace {

constexpr double kApplyWaitSeconds = 10;
// Long enough for the longest long-poll a write route takes (claim ?wait, at most 60 s).
constexpr int kForwardReadTimeoutSeconds = 75;
// How long a write on a follower waits for a writer to be known (an election) before its 503.
constexpr int kWriterWaitMs = 3000;
// A write whose writer did not answer (it died mid-request, or could not be reached) is sent
// again, with the same request id, until a writer answers or this much time has passed since
// the first failure: the writer's lease (10 s by default) and an election.
constexpr int kRetryForMs = 20000;
constexpr int kRetryPauseMs = 100;

// "<instance>-<128 random bits>": unique across instances and restarts.
std::string NewRequestId(const std::string& instance) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  char hex[33];
  std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(random()),
                static_cast<unsigned long long>(random()));
  return instance + "-" + hex;
}

// The writer's X-Jobstore-Seq header.
std::optional<std::uint64_t> ParseSeq(const std::string& text) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

// One kept-alive client per writer address and connection thread.
std::unordered_map<std::string, std::unique_ptr<httplib::Client>>& Clients() {
  thread_local std::unordered_map<std::string, std::unique_ptr<httplib::Client>> clients;
  return clients;
}

httplib::Client& ClientFor(const std::string& address) {
  auto& client = Clients()[address];
  if (!client) {
    client = std::make_unique<httplib::Client>("http://" + address);
    client->set_connection_timeout(2, 0);
    client->set_read_timeout(kForwardReadTimeoutSeconds, 0);
    client->set_write_timeout(5, 0);
    client->set_keep_alive(true);
    client->set_tcp_nodelay(true);  // a body written after its head must not wait for an ACK
  }
  return *client;
}

// After a failed request its client goes (its destructor closes the connection); the next
// request opens a new one. Not Client::stop(), which is for another thread to abort a request
// (ThreadSanitizer saw it unlock a mutex it had not locked when called after a failure).
void DropClient(const std::string& address) { Clients().erase(address); }

bool RefusedAsNotWriter(const httplib::Response& answer) {
  return answer.status == 503 && answer.has_header(kNotWriterHeader);
}

bool Hop(const std::string& name) {
  // Headers that describe this connection, or that the writer sets itself.
  static const char* const kHop[] = {"Host", "Content-Length", "Connection", "Keep-Alive",
                                     "Transfer-Encoding", "Upgrade", "TE", "Trailer",
                                     "Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode",
                                     "Sec-Fetch-Dest", "Referer", "REMOTE_ADDR", "REMOTE_PORT",
                                     "LOCAL_ADDR", "LOCAL_PORT"};
  for (const char* h : kHop) {
    if (strcasecmp(h, name.c_str()) == 0) return true;
  }
  return false;
}

}  // namespace

std::optional<Status> ForwardToWriter(ServerContext& ctx, JobStore& store,
                                      const httplib::Request& req, httplib::Response& res,
                                      std::string* request_id) {
  if (req.has_header(kForwardedHeader)) {
    // The sender's view of the lease names this instance. No writer in this instance's view
    // either (the lease is its own and its epoch is opening, or an election): wait briefly.
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWriterWaitMs);
    while (!ctx.cluster->is_writer() && ctx.cluster->writer_address().empty() &&
           std::chrono::steady_clock::now() < until && !ctx.stopping.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (ctx.cluster->is_writer()) return std::nullopt;  // served here, under the sender's id
    res.set_header(kNotWriterHeader, ctx.cluster->instance);
    return Unavailable("this instance is not the writer (the lease moved); retry");
  }
  httplib::Request out;
  out.method = req.method;
  out.path = req.target.empty() ? req.path : req.target;
  for (const auto& [name, value] : req.headers) {
    if (!Hop(name)) out.headers.emplace(name, value);
  }
  out.headers.emplace(kForwardedHeader, ctx.cluster->instance);
  // The write's id for every attempt (a client's own, or a new one): a repeat after a lost
  // answer is answered from what the first attempt made.
  *request_id = req.has_header(kRequestIdHeader) ? req.get_header_value(kRequestIdHeader)
                                                  : NewRequestId(ctx.cluster->instance);
  if (!req.has_header(kRequestIdHeader)) out.headers.emplace(kRequestIdHeader, *request_id);
  out.body = req.body;

  // Until a writer answers, or the time for an election (and a dead writer's lease) runs out,
  // counted from the first attempt that failed (a claim may long-poll for a minute first).
  auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(kRetryForMs);
  bool failed_once = false;
  bool maybe_taken = false;  // an attempt reached a writer that did not answer
  // Since the first 503 from an instance that does not write: how long to keep trying when no
  // attempt may have been taken (else until give_up).
  std::optional<std::chrono::steady_clock::time_point> refused_until;
  std::string address;
  std::optional<httplib::Result> result;
  for (bool first = true;; first = false) {
    address = ctx.cluster->writer_address();
    // An election under way: wait briefly for a writer before giving up.
    const auto wait_until = std::min(give_up, std::chrono::steady_clock::now() +
                                                  std::chrono::milliseconds(kWriterWaitMs));
    while (address.empty() && !ctx.cluster->is_writer() &&
           std::chrono::steady_clock::now() < wait_until && !ctx.stopping.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      address = ctx.cluster->writer_address();
    }
    if (ctx.cluster->is_writer()) return std::nullopt;  // this instance took over: serve here
    if (address.empty() && (first || std::chrono::steady_clock::now() >= give_up)) {
      if (maybe_taken) break;
      return Unavailable("no instance holds the writer's lease right now (an election is under "
                         "way); retry in a few seconds");
    }
    if (!address.empty()) {
      if (first) ctx.forwarded.fetch_add(1, std::memory_order_relaxed);
      httplib::Result attempt = ClientFor(address).send(out);
      if (attempt && !RefusedAsNotWriter(*attempt)) {
        result.emplace(std::move(attempt));
        break;
      }
      ctx.forward_failures.fetch_add(1, std::memory_order_relaxed);
      if (attempt) {  // the instance the lease named does not write: nothing applied there
        const auto now = std::chrono::steady_clock::now();
        if (!refused_until) refused_until = now + std::chrono::milliseconds(kWriterWaitMs);
        if (!maybe_taken && now >= *refused_until) {
          result.emplace(std::move(attempt));  // its 503, as it came
          break;
        }
      } else {
        DropClient(address);
        if (!failed_once) {
          failed_once = true;
          give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(kRetryForMs);
        }
        if (attempt.error() != httplib::Error::Connection) maybe_taken = true;
      }
    }
    if (std::chrono::steady_clock::now() >= give_up || ctx.stopping.load()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(kRetryPauseMs));
  }
  if (!result) {
    if (!maybe_taken) {
      return Unavailable("the writer at " + address + " cannot be reached; retry");
    }
    return Internal("no writer answered within " + std::to_string(kRetryForMs / 1000) +
                    " s (the last at " + address + "); the write may have been taken: read "
                    "before retrying");
  }
  // Read-your-writes here: wait until this copy applied what the writer answered with.
  if (auto seq = ParseSeq((*result)->get_header_value("X-Jobstore-Seq")); seq && *seq > 0) {
    store.projection().WaitForSeq(*seq - 1, DeadlineAfter(kApplyWaitSeconds));
  }
  res.status = (*result)->status;
  for (const auto& [name, value] : (*result)->headers) {
    if (Hop(name) || strcasecmp(name.c_str(), "X-Jobstore-Seq") == 0 ||
        strcasecmp(name.c_str(), "Content-Type") == 0 ||
        strcasecmp(name.c_str(), "X-Content-Type-Options") == 0) {  // this server sets these
      continue;
    }
    res.set_header(name, value);
  }
  res.set_content(std::move((*result)->body), (*result)->get_header_value("Content-Type"));
  return Status::Ok();
}

Status WaitForMinSeq(JobStore& store, const httplib::Request& req) {
  JOBSTORE_ASSIGN_OR_RETURN(auto seq, ParseUintParam(req.params, kMinSeqParam));
  if (!seq || *seq == 0 || store.projection().AppliedSeq() >= *seq) return Status::Ok();
  const std::uint64_t applied =
      store.projection().WaitForSeq(*seq - 1, DeadlineAfter(kApplyWaitSeconds));
  if (applied >= *seq) return Status::Ok();
  return Unavailable("this instance has applied events up to seq " + std::to_string(applied) +
                     ", not yet min_seq " + std::to_string(*seq) + "; retry");
}

}  // namespace jobstore::http
