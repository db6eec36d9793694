// Operations routes: /healthz, /readyz, /metrics, and /api/v1/stats, /api/v1/openapi.json.
#include <sys/statvfs.h>

#include <algorithm>
#include <optional>

#include "elastic_thread_pool.h"
#include "jobstore/background/background_worker.h"
#include "jobstore/core/time_format.h"
#include "jobstore/store/job_store.h"
#include "server_context.h"
#include "write_forwarding.h"

namespace jobstore::http {
namespace {

void Gauge(std::string& out, const char* name, const char* help, double value,
           const char* type = "gauge") {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  char line[256];
  std::snprintf(line, sizeof line, "%s %.17g\n", name, value);
  out += line;
}

double DataDirFreeBytes(const JobStore& store) {
  struct statvfs fs {};
  if (::statvfs(store.data_dir().c_str(), &fs) != 0) return 0;
  return static_cast<double>(fs.f_bavail) * static_cast<double>(fs.f_frsize);
}

// Pages through the jobs in pending_hitl (newest first): a scrape costs what is open.
double OldestOpenHitlSeconds(const JobStore& store) {
  ListQuery query;
  query.statuses = {JobStatus::kPendingHitl};
  query.limit = 1000;
  std::optional<TimeMs> oldest;
  for (;;) {
    ListPage page = store.projection().List(query);
    for (const JobPtr& job : page.jobs) {
      if (job->hitl && (!oldest || job->hitl->requested_at < *oldest)) {
        oldest = job->hitl->requested_at;
      }
    }
    if (!page.next_cursor) break;
    query.before = page.next_cursor;
  }
  if (!oldest) return 0;
  return std::max<double>(0, static_cast<double>(store.clock().NowMs() - *oldest) / 1000);
}

std::string RenderMetrics(ServerContext& ctx) {
  std::string out;
  ctx.metrics.Render(out);
  JobStore* store = ctx.store.load();
  const bool ready = ctx.cluster ? store && ctx.cluster->ready().ok() : store && store->writable();
  Gauge(out, "jobstore_ready", "1 once the log is replayed and writable (with --nats: caught up).",
        ready ? 1 : 0);
  if (ctx.cluster) {
    Gauge(out, "jobstore_cluster_forwarded_total", "Writes forwarded to the writer instance.",
          static_cast<double>(ctx.forwarded.load()), "counter");
    Gauge(out, "jobstore_cluster_forward_failures_total",
          "Forwarded writes the writer did not answer.",
          static_cast<double>(ctx.forward_failures.load()), "counter");
    ctx.cluster->render_metrics(out);
  }
  if (ElasticThreadPool* pool = ctx.pool.load()) {
    Gauge(out, "jobstore_http_threads", "Connection threads alive.", pool->threads());
    Gauge(out, "jobstore_http_threads_busy", "Connection threads serving a connection.",
          pool->busy());
    Gauge(out, "jobstore_http_connections_shed_total",
          "Connections answered 503 and closed because every thread and waiting slot was taken.",
          pool->shed(), "counter");
  }
  if (const BackgroundWorker* bg = ctx.background.load()) {
    BackgroundStats b = bg->stats();
    Gauge(out, "jobstore_compaction_runs_total", "Compaction runs.", b.compactions, "counter");
    Gauge(out, "jobstore_compaction_jobs_expired_total", "Finished jobs expired by compaction.",
          b.jobs_expired, "counter");
    Gauge(out, "jobstore_compaction_events_deleted_total",
          "Events of expired jobs deleted by history retention.", b.events_deleted, "counter");
    Gauge(out, "jobstore_compaction_last_duration_seconds", "Duration of the last compaction.",
          b.last_compaction ? b.last_compaction->duration_ms / 1000 : 0);
    Gauge(out, "jobstore_compaction_last_run_timestamp_seconds",
          "Unix time of the last compaction on this instance (0: none yet; with --nats only the "
          "writer compacts).",
          b.last_compaction ? static_cast<double>(b.last_compaction->at) / 1000 : 0);
    Gauge(out, "jobstore_compaction_interval_seconds", "--compaction-interval.",
          static_cast<double>(b.compaction_interval_ms) / 1000);
    Gauge(out, "jobstore_leases_expired_total", "Leases that expired.", b.leases_expired, "counter");
    Gauge(out, "jobstore_hitl_timeouts_total", "HITL requests that timed out.", b.hitl_timed_out,
          "counter");
    Gauge(out, "jobstore_jobs_due_total", "Scheduled jobs that became claimable at their run_at.",
          b.jobs_due, "counter");
    Gauge(out, "jobstore_schedule_runs_total", "Jobs created by schedules.", b.schedule_runs,
          "counter");
    Gauge(out, "jobstore_snapshots_total", "Projection snapshots written.", b.snapshots, "counter");
    Gauge(out, "jobstore_background_errors_total",
          "Background writes, history deletions and snapshots that failed (each is logged).",
          b.errors, "counter");
    Gauge(out, "jobstore_deadlines", "Pending lease, HITL and expiry deadlines.", b.deadlines);
  }
  if (!store) return out;
  const StoreCounters& c = store->counters();
  Gauge(out, "jobstore_events_appended_total", "Events appended to the log.",
        c.events_appended.load(), "counter");
  Gauge(out, "jobstore_append_batches_total", "Group-commit writes.", c.batches.load(), "counter");
  Gauge(out, "jobstore_append_batch_commands_total",
        "Commands over all group-commit writes (divide by batches for the mean batch size).",
        c.batch_commands.load(), "counter");
  Gauge(out, "jobstore_append_errors_total", "Group-commit writes that failed.",
        c.write_errors.load(), "counter");
  Gauge(out, "jobstore_append_seconds_total",
        "Time in durable appends (write and fsync, or the stream's acknowledgement); divided by "
        "jobstore_append_batches_total: the mean durable write.",
        static_cast<double>(c.append_ns.load()) / 1e9, "counter");
  Gauge(out, "jobstore_data_dir_free_bytes",
        "Bytes free for jobstore on the data directory's file system.", DataDirFreeBytes(*store));
  Gauge(out, "jobstore_hitl_oldest_open_seconds",
        "How long the oldest open question to a person has waited (0: none open).",
        OldestOpenHitlSeconds(*store));
  Gauge(out, "jobstore_log_last_seq", "Newest seq in the log.", store->log().LastSeq());
  Gauge(out, "jobstore_log_first_seq", "Oldest retained seq.", store->log().FirstSeq());
  Gauge(out, "jobstore_log_bytes", "Bytes of the data directory.",
        store->log().TotalSizeOnDisk());
  Gauge(out, "jobstore_waiters", "Open long-polls and streams waiting for a change.",
        store->projection().OpenWaiters());
  out += "# HELP jobstore_jobs Live jobs by status.\n# TYPE jobstore_jobs gauge\n";
  auto counts = store->projection().CountsByStatus();
  for (int i = 0; i < kJobStatusCount; ++i) {
    out += "jobstore_jobs{status=\"" + std::string(JobStatusName(static_cast<JobStatus>(i))) +
           "\"} " + std::to_string(counts[i]) + "\n";
  }
  return out;
}

Json LastCompaction(const BackgroundWorker* bg) {
  if (!bg) return nullptr;
  auto last = bg->stats().last_compaction;
  if (!last) return nullptr;
  return {{"at", FormatRfc3339(last->at)},
          {"jobs_expired", last->jobs_expired},
          {"events_deleted", last->events_deleted},
          {"duration_ms", last->duration_ms}};
}

Json Stats(JobStore& store, const BackgroundWorker* bg) {
  Json jobs = Json::object();
  std::size_t total = 0;
  auto counts = store.projection().CountsByStatus();
  for (int i = 0; i < kJobStatusCount; ++i) {
    jobs[std::string(JobStatusName(static_cast<JobStatus>(i)))] = counts[i];
    total += counts[i];
  }
  jobs["total"] = total;
  Json families = Json::object();
  for (const auto& [name, bytes] : store.log().SizesOnDisk()) families[name] = bytes;
  return {{"jobs", jobs},
          {"log",
           {{"first_seq", store.log().FirstSeq()},
            {"last_seq", store.log().LastSeq()},
            {"bytes_on_disk", store.log().TotalSizeOnDisk()},
            {"bytes_by_family", families},
            {"sync", eventlog::SyncModeName(store.log().sync_mode())}}},
          {"last_compaction", LastCompaction(bg)},
          {"waiters", store.projection().OpenWaiters()}};
}

}  // namespace

void RegisterOpsRoutes(Router& r, ServerContext& ctx) {
  r.AddOpen("GET", "/healthz", "/healthz", [](const httplib::Request&, httplib::Response& res) {
    WriteJson(res, 200, {{"status", "ok"}});
  });
  r.AddOpen("GET", "/readyz", "/readyz", [&ctx](const httplib::Request&, httplib::Response& res) {
    JobStore* store = ctx.store.load();
    if (!store) {
      WriteError(res, Unavailable("the log is being replayed"));
    } else if (ctx.stopping.load()) {
      WriteError(res, Unavailable("shutting down"));
    } else if (ctx.cluster) {  // several instances: ready once caught up with the stream
      if (Status st = ctx.cluster->ready(); !st.ok()) {
        WriteError(res, st);
      } else {
        WriteJson(res, 200, {{"status", "ready"}, {"last_seq", store->log().LastSeq()},
                             {"instance", ctx.cluster->instance},
                             {"role", ctx.cluster->is_writer() ? "writer" : "follower"}});
      }
    } else if (!store->writable()) {
      WriteError(res, Unavailable("the log cannot be written (the last write failed)"));
    } else {
      WriteJson(res, 200, {{"status", "ready"}, {"last_seq", store->log().LastSeq()}});
    }
  });
  r.AddOpen("GET", "/metrics", "/metrics", [&ctx](const httplib::Request& req, httplib::Response& res) {
    // min_seq, as on every route: the figures then include that write (once the store is open).
    if (JobStore* store = ctx.store.load(std::memory_order_acquire)) {
      if (Status st = WaitForMinSeq(*store, req); !st.ok()) return WriteError(res, st);
    }
    res.set_content(RenderMetrics(ctx), "text/plain; version=0.0.4; charset=utf-8");
  });
  r.Add("GET", "/api/v1/stats", "/api/v1/stats",
        [&ctx](JobStore& store, const httplib::Request&, httplib::Response& res) {
          WriteJson(res, 200, Stats(store, ctx.background.load()));
          return Status::Ok();
        });
  r.AddOpen("GET", "/api/v1/openapi.json", "/api/v1/openapi.json",
            [](const httplib::Request&, httplib::Response& res) {
              res.set_content(OpenApiDocument(), "application/json; charset=utf-8");
            });
}

}  // namespace jobstore::http
