// The event feed: GET /events (long-poll), and Server-Sent Events for the feed and for one job.
#include <memory>
#include <optional>

#include "jobstore/core/json_codec.h"
#include "jobstore/store/job_store.h"
#include "server_context.h"
#include "thread_cache.h"
#include "woken_answer_gate.h"

namespace jobstore::http {
namespace {

// Which events a feed reader wants.
struct FeedFilter {
  std::optional<EventType> type;
  std::optional<std::string> job_id;
  bool Matches(const Event& e) const {
    return (!type || e.type == *type) && (!job_id || e.job_id == *job_id);
  }
};

StatusOr<FeedFilter> ParseFilter(const QueryParams& q) {
  FeedFilter f;
  if (auto it = q.find("type"); it != q.end()) {
    f.type = ParseEventType(it->second);
    if (!f.type) return InvalidArgument("unknown event type '" + it->second.substr(0, 64) + "'");
  }
  if (auto it = q.find("job_id"); it != q.end()) {
    JOBSTORE_RETURN_IF_ERROR(ValidateJobId(it->second));
    f.job_id = it->second;
  }
  return f;
}

Status CheckParams(const QueryParams& q, std::initializer_list<const char*> known) {
  for (const auto& [k, v] : q) {
    bool ok = k == kMinSeqParam;
    for (const char* n : known) ok = ok || k == n;
    if (!ok) return InvalidArgument("unknown query parameter '" + k.substr(0, 64) + "'");
  }
  return Status::Ok();
}

// A resume point past the newest event names history this log never had (a cursor from
// another store, or a forged one): 400 rather than a wait for seqs that may never come.
Status CheckNotBeyondHead(JobStore& store, std::uint64_t after, const char* name) {
  const std::uint64_t head = store.log().LastSeq();
  if (after <= head) return Status::Ok();
  return InvalidArgument(std::string(name) + "=" + std::to_string(after) +
                         " is beyond the newest seq " + std::to_string(head));
}

// 410 with the first retained seq when `after` lies before the retained history.
bool RejectTruncated(JobStore& store, std::uint64_t after, httplib::Response& res) {
  const std::uint64_t first = store.log().FirstSeq();
  if (first == 0 || after >= first - 1) return false;
  WriteError(res,
             Status(StatusCode::kTruncated,
                    "events up to seq " + std::to_string(first - 1) +
                        " are no longer retained; resume from after=" + std::to_string(first - 1) +
                        " (first retained seq " + std::to_string(first) + ")"),
             {{"first", first}});
  return true;
}

// Reads up to `limit` matching events with seq > *cursor. Moves *cursor past everything read
// (matching or not), so a filtered reader never rescans. A feed of one job reads that job's
// events through the log's job index, not the whole log.
Status ReadFeed(JobStore& store, const FeedFilter& filter, std::size_t limit,
                std::uint64_t* cursor, std::vector<Event>* out) {
  if (filter.job_id) {
    const std::uint64_t applied = store.projection().AppliedSeq();
    JOBSTORE_ASSIGN_OR_RETURN(auto events, store.log().ReadJob(*filter.job_id, *cursor + 1));
    for (Event& e : events) {
      if (out->size() >= limit) return Status::Ok();
      *cursor = e.seq;
      if (filter.Matches(e)) out->push_back(std::move(e));
    }
    *cursor = std::max(*cursor, applied);  // nothing of this job up to there is left unread
    return Status::Ok();
  }
  return store.log().Scan(*cursor + 1, UINT64_MAX, [&](Event&& e) {
    *cursor = e.seq;
    if (filter.Matches(e)) out->push_back(std::move(e));
    return out->size() < limit;
  });
}

// Waits for what a feed reader at `cursor` could want next: an event of its job when it
// follows one job (only that job's events wake it), else any event.
void WaitForFeed(JobStore& store, const FeedFilter& filter, std::uint64_t cursor,
                 Deadline deadline) {
  SetThreadCacheAsideForWait();
  if (filter.job_id) {
    store.projection().WaitForJobEvent(*filter.job_id, cursor, deadline);
  } else {
    store.projection().WaitForSeq(cursor, deadline);
  }
}

Status GetEvents(ServerContext& ctx, JobStore& store, const httplib::Request& req,
                 httplib::Response& res) {
  JOBSTORE_RETURN_IF_ERROR(CheckParams(req.params, {"after", "limit", "wait", "type", "job_id"}));
  JOBSTORE_ASSIGN_OR_RETURN(auto after, ParseUintParam(req.params, "after"));
  JOBSTORE_ASSIGN_OR_RETURN(auto limit, ParseUintParam(req.params, "limit"));
  if (limit && (*limit < 1 || *limit > ctx.options.limits.max_events_limit)) {
    return InvalidArgument("limit must be from 1 to " +
                           std::to_string(ctx.options.limits.max_events_limit));
  }
  JOBSTORE_ASSIGN_OR_RETURN(auto wait, ParseWait(req.params, ctx.options.limits));
  JOBSTORE_ASSIGN_OR_RETURN(auto filter, ParseFilter(req.params));
  const std::uint64_t from = after.value_or(0);
  JOBSTORE_RETURN_IF_ERROR(CheckNotBeyondHead(store, from, "after"));
  if (RejectTruncated(store, from, res)) return Status::Ok();

  std::uint64_t cursor = from;
  std::vector<Event> events;
  const Deadline deadline = DeadlineAfter(wait.value_or(0));
  std::optional<WokenAnswerTurn> turn;  // after each wait, until the next
  for (;;) {
    JOBSTORE_RETURN_IF_ERROR(ReadFeed(store, filter, limit.value_or(100), &cursor, &events));
    if (!events.empty() || std::chrono::steady_clock::now() >= deadline ||
        store.projection().IsShutdown()) {
      break;
    }
    turn.reset();
    WaitForFeed(store, filter, cursor, deadline);
    turn.emplace();
  }
  Json list = Json::array();
  for (const Event& e : events) list.push_back(EventToJson(e));
  WriteJson(res, 200,
            {{"events", std::move(list)},
             {"next_after", events.empty() ? from : events.back().seq},
             {"head", store.log().LastSeq()},
             {"first", store.log().FirstSeq()}});
  return Status::Ok();
}

std::string SseFrame(const Event& e) {
  return "id: " + std::to_string(e.seq) + "\nevent: " + std::string(EventTypeName(e.type)) +
         "\ndata: " + EventToJson(e).dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n";
}

// Where a stream starts: Last-Event-ID (a reconnecting EventSource) wins over ?after=.
StatusOr<std::uint64_t> StreamStart(const httplib::Request& req) {
  if (auto last = Header(req, "Last-Event-ID")) {
    QueryParams q = {{"Last-Event-ID", *last}};
    JOBSTORE_ASSIGN_OR_RETURN(auto v, ParseUintParam(q, "Last-Event-ID"));
    return *v;
  }
  JOBSTORE_ASSIGN_OR_RETURN(auto after, ParseUintParam(req.params, "after"));
  return after.value_or(0);
}

// The state of one open stream, owned by the content provider.
struct Stream {
  JobStore* store;
  ServerContext* ctx;
  FeedFilter filter;
  std::optional<std::string> job_id;  // a per-job stream
  std::uint64_t cursor;               // the last seq sent (or skipped)
  std::chrono::steady_clock::time_point next_heartbeat;

  // Sends what is new, or waits for it up to the next heartbeat. false ends the stream.
  bool Step(httplib::DataSink& sink) {
    if (ctx->stopping.load() || store->projection().IsShutdown()) {
      sink.done();
      return true;
    }
    std::vector<Event> events;
    Status st = job_id ? ReadJobTail(&events) : ReadFeed(*store, filter, 500, &cursor, &events);
    if (!st.ok()) return false;  // the stream ends; the client reconnects with Last-Event-ID
    std::string out;
    for (const Event& e : events) out += SseFrame(e);
    const auto now = std::chrono::steady_clock::now();
    if (out.empty() && now >= next_heartbeat) out = ": heartbeat\n\n";
    if (!out.empty()) {
      next_heartbeat = now + std::chrono::milliseconds(ctx->options.sse_heartbeat_ms);
      if (!sink.write(out.data(), out.size())) return false;
      if (job_id && !events.empty() && events.back().type == EventType::kExpired) {
        sink.done();  // the job is gone; nothing more will come
      }
      return true;
    }
    if (job_id) {
      JobPtr job = store->projection().Get(*job_id);
      if (!job) {
        sink.done();  // expired and its history already sent
        return true;
      }
      if (job->last_seq <= cursor) {
        SetThreadCacheAsideForWait();
        store->projection().WaitForVersion(*job_id, job->version, next_heartbeat);
      }
    } else {
      WaitForFeed(*store, filter, cursor, next_heartbeat);
    }
    return true;
  }

  Status ReadJobTail(std::vector<Event>* out) {
    JOBSTORE_ASSIGN_OR_RETURN(auto events, store->log().ReadJob(*job_id, cursor + 1));
    for (Event& e : events) {
      cursor = e.seq;
      if (filter.Matches(e)) out->push_back(std::move(e));
    }
    return Status::Ok();
  }
};

Handler StreamRoute(ServerContext& ctx, bool per_job) {
  return [&ctx, per_job](JobStore& store, const httplib::Request& req,
                         httplib::Response& res) -> Status {
    JOBSTORE_RETURN_IF_ERROR(CheckParams(req.params, {"after", "type", "job_id"}));
    JOBSTORE_ASSIGN_OR_RETURN(auto start, StreamStart(req));
    JOBSTORE_RETURN_IF_ERROR(CheckNotBeyondHead(store, start, "after (or Last-Event-ID)"));
    JOBSTORE_ASSIGN_OR_RETURN(auto filter, ParseFilter(req.params));
    auto stream = std::make_shared<Stream>(Stream{&store, &ctx, filter, std::nullopt, start, {}});
    if (per_job) {
      JOBSTORE_ASSIGN_OR_RETURN(auto id, PathJobId(req));
      JobPtr job = store.projection().Get(id);
      if (!job) return NotFound("no job '" + id + "'");
      stream->job_id = id;
      stream->cursor = std::max(start, job->created_seq - 1);
    } else if (RejectTruncated(store, start, res)) {
      return Status::Ok();
    }
    stream->next_heartbeat =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(ctx.options.sse_heartbeat_ms);
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [stream](std::size_t, httplib::DataSink& sink) { return stream->Step(sink); });
    return Status::Ok();
  };
}

}  // namespace

void RegisterEventRoutes(Router& r, ServerContext& ctx) {
  r.Add("GET", "/api/v1/events", "/api/v1/events",
        [&ctx](JobStore& s, const httplib::Request& req, httplib::Response& res) {
          return GetEvents(ctx, s, req, res);
        });
  r.Add("GET", "/api/v1/events/stream", "/api/v1/events/stream", StreamRoute(ctx, false));
  r.Add("GET", "/api/v1/jobs/{id}/stream", R"(/api/v1/jobs/([^/]+)/stream)", StreamRoute(ctx, true));
}

}  // namespace jobstore::http
