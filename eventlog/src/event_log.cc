#include "jobstore/eventlog/event_log.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/listener.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>

#include "jobstore/core/mutex.h"
#include "jobstore/eventlog/format.h"
#include "jobstore/eventlog/record.h"
#include "rocksdb_logger.h"

namespace jobstore::eventlog {
namespace {

namespace fs = std::filesystem;

// Turns off RocksDB's own recovery from background errors, so that Append's Resume() is the one
// way back after a failed write. RocksDB's recovery from a full disk (its SstFileManager) waits
// for free space of at least a 64 MiB write buffer: on a small volume it never starts, and while
// it waits every manual Resume() answers Busy, so writes stayed refused until a restart (a full
// tmpfs of 48 MiB showed it). Resume() needs no such margin; it fails while the disk is full.
class ManualRecoveryOnly : public rocksdb::EventListener {
 public:
  const char* Name() const override { return "jobstore.ManualRecoveryOnly"; }
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }
};

rocksdb::Options BaseOptions(const LogOptions& o) {
  rocksdb::Options opts;
  opts.listeners.push_back(std::make_shared<ManualRecoveryOnly>());
  opts.info_log = MakeRocksDbLogger();  // not a LOG file on the data volume: see its header
  opts.create_if_missing = o.create_if_missing;
  opts.create_missing_column_families = o.create_if_missing;
  opts.max_background_jobs = 2;
  opts.bytes_per_sync = 1 << 20;
  opts.keep_log_file_num = 5;
  opts.allow_concurrent_memtable_write = false;  // job_index's hashed memtable: see Families
  if (o.env) opts.env = o.env;
  return opts;
}

// The job of a job_index key: its id and the 0x00 after it (the whole key if it has no 0x00,
// which only a damaged key lacks; reads report those). Nothing on disk depends on it: RocksDB
// notes the extractor in a table file only to use its prefix filter, and job_index has none, so
// a log written before the extractor (or under another) reads the same.
class JobIdPrefix : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "jobstore.JobIdPrefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    if (key.empty()) return key;  // memchr must not see a null pointer, even for no bytes
    const void* end = std::memchr(key.data(), 0, key.size());
    if (end == nullptr) return key;
    return rocksdb::Slice(key.data(), static_cast<const char*>(end) - key.data() + 1);
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return !key.empty() && std::memchr(key.data(), 0, key.size()) != nullptr;
  }
};

// job_index's memtable hashes each entry to its job, then keeps a short sorted linked list per
// bucket (a skip list once a bucket passes 256 entries). Job ids are random, so in RocksDB's one
// skip list every entry landed at a random place among ~10^5: its search was 11 % of the server's
// CPU in the worker workload (bench/RESULTS.md, "The job index's memtable hashed by job"). A
// bucket holds a few entries (up to ~800k in a full memtable over 2^17 buckets), where a list
// beats a skip list per bucket (bulk creates 4 % faster, 4 % less memory: "The job index's
// buckets as linked lists"; 2^20 buckets were 7 % faster still, but 8 MiB more a memtable is too
// much for the memory-per-job target). Reads stay the same: a job's history is a prefix seek, and
// a scan across jobs (ScanJobIndex) asks for total order, which sorts the memtable once. 2^17
// buckets take 1 MiB of each memtable's 64. A memtable other than the skip list needs
// allow_concurrent_memtable_write off; one writer thread appends, so nothing is lost by it.
std::vector<rocksdb::ColumnFamilyDescriptor> Families(const rocksdb::Options& opts) {
  rocksdb::ColumnFamilyOptions cf(opts);
  rocksdb::ColumnFamilyOptions index_cf(opts);
  index_cf.prefix_extractor = std::make_shared<JobIdPrefix>();
  index_cf.memtable_factory.reset(rocksdb::NewHashLinkListRepFactory(
      /*bucket_count=*/1 << 17, /*huge_page_tlb_size=*/0, /*bucket_entries_logging_threshold=*/4096,
      /*if_log_bucket_dist_when_flash=*/false, /*threshold_use_skiplist=*/256));
  return {{rocksdb::kDefaultColumnFamilyName, cf},
          {kEventsFamily, cf},
          {kJobIndexFamily, index_cf}};
}

}  // namespace

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string msg = std::string(what) + ": " + s.ToString();
  if (s.IsCorruption()) return Corruption(msg);
  if (s.IsInvalidArgument() || s.IsNotSupported()) return InvalidArgument(msg);
  if (s.IsNotFound()) return NotFound(msg);
  // IOError (including NoSpace), Busy, TimedOut, Aborted, Incomplete, ShutdownInProgress...
  return Unavailable(msg);
}

StatusOr<SyncMode> ParseSyncMode(std::string_view name) {
  if (name == "always") return SyncMode::kAlways;
  if (name == "batch") return SyncMode::kBatch;
  if (name == "none") return SyncMode::kNone;
  return InvalidArgument("sync mode must be always, batch or none, not '" + std::string(name) +
                         "'");
}

std::string_view SyncModeName(SyncMode mode) {
  switch (mode) {
    case SyncMode::kAlways: return "always";
    case SyncMode::kBatch: return "batch";
    case SyncMode::kNone: return "none";
  }
  return "always";
}

// fsyncs the WAL every interval while the log is open (kBatch).
struct EventLog::BatchSyncer {
  Mutex mu;
  CondVar cv;
  bool stop ABSL_GUARDED_BY(mu) = false;
  std::string error ABSL_GUARDED_BY(mu);  // why the last periodic sync failed
  std::thread thread;
};

EventLog::EventLog(std::string dir, LogOptions options, OpenMode mode)
    : dir_(std::move(dir)), options_(options), mode_(mode) {}

EventLog::~EventLog() {
  // Close() reports what went wrong; a destructor can only do its best.
  (void)Close();
}

Status EventLog::Close() {
  if (syncer_) {
    {
      MutexLock lock(&syncer_->mu);
      syncer_->stop = true;
    }
    syncer_->cv.SignalAll();
    syncer_->thread.join();
    syncer_.reset();
  }
  if (!db_) return Status::Ok();
  Status result;
  if (mode_ == OpenMode::kReadWrite && !failed_.load()) {
    // Everything acknowledged is in the WAL already; a clean close makes it durable too.
    result = FromRocks(db_->SyncWAL(), "syncing the WAL at close");
    if (result.ok()) {
      // Without a flush, the next open replays the whole WAL (up to RocksDB's total WAL limit,
      // hundreds of MB): 1.5 s of a 1M-job start in bench/startup_bench. The data is safe
      // either way; a failed flush only makes the next start slower, and says so.
      rocksdb::FlushOptions flush;
      flush.allow_write_stall = true;
      std::vector<rocksdb::ColumnFamilyHandle*> families(handles_.begin(), handles_.end());
      std::erase(families, nullptr);
      result = FromRocks(db_->Flush(flush, families),
                         "flushing at close (every acknowledged event is in the synced WAL, "
                         "which the next start replays)");
    }
  }
  for (auto* h : handles_) {
    if (h) (void)db_->DestroyColumnFamilyHandle(h);  // only fails for the default family
  }
  handles_.clear();
  Status closed = FromRocks(db_->Close(), "closing the event log");
  db_.reset();
  return result.ok() ? closed : result;
}

StatusOr<std::unique_ptr<EventLog>> EventLog::Open(const std::string& dir,
                                                   const LogOptions& options) {
  std::error_code ec;
  bool existed = fs::exists(dir, ec);
  if (!existed) {
    if (!options.create_if_missing) return NotFound("data directory '" + dir + "' does not exist");
    fs::create_directories(dir, ec);
    if (ec) return Unavailable("cannot create data directory '" + dir + "': " + ec.message());
    ::chmod(dir.c_str(), 0700);  // the log holds every job's data: owner only
  } else if (!fs::is_directory(dir, ec)) {
    return InvalidArgument("'" + dir + "' is not a directory");
  } else if (!fs::is_empty(dir, ec) && !fs::exists(fs::path(dir) / "CURRENT", ec)) {
    return InvalidArgument("'" + dir + "' is not empty and is not a jobstore data directory");
  }
  std::unique_ptr<EventLog> log(new EventLog(dir, options, OpenMode::kReadWrite));
  JOBSTORE_RETURN_IF_ERROR(log->OpenDb(OpenMode::kReadWrite, ""));
  JOBSTORE_RETURN_IF_ERROR(log->CheckOrWriteFormat());
  JOBSTORE_RETURN_IF_ERROR(log->LoadBounds());
  if (options.sync == SyncMode::kBatch) log->StartBatchSyncThread();
  return log;
}

StatusOr<std::unique_ptr<EventLog>> EventLog::OpenForTools(const std::string& dir, OpenMode mode,
                                                           const std::string& scratch_dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFound("data directory '" + dir + "' does not exist");
  if (!fs::exists(fs::path(dir) / "CURRENT", ec)) {
    return InvalidArgument("'" + dir + "' is not a jobstore data directory (no RocksDB CURRENT)");
  }
  LogOptions options;
  options.create_if_missing = false;
  std::unique_ptr<EventLog> log(new EventLog(dir, options, mode));
  JOBSTORE_RETURN_IF_ERROR(log->OpenDb(mode, scratch_dir));
  JOBSTORE_RETURN_IF_ERROR(log->CheckOrWriteFormat());
  JOBSTORE_RETURN_IF_ERROR(log->LoadBounds());
  return log;
}

Status EventLog::OpenDb(OpenMode mode, const std::string& scratch_dir) {
  rocksdb::Options opts = BaseOptions(options_);
  auto families = Families(opts);
  if (mode != OpenMode::kReadWrite || fs::exists(fs::path(dir_) / "CURRENT")) {
    std::vector<std::string> existing;
    JOBSTORE_RETURN_IF_ERROR(FromRocks(rocksdb::DB::ListColumnFamilies(opts, dir_, &existing),
                                       "listing column families of '" + dir_ + "'"));
    for (const char* needed : {kEventsFamily, kJobIndexFamily}) {
      if (std::find(existing.begin(), existing.end(), needed) == existing.end()) {
        return InvalidArgument("'" + dir_ + "' is not a jobstore data directory (no '" +
                               needed + "' column family)");
      }
    }
  }
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s;
  switch (mode) {
    case OpenMode::kReadWrite:
      s = rocksdb::DB::Open(rocksdb::DBOptions(opts), dir_, families, &handles_, &raw);
      break;
    case OpenMode::kReadOnly:
      s = rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(opts), dir_, families, &handles_, &raw);
      break;
    case OpenMode::kSecondary:
      opts.max_open_files = -1;  // required by secondary instances
      s = rocksdb::DB::OpenAsSecondary(rocksdb::DBOptions(opts), dir_, scratch_dir, families,
                                       &handles_, &raw);
      break;
  }
  JOBSTORE_RETURN_IF_ERROR(FromRocks(s, "opening the event log in '" + dir_ + "'"));
  db_.reset(raw);
  meta_cf_ = handles_[0];
  events_cf_ = handles_[1];
  index_cf_ = handles_[2];
  return Status::Ok();
}

Status EventLog::CheckOrWriteFormat() {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_cf_, kMetaFormatVersion, &value);
  if (s.IsNotFound()) {
    if (mode_ != OpenMode::kReadWrite) {
      return InvalidArgument("'" + dir_ + "' is not a jobstore data directory (no format version)");
    }
    std::string v;
    PutFixed32LE(&v, kFormatVersion);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return FromRocks(db_->Put(wo, meta_cf_, kMetaFormatVersion, v), "writing the format version");
  }
  JOBSTORE_RETURN_IF_ERROR(FromRocks(s, "reading the format version"));
  if (value.size() != 4) return Corruption("the format version record is damaged");
  auto version = static_cast<std::uint32_t>(DecodeFixedLE(value.data(), 4));
  if (version > kFormatVersion) {
    return InvalidArgument("'" + dir_ + "' was written by a newer jobstore (format " +
                           std::to_string(version) + "; this build reads up to " +
                           std::to_string(kFormatVersion) + ")");
  }
  return Status::Ok();
}

Status EventLog::LoadBounds() {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), events_cf_));
  it->SeekToLast();
  std::uint64_t last = 0;
  if (it->Valid()) {
    if (it->key().size() != kSeqKeySize) return Corruption("an event key is not 8 bytes");
    last = DecodeFixed64BE(it->key().data());
  }
  JOBSTORE_RETURN_IF_ERROR(FromRocks(it->status(), "finding the last seq"));
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_cf_, kMetaFirstSeq, &value);
  std::uint64_t first = 1;
  if (s.ok()) {
    if (value.size() != 8) return Corruption("the first_seq record is damaged");
    first = DecodeFixed64BE(value.data());
  } else if (!s.IsNotFound()) {
    return FromRocks(s, "reading first_seq");
  }
  last_seq_.store(std::max(last, first - 1), std::memory_order_release);
  first_seq_.store(first, std::memory_order_release);
  value.clear();
  s = db_->Get(rocksdb::ReadOptions(), meta_cf_, kMetaSourceSeq, &value);
  if (s.ok()) {
    if (value.size() != 8) return Corruption("the source_seq record is damaged");
    source_seq_.store(DecodeFixed64BE(value.data()), std::memory_order_release);
  } else if (!s.IsNotFound()) {
    return FromRocks(s, "reading source_seq");
  }
  return Status::Ok();
}

void EventLog::StartBatchSyncThread() {
  syncer_ = std::make_unique<BatchSyncer>();
  syncer_->thread = std::thread([this, syncer = syncer_.get()] { RunBatchSyncer(syncer); });
}

void EventLog::RunBatchSyncer(BatchSyncer* syncer) {
  MutexLock lock(&syncer->mu);
  while (!syncer->stop) {
    syncer->cv.WaitFor(&syncer->mu, std::chrono::milliseconds(options_.batch_sync_interval_ms));
    // A failed periodic sync is remembered with its reason: Append refuses writes
    // (kUnavailable, naming it) until a sync works again, so a disk that cannot fsync is
    // reported to clients and in the log, not hidden.
    if (failed_.load(std::memory_order_acquire)) continue;
    if (rocksdb::Status st = db_->SyncWAL(); !st.ok()) {
      syncer->error = st.ToString();
      if (!sync_failed_.exchange(true, std::memory_order_acq_rel)) {
        spdlog::error("the periodic WAL sync failed: {}; writes are refused until a sync works",
                      syncer->error);
      }
    }
  }
}

Status EventLog::TEST_Append(const std::vector<Event>& events) {
  std::vector<SerializedEvent> serialized;
  serialized.reserve(events.size());
  for (const Event& e : events) serialized.push_back(Serialize(e));
  return Append(serialized);
}

Status EventLog::Append(const std::vector<SerializedEvent>& events) {
  if (events.empty()) {
    if (mode_ != OpenMode::kReadWrite) return InvalidArgument("the log is open read-only");
    return Status::Ok();
  }
  return Write(events, std::nullopt);
}

Status EventLog::AppendFromSource(const std::vector<SerializedEvent>& events,
                                  std::uint64_t source_seq) {
  if (source_seq <= SourceSeq()) {
    return Internal("source seq " + std::to_string(source_seq) + " is not after " +
                    std::to_string(SourceSeq()));
  }
  return Write(events, source_seq);
}

Status EventLog::Write(const std::vector<SerializedEvent>& events,
                       std::optional<std::uint64_t> source_seq) {
  if (mode_ != OpenMode::kReadWrite) return InvalidArgument("the log is open read-only");
  std::uint64_t expected = LastSeq() + 1;
  // The batch is sized once: each event's record under its 8-byte key, its index entry (the id,
  // 0x00, the seq; an 8-byte version), and RocksDB's few bytes of tag and lengths for each.
  constexpr std::size_t kPerEntryOverhead = 16;
  std::size_t bytes = 64;
  for (const SerializedEvent& e : events) {
    bytes += EncodedRecordSize(e) + kSeqKeySize + e.job_id.size() + 1 + 2 * kSeqKeySize +
             2 * kPerEntryOverhead;
  }
  rocksdb::WriteBatch batch(bytes);
  // The index entries go into the batch in key order. With one skip list for job_index this kept
  // each insert's search short (bulk creates: the search was a fifth of the writer thread,
  // bench/RESULTS.md); job_index's memtable is now hashed by job (Families), where the order
  // only puts a job's entries into its bucket one after the other. Kept as measured with it.
  // Sorted by (job id, seq): their keys' order, as a valid id holds no 0x00 (the order is for
  // speed only; RocksDB sorts whatever it is given).
  std::vector<const SerializedEvent*> index;
  index.reserve(events.size());
  std::string key;     // one buffer each for every key and record of the batch
  std::string record;
  for (const SerializedEvent& e : events) {
    if (e.seq != expected++) {
      return Internal("append out of order: seq " + std::to_string(e.seq) + ", expected " +
                      std::to_string(expected - 1));
    }
    key.clear();
    PutFixed64BE(&key, e.seq);
    EncodeRecordInto(e, &record);
    JOBSTORE_RETURN_IF_ERROR(FromRocks(batch.Put(events_cf_, key, record), "batching an event"));
    index.push_back(&e);
  }
  std::sort(index.begin(), index.end(), [](const SerializedEvent* a, const SerializedEvent* b) {
    return std::tie(a->job_id, a->seq) < std::tie(b->job_id, b->seq);
  });
  std::string version;
  for (const SerializedEvent* e : index) {
    SetJobIndexKey(&key, e->job_id, e->seq);
    version.clear();
    PutFixed64BE(&version, e->version);
    JOBSTORE_RETURN_IF_ERROR(FromRocks(batch.Put(index_cf_, key, version), "batching an index entry"));
  }
  if (source_seq) {
    JOBSTORE_RETURN_IF_ERROR(FromRocks(batch.Put(meta_cf_, kMetaSourceSeq, SeqKey(*source_seq)),
                                       "batching the source seq"));
  }
  if (sync_failed_.load(std::memory_order_acquire)) {
    std::string why;
    {
      MutexLock lock(&syncer_->mu);
      why = syncer_->error;
    }
    JOBSTORE_RETURN_IF_ERROR(FromRocks(
        db_->SyncWAL(), "the periodic WAL sync failed (" + why + "); retrying it failed too"));
    sync_failed_.store(false, std::memory_order_release);
    spdlog::info("the WAL syncs again; writes are taken");
  }
  if (failed_.load(std::memory_order_acquire)) {
    // After a failed write RocksDB refuses writes until it is resumed (its own recovery is off:
    // see ManualRecoveryOnly). Busy: a Resume is already under way; the write below then tells.
    rocksdb::Status resumed = db_->Resume();
    if (!resumed.ok() && !resumed.IsBusy()) {
      return FromRocks(resumed, "resuming the event log after a write error");
    }
  }
  rocksdb::WriteOptions wo;
  // A copy of a replicated log is not where durability lives: the stream has every batch, and
  // a copy that lost its newest writes in a power cut (events and source seq in one batch, so
  // both or neither) tails them again. It writes its WAL (a process crash loses nothing) but
  // does not fsync each append.
  wo.sync = options_.sync == SyncMode::kAlways && !source_seq;
  Status written = FromRocks(db_->Write(wo, &batch), "appending to the event log");
  failed_.store(!written.ok(), std::memory_order_release);
  JOBSTORE_RETURN_IF_ERROR(written);
  if (!events.empty()) last_seq_.store(events.back().seq, std::memory_order_release);
  if (source_seq) source_seq_.store(*source_seq, std::memory_order_release);
  return Status::Ok();
}

namespace {

// Iterates the events family over [from, to] with options fit for long scans, handing each
// (seq, record bytes) to fn until it returns false.
Status ForEachRecord(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, std::uint64_t from,
                     std::uint64_t to,
                     const std::function<bool(std::uint64_t, std::string_view)>& fn) {
  rocksdb::ReadOptions ro;
  ro.readahead_size = 2 << 20;
  ro.fill_cache = false;  // a long scan should not evict what the server reads
  std::string upper = SeqKey(to == UINT64_MAX ? to : to + 1);
  rocksdb::Slice upper_slice(upper);
  if (to != UINT64_MAX) ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro, cf));
  for (it->Seek(SeqKey(from)); it->Valid(); it->Next()) {
    // A key of another length decodes as seq 0, which no record carries: its check fails.
    const std::uint64_t seq =
        it->key().size() == kSeqKeySize ? DecodeFixed64BE(it->key().data()) : 0;
    if (!fn(seq, std::string_view(it->value().data(), it->value().size()))) break;
  }
  return FromRocks(it->status(), "scanning the event log");
}

}  // namespace

Status EventLog::ScanRecords(
    std::uint64_t from, std::uint64_t to,
    const std::function<bool(std::uint64_t, StatusOr<Event>&&)>& fn) const {
  return ForEachRecord(db_.get(), events_cf_, from, to, [&](std::uint64_t seq, std::string_view rec) {
    return fn(seq, DecodeRecord(seq, rec));
  });
}

Status EventLog::ScanViews(std::uint64_t from, std::uint64_t to,
                           const std::function<bool(const RecordView&)>& fn) const {
  Status damaged;
  JOBSTORE_RETURN_IF_ERROR(
      ForEachRecord(db_.get(), events_cf_, from, to, [&](std::uint64_t seq, std::string_view rec) {
        auto view = DecodeRecordView(seq, rec);
        if (!view.ok()) {
          damaged = view.status();
          return false;
        }
        return fn(*view);
      }));
  return damaged;
}

Status EventLog::Scan(std::uint64_t from, std::uint64_t to,
                      const std::function<bool(Event&&)>& fn) const {
  Status damaged;
  JOBSTORE_RETURN_IF_ERROR(ScanRecords(from, to, [&](std::uint64_t, StatusOr<Event>&& event) {
    if (!event.ok()) {
      damaged = event.status();
      return false;
    }
    return fn(std::move(event).value());
  }));
  return damaged;
}

StatusOr<std::vector<Event>> EventLog::ReadJob(const std::string& job_id,
                                               std::uint64_t min_seq) const {
  const std::string prefix = JobIndexPrefix(job_id);
  std::vector<std::string> keys;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), index_cf_));
  for (it->Seek(JobIndexKey(job_id, min_seq)); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    if (it->key().size() != prefix.size() + kSeqKeySize) {
      return Corruption("a job_index key of job '" + job_id + "' is damaged");
    }
    keys.push_back(SeqKey(DecodeFixed64BE(it->key().data() + prefix.size())));
  }
  JOBSTORE_RETURN_IF_ERROR(FromRocks(it->status(), "reading the job index"));
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<std::string> values;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs(keys.size(), events_cf_);
  auto statuses = db_->MultiGet(rocksdb::ReadOptions(), cfs, slices, &values);
  std::vector<Event> out;
  out.reserve(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    std::uint64_t seq = DecodeFixed64BE(keys[i].data());
    if (statuses[i].IsNotFound()) {
      return Corruption("job_index names seq " + std::to_string(seq) + " of job '" + job_id +
                        "', which is not in the log");
    }
    JOBSTORE_RETURN_IF_ERROR(FromRocks(statuses[i], "reading an event of job '" + job_id + "'"));
    JOBSTORE_ASSIGN_OR_RETURN(auto event, DecodeRecord(seq, values[i]));
    out.push_back(std::move(event));
  }
  return out;
}

Status EventLog::ScanJobIndex(
    const std::function<bool(std::string_view, std::uint64_t, std::uint64_t)>& fn,
    std::string_view id_prefix) const {
  rocksdb::ReadOptions across_jobs;
  across_jobs.total_order_seek = true;  // the prefix runs across jobs: see Families
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(across_jobs, index_cf_));
  // An empty view may have no data pointer at all: Slice(nullptr, 0) in a compare is UB.
  const std::string prefix(id_prefix);
  if (prefix.empty()) {
    it->SeekToFirst();
  } else {
    it->Seek(prefix);
  }
  for (; it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key();
    if (!prefix.empty() && !k.starts_with(prefix)) break;
    if (k.size() < kSeqKeySize + 1 || k[k.size() - kSeqKeySize - 1] != '\0' ||
        it->value().size() != 8) {
      return Corruption("a job_index entry is damaged: key '" + k.ToString(true) + "'");
    }
    std::string_view job_id(k.data(), k.size() - kSeqKeySize - 1);
    if (!fn(job_id, DecodeFixed64BE(k.data() + k.size() - kSeqKeySize),
            DecodeFixed64BE(it->value().data()))) {
      break;
    }
  }
  return FromRocks(it->status(), "scanning the job index");
}

Status EventLog::DeleteEvents(const std::vector<std::pair<std::string, std::uint64_t>>& job_seqs) {
  rocksdb::WriteBatch batch;
  for (const auto& [job_id, seq] : job_seqs) {
    JOBSTORE_RETURN_IF_ERROR(FromRocks(batch.Delete(events_cf_, SeqKey(seq)), "batching a delete"));
    JOBSTORE_RETURN_IF_ERROR(
        FromRocks(batch.Delete(index_cf_, JobIndexKey(job_id, seq)), "batching a delete"));
  }
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync == SyncMode::kAlways;
  return FromRocks(db_->Write(wo, &batch), "deleting expired history");
}

Status EventLog::SetFirstSeq(std::uint64_t seq) {
  std::string v;
  PutFixed64BE(&v, seq);
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync == SyncMode::kAlways;
  JOBSTORE_RETURN_IF_ERROR(FromRocks(db_->Put(wo, meta_cf_, kMetaFirstSeq, v), "writing first_seq"));
  first_seq_.store(seq, std::memory_order_release);
  return Status::Ok();
}

Status EventLog::CompactAll() {
  rocksdb::CompactRangeOptions co;
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  JOBSTORE_RETURN_IF_ERROR(
      FromRocks(db_->CompactRange(co, events_cf_, nullptr, nullptr), "compacting events"));
  return FromRocks(db_->CompactRange(co, index_cf_, nullptr, nullptr), "compacting job_index");
}

Status EventLog::TryCatchUpWithPrimary() {
  if (mode_ != OpenMode::kSecondary) return Status::Ok();
  JOBSTORE_RETURN_IF_ERROR(FromRocks(db_->TryCatchUpWithPrimary(), "catching up with the server"));
  return LoadBounds();
}

std::vector<std::pair<std::string, std::uint64_t>> EventLog::SizesOnDisk() const {
  std::vector<std::pair<std::string, std::uint64_t>> out;
  for (auto* h : handles_) {
    std::uint64_t sst = 0, mem = 0;
    db_->GetIntProperty(h, rocksdb::DB::Properties::kTotalSstFilesSize, &sst);
    db_->GetIntProperty(h, rocksdb::DB::Properties::kSizeAllMemTables, &mem);
    out.emplace_back(h->GetName(), sst + mem);
  }
  return out;
}

std::uint64_t EventLog::TotalSizeOnDisk() const {
  std::uint64_t total = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    if (entry.is_regular_file(ec)) total += entry.file_size(ec);
  }
  return total;
}

Status EventLog::Checkpoint(const std::string& target_dir) const {
  rocksdb::Checkpoint* raw = nullptr;
  JOBSTORE_RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw),
                                     "preparing a checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  return FromRocks(checkpoint->CreateCheckpoint(target_dir), "writing a checkpoint");
}

}  // namespace jobstore::eventlog
