// Start time of a large store, with and without a projection snapshot.
//   startup_bench [JOBS (1000000)] [DIR (/tmp/jobstore-startup-bench)] [keep|snapshot-only]
// Writes JOBS jobs of 5 events each (created, started, updated, updated, completed), then times
// JobStore::Open replaying the whole log, writes a snapshot, and times Open again. JOBS 0 reuses
// the store already in DIR (made by an earlier run with `keep`), for profiling the opens;
// `snapshot-only` then times only the open with its snapshot.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "jobstore/store/job_store.h"

using namespace jobstore;

namespace {

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void Fill(const std::string& dir, long jobs) {
  StoreOptions o;
  o.data_dir = dir;
  o.log.sync = eventlog::SyncMode::kNone;
  o.use_snapshots = false;
  auto store = std::move(JobStore::Open(o).value());
  std::vector<Command> batch;
  for (long i = 0; i < jobs; ++i) {
    std::string id = "job-" + std::to_string(i);
    CreateJob c;
    c.job_id = id;
    c.type = i % 3 ? "skill_creation" : "report";
    c.labels = {{"team", i % 2 ? "ml" : "web"}};
    c.input = {{"prompt", "Create a skill for parsing invoices"}};
    batch.push_back({id, {}, {}, c});
    batch.push_back({id, {}, {}, StartJob{"worker-1", 0}});
    batch.push_back({id, {}, {}, UpdateJob{Json{{"percent", 50}}, std::nullopt, std::nullopt}});
    batch.push_back({id, {}, {}, UpdateJob{std::nullopt, Json{{"step", i % 7}}, std::nullopt}});
    if (i % 5) batch.push_back({id, {}, {}, CompleteJob{Json{{"ok", true}}}});
    else batch.push_back({id, {}, {}, RequestHitl{"clarify", Json{{"q", "?"}}, std::nullopt}});
    if (batch.size() >= 10000) {
      auto r = store->SubmitAll(std::move(batch));
      if (!r.ok()) std::fprintf(stderr, "fill: %s\n", r.status().ToString().c_str());
      batch.clear();
    }
  }
  if (!batch.empty()) (void)store->SubmitAll(std::move(batch));
  (void)store->CompactLog();
}

void TimeOpen(const std::string& dir, bool snapshots, const char* label) {
  StoreOptions o;
  o.data_dir = dir;
  o.use_snapshots = snapshots;
  auto t0 = std::chrono::steady_clock::now();
  auto store = std::move(JobStore::Open(o).value());
  double s = Seconds(t0);
  const auto& r = store->recovery();
  std::printf("{\"case\":\"%s\",\"seconds\":%.3f,\"jobs\":%llu,\"events_replayed\":%llu,"
              "\"snapshot_seq\":%llu,\"events_per_second\":%.0f,\"snapshot_ms\":%.0f,"
              "\"log_ms\":%.0f,\"index_ms\":%.0f,\"rocksdb_open_ms\":%.0f}\n",
              label, s, static_cast<unsigned long long>(r.jobs_loaded),
              static_cast<unsigned long long>(r.events_replayed),
              static_cast<unsigned long long>(r.snapshot_seq), r.events_replayed / s,
              r.snapshot_ms, r.log_ms, r.index_ms, r.log_open_ms);
  if (!snapshots) {
    auto t1 = std::chrono::steady_clock::now();
    Status st = store->WriteSnapshot();
    std::printf("{\"case\":\"write_snapshot\",\"seconds\":%.3f,\"ok\":%s}\n", Seconds(t1),
                st.ok() ? "true" : "false");
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  long jobs = argc > 1 ? std::stol(argv[1]) : 1000000;
  std::string dir = argc > 2 ? argv[2] : "/tmp/jobstore-startup-bench";
  const std::string mode = argc > 3 ? argv[3] : "";
  const bool keep = mode == "keep" || mode == "snapshot-only";
  if (jobs > 0) {
    std::filesystem::remove_all(dir);
    auto t0 = std::chrono::steady_clock::now();
    Fill(dir, jobs);
    std::printf("{\"case\":\"fill\",\"jobs\":%ld,\"seconds\":%.1f}\n", jobs, Seconds(t0));
  }
  if (mode != "snapshot-only") TimeOpen(dir, false, "open_full_replay");
  TimeOpen(dir, true, "open_with_snapshot");
  if (!keep) std::filesystem::remove_all(dir);
}
