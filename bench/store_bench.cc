// Micro-benchmarks of the write and read paths (Google Benchmark). They print figures and never
// fail a build; bench/RESULTS.md records them with the command that made them.
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <malloc.h>

#include <atomic>
#include <filesystem>
#include <memory>

#include "jobstore/core/decide.h"
#include "jobstore/core/json_codec.h"
#include "jobstore/eventlog/event_log.h"
#include "jobstore/eventlog/record.h"
#include "jobstore/store/job_store.h"
#include "jobstore/store/internal/prepared_create.h"
#include "plain_group_commit.h"

namespace jobstore {
namespace {

std::string BenchDir(const std::string& name) {
  const char* base = std::getenv("JOBSTORE_BENCH_DIR");
  std::string dir = std::string(base ? base : "/tmp") + "/jobstore-bench-" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

Event SampleEvent(std::uint64_t seq) {
  return Event{seq,
               "job-" + std::to_string(seq % 1000),
               3,
               EventType::kUpdated,
               1'795'867'200'000,
               {{"progress", {{"percent", 42.5}, {"phase", "drafting"}}}, {"data", {{"k", seq}}}}};
}

void BM_EncodeRecord(benchmark::State& state) {
  Event e = SampleEvent(7);
  for (auto _ : state) benchmark::DoNotOptimize(eventlog::EncodeRecord(e));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeRecord);

void BM_DecodeRecord(benchmark::State& state) {
  std::string rec = eventlog::EncodeRecord(SampleEvent(7));
  for (auto _ : state) benchmark::DoNotOptimize(eventlog::DecodeRecord(7, rec));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeRecord);

// Decide + Apply of an update (progress) on a job.
void BM_DecideApply(benchmark::State& state) {
  CreateJob create;
  create.job_id = "job-1";
  Job job = *Apply(nullptr, Decide(nullptr, {"job-1", {}, {}, create}, 1)->front());
  Command update{"job-1", {}, {}, UpdateJob{Json{{"percent", 50}}, std::nullopt, std::nullopt}};
  for (auto _ : state) {
    auto events = Decide(&job, update, 2);
    benchmark::DoNotOptimize(Apply(&job, events->front()));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecideApply);

// A create's Decide, Apply into a shared Job, and its log record: what the writer did for each
// create until the caller's thread took this over (store/internal/prepared_create.h), and still does for
// the other commands. BM_PreparedCreateInWriter is what is left to the writer for a create.
void BM_DecideApplyCreate(benchmark::State& state) {
  std::uint64_t i = 0;
  for (auto _ : state) {
    CreateJob c;
    c.job_id = "j" + std::to_string(i++);
    c.input = Json{{"prompt", "Create a skill for parsing invoices"}};
    auto events = Decide(nullptr, {c.job_id, {}, {}, c}, 2);
    benchmark::DoNotOptimize(std::make_shared<const Job>(*Apply(nullptr, events->front())));
    benchmark::DoNotOptimize(eventlog::EncodeRecord(events->front()));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecideApplyCreate);

// The writer's part of a create prepared by its caller: the id check, the stamp and the log
// record of the serialized data. The creates are prepared, and the jobs (which the projection
// would keep) destroyed, outside the timing, 1,000 at a time.
void BM_PreparedCreateInWriter(benchmark::State& state) {
  std::vector<internal::PreparedCreate> prepared;
  std::vector<JobPtr> kept;
  std::uint64_t seq = 0;
  for (auto _ : state) {
    if (prepared.empty()) {
      state.PauseTiming();
      kept.clear();
      for (int n = 0; n < 1000; ++n) {
        CreateJob c;
        c.job_id = "j" + std::to_string(seq + n);
        c.input = Json{{"prompt", "Create a skill for parsing invoices"}};
        prepared.push_back(*internal::PrepareCreate({c.job_id, {}, {}, c}));
      }
      state.ResumeTiming();
    }
    internal::PreparedCreate& p = prepared.back();
    benchmark::DoNotOptimize(CheckCreate(nullptr, p.job->job_id));
    StampCreated(*p.job, ++seq, 2);
    JobPtr job = std::move(p.job);
    const eventlog::SerializedEvent e{seq, job->job_id, 1, EventType::kCreated, 2,
                                      std::move(p.data_json)};
    benchmark::DoNotOptimize(eventlog::EncodeRecord(e));
    kept.push_back(std::move(job));
    prepared.pop_back();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PreparedCreateInWriter);

// The README's example job, as created.
Job ExampleJob() {
  CreateJob create;
  create.job_id = "job-1";
  create.labels = {{"team", "ml"}};
  create.input = {{"prompt", "Create a skill for parsing invoices"}};
  return *Apply(nullptr, Decide(nullptr, {"job-1", {}, {}, create}, 1)->front());
}

void BM_JobToJson(benchmark::State& state) {
  const Job job = ExampleJob();
  for (auto _ : state) benchmark::DoNotOptimize(JobToJson(job).dump());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_JobToJson);

// The store's next version of a job: Apply's value moved into make_shared, against
// ApplyShared's one copy changed in place (arg 0: a progress event on the README's job) or a
// job built in place (arg 1: its job.created).
struct ApplyExample {
  explicit ApplyExample(std::int64_t created) {
    if (created) {
      CreateJob create;
      create.job_id = "job-1";
      create.labels = {{"team", "ml"}};
      create.input = {{"prompt", "Create a skill for parsing invoices"}};
      event = Decide(nullptr, {"job-1", {}, {}, create}, 1)->front();
      return;
    }
    job = std::make_shared<const Job>(ExampleJob());
    event = Decide(job.get(),
                   {"job-1", {}, {}, UpdateJob{Json{{"percent", 50}}, std::nullopt, std::nullopt}},
                   2)->front();
  }
  std::shared_ptr<const Job> job;  // null before job.created
  Event event;
};

void BM_ApplyThenMakeShared(benchmark::State& state) {
  const ApplyExample p(state.range(0));
  for (auto _ : state) {
    benchmark::DoNotOptimize(std::make_shared<const Job>(Apply(p.job.get(), p.event).value()));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ApplyThenMakeShared)->Arg(0)->Arg(1);

void BM_ApplyShared(benchmark::State& state) {
  const ApplyExample p(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(*ApplyShared(p.job, p.event));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ApplyShared)->Arg(0)->Arg(1);

// The same job's text as the server renders it (JobJsonText, written straight), uncached.
void BM_JobJsonText(benchmark::State& state) {
  Job job = ExampleJob();
  for (auto _ : state) {
    job.api_json.Clear();
    benchmark::DoNotOptimize(JobJsonText(job).data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_JobJsonText);

// The event log's own write of a batch of created jobs (no fsync: the batch's encoding, the
// index entries and RocksDB's WAL and memtables), as the writer appends a bulk request.
void BM_AppendBatch(benchmark::State& state) {
  eventlog::LogOptions o;
  o.sync = eventlog::SyncMode::kNone;
  auto log = eventlog::EventLog::Open(BenchDir("append-batch"), o);
  if (!log.ok()) {
    state.SkipWithError(log.status().ToString().c_str());
    return;
  }
  const auto size = static_cast<std::uint64_t>(state.range(0));
  std::uint64_t seq = 0;
  std::vector<eventlog::SerializedEvent> batch(size);
  for (auto _ : state) {
    state.PauseTiming();
    for (auto& e : batch) {
      ++seq;
      e = {seq, "0193c4f1-7e2a-7b3c-9d4e-" + std::to_string(100000000000 + seq), 1,
           EventType::kCreated, 1'795'867'200'000,
           R"({"type":"bench","input":{"n":)" + std::to_string(seq) +
               R"(},"priority":0,"max_attempts":3,"ttl_seconds":86400})"};
    }
    state.ResumeTiming();
    Status st = (*log)->Append(batch);
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(size));
}
BENCHMARK(BM_AppendBatch)->Arg(500);

// Durable appends through the store (decide, group commit, fsync, apply) from N threads.
std::unique_ptr<JobStore> g_store;
std::atomic<std::uint64_t> g_next_id{0};

void BM_DurableCreate(benchmark::State& state) {
  if (state.thread_index() == 0) {
    StoreOptions o;
    o.data_dir = BenchDir("append");
    o.log.sync = static_cast<eventlog::SyncMode>(state.range(0));
    g_store = std::move(JobStore::Open(o).value());
  }
  for (auto _ : state) {
    CreateJob c;
    c.job_id = "j" + std::to_string(g_next_id.fetch_add(1));
    auto out = g_store->Submit({c.job_id, {}, {}, c});
    if (!out.ok()) state.SkipWithError(out.status().ToString().c_str());
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    state.counters["mean_batch"] = static_cast<double>(g_store->counters().batch_commands.load()) /
                                   std::max<std::uint64_t>(1, g_store->counters().batches.load());
    g_store.reset();
  }
}
BENCHMARK(BM_DurableCreate)
    ->Arg(0)
    ->ArgName("sync_always")
    ->Threads(1)
    ->Threads(16)
    ->Threads(64)
    ->UseRealTime();
BENCHMARK(BM_DurableCreate)->Arg(2)->ArgName("sync_none")->Threads(64)->UseRealTime();

// The ceiling of the line above: the same threads appending a create's worth of bytes through
// the plainest group commit (one write() and one fdatasync() per batch; plain_group_commit.h).
void BM_PlainGroupCommit(benchmark::State& state) {
  static std::unique_ptr<bench::PlainGroupCommit> log;
  if (state.thread_index() == 0) {
    const std::string dir = BenchDir("plain");
    std::filesystem::create_directories(dir);
    log = std::make_unique<bench::PlainGroupCommit>(dir + "/log");
  }
  const std::string record(230, 'x');  // ~ a created event's record plus its index entry
  for (auto _ : state) log->Append(record);
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    state.counters["mean_batch"] = log->mean_batch();
    log.reset();
  }
}
BENCHMARK(BM_PlainGroupCommit)->Threads(64)->UseRealTime();

// Replay: open a store whose log holds N events (jobs of 5 events each) and rebuild.
void BM_Replay(benchmark::State& state) {
  const std::string dir = BenchDir("replay");
  const std::int64_t jobs = state.range(0);
  {
    StoreOptions o;
    o.data_dir = dir;
    o.log.sync = eventlog::SyncMode::kNone;
    auto store = std::move(JobStore::Open(o).value());
    std::vector<Command> batch;
    auto flush = [&] {
      if (!batch.empty()) (void)store->SubmitAll(std::move(batch));
      batch.clear();
    };
    for (std::int64_t i = 0; i < jobs; ++i) {
      std::string id = "r" + std::to_string(i);
      CreateJob c;
      c.job_id = id;
      c.labels = {{"team", i % 2 ? "ml" : "web"}};
      batch.push_back({id, {}, {}, c});
      batch.push_back({id, {}, {}, StartJob{"w", 30}});
      batch.push_back({id, {}, {}, UpdateJob{Json{{"percent", 50}}, std::nullopt, std::nullopt}});
      batch.push_back({id, {}, {}, UpdateJob{std::nullopt, Json{{"k", i}}, std::nullopt}});
      batch.push_back({id, {}, {}, CompleteJob{Json{{"ok", true}}}});
      if (batch.size() >= 5000) flush();
    }
    flush();
  }
  std::uint64_t events = 0;
  for (auto _ : state) {
    StoreOptions o;
    o.data_dir = dir;
    auto store = std::move(JobStore::Open(o).value());
    events = store->recovery().events_replayed;
    benchmark::DoNotOptimize(store->projection().Size());
    // Closing the store and freeing its projection is not replay (up to 29c6a47 it was timed).
    state.PauseTiming();
    store.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * events);
  state.counters["events"] = static_cast<double>(events);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_Replay)->Arg(20000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ListByLabel(benchmark::State& state) {
  StoreOptions o;
  o.data_dir = BenchDir("list");
  o.log.sync = eventlog::SyncMode::kNone;
  auto store = std::move(JobStore::Open(o).value());
  std::vector<Command> batch;
  for (int i = 0; i < 100000; ++i) {
    CreateJob c;
    c.job_id = "l" + std::to_string(i);
    c.labels = {{"team", "t" + std::to_string(i % 100)}};
    batch.push_back({c.job_id, {}, {}, c});
    if (batch.size() == 5000) {
      (void)store->SubmitAll(std::move(batch));
      batch.clear();
    }
  }
  ListQuery q;
  q.labels = {{"team", "t7"}};
  q.limit = 50;
  for (auto _ : state) benchmark::DoNotOptimize(store->projection().List(q));
  state.SetItemsProcessed(state.iterations());
  store.reset();
  std::filesystem::remove_all(o.data_dir);
}
BENCHMARK(BM_ListByLabel);

// Claims from a queue of 100k pending jobs of 10 types, beside 0 or 100k scheduled ones (not
// claimable for a day): what the claim index and the scheduled jobs cost a claim. Each claim is
// a durable write without the fsync (--sync none), so the figure is the path's own cost.
// Args: scheduled jobs, whether the claim names one type (the per-type index) or none.
void BM_ClaimFromLargeQueue(benchmark::State& state) {
  StoreOptions o;
  o.data_dir = BenchDir("claim");
  o.log.sync = eventlog::SyncMode::kNone;
  auto store = std::move(JobStore::Open(o).value());
  const TimeMs tomorrow = store->clock().NowMs() + 86'400'000;
  std::vector<Command> batch;
  auto add = [&](const std::string& id, bool scheduled, int i) {
    CreateJob c;
    c.job_id = id;
    c.type = "t" + std::to_string(i % 10);
    c.priority = i % 3;
    if (scheduled) c.run_at = tomorrow;
    batch.push_back({c.job_id, {}, {}, c});
    if (batch.size() == 5000) {
      (void)store->SubmitAll(std::move(batch));
      batch.clear();
    }
  };
  constexpr int kPending = 100'000;
  for (int i = 0; i < kPending; ++i) {
    add("p" + std::to_string(i), false, i);
    if (i < state.range(0)) add("s" + std::to_string(i), true, i);
  }
  if (!batch.empty()) (void)store->SubmitAll(std::move(batch));
  ClaimRequest claim{"w", {}, 30};
  if (state.range(1)) claim.types = {"t3"};
  for (auto _ : state) {
    auto out = store->Claim(claim);
    if (!out.ok() || !out->job) state.SkipWithError("the queue ran dry");
  }
  state.SetItemsProcessed(state.iterations());
  store.reset();
  std::filesystem::remove_all(o.data_dir);
}
BENCHMARK(BM_ClaimFromLargeQueue)
    ->ArgNames({"scheduled", "by_type"})
    ->Args({0, 0})
    ->Args({100'000, 0})
    ->Args({0, 1})
    ->Args({100'000, 1})
    ->Iterations(8000)
    ->UseRealTime();

// Heap bytes in use: jemalloc's stats.allocated when jemalloc is the allocator (as in the server),
// else glibc's mallinfo2().
std::size_t HeapInUse() {
  using Mallctl = int (*)(const char*, void*, std::size_t*, void*, std::size_t);
  static auto mallctl = reinterpret_cast<Mallctl>(dlsym(RTLD_DEFAULT, "mallctl"));
  if (mallctl) {
    std::uint64_t epoch = 1;
    std::size_t len = sizeof epoch;
    mallctl("epoch", &epoch, &len, &epoch, len);
    std::size_t allocated = 0;
    len = sizeof allocated;
    if (mallctl("stats.allocated", &allocated, &len, nullptr, 0) == 0) return allocated;
  }
  return mallinfo2().uordblks;
}

// Heap bytes per live job: a store of N small pending jobs is written, flushed to SST files and
// closed; the heap in use is measured before and after reopening it (the replay builds the
// projection). The difference includes RocksDB's table readers and its 8 MiB block cache, so the
// figure is an upper bound on the projection's own cost.
void BM_MemoryPerLiveJob(benchmark::State& state) {
  const std::string dir = BenchDir("memory");
  const std::int64_t jobs = state.range(0);
  const Json input = {{"prompt", "Write a haiku about queues"}};
  Status filled = Status::Ok();
  {
    StoreOptions o;
    o.data_dir = dir;
    o.log.sync = eventlog::SyncMode::kNone;
    auto store = std::move(JobStore::Open(o).value());
    std::vector<Command> batch;
    for (std::int64_t i = 0; i < jobs; ++i) {
      CreateJob c;
      c.job_id = "m" + std::to_string(i);
      c.type = "draft";
      c.labels = {{"team", i % 2 ? "ml" : "web"}};
      c.input = input;
      batch.push_back({c.job_id, {}, {}, c});
      if (batch.size() == 5000 || i + 1 == jobs) {
        auto written = store->SubmitAll(std::move(batch));
        if (!written.ok() && filled.ok()) filled = written.status();
        batch.clear();
      }
    }
    if (filled.ok()) filled = store->CompactLog();
    Status closed = store->Close();
    if (filled.ok()) filled = closed;
  }
  if (!filled.ok()) {
    state.SkipWithError(filled.ToString().c_str());
    for (auto _ : state) {
    }
    return;
  }
  double per_job = 0;
  for (auto _ : state) {
    malloc_trim(0);
    const std::size_t before = HeapInUse();
    StoreOptions o;
    o.data_dir = dir;
    o.use_snapshots = false;
    auto store = std::move(JobStore::Open(o).value());
    const std::size_t after = HeapInUse();
    per_job = static_cast<double>(after - before) / static_cast<double>(jobs);
    benchmark::DoNotOptimize(store->projection().Size());
  }
  state.counters["heap_bytes_per_job"] = per_job;
  state.counters["payload_bytes"] = static_cast<double>(input.dump().size());
  state.SetLabel(dlsym(RTLD_DEFAULT, "mallctl") ? "jemalloc" : "glibc malloc");
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_MemoryPerLiveJob)->Arg(200000)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace jobstore

BENCHMARK_MAIN();
