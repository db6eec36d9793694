// The append-only event log on RocksDB (layout in format.h).
//
// Thread-safety: Append is called by one thread at a time (the store's writer thread).
// DeleteEvents and SetFirstSeq are called by one thread at a time (history retention, on the
// background worker's thread, under the store's retention lock) and may run beside Append: they
// touch only events below the head that no append writes again, and a meta key Append never
// writes; RocksDB orders the writes. Every read method may run concurrently with all of these
// and with each other. LastSeq/FirstSeq are atomics.
//
// Errors: every RocksDB status is converted once, in FromRocks(), into kUnavailable (I/O error,
// no space, busy), kCorruption (checksum, decode) or kInvalidArgument; none is dropped.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "jobstore/core/event.h"
#include "jobstore/core/status.h"
#include "jobstore/eventlog/record.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class Env;
class Status;
}  // namespace rocksdb

namespace jobstore::eventlog {

// What an acknowledged append promises.
//   kAlways: fsync before Append returns; survives process crash and power loss.
//   kBatch:  the WAL is written before Append returns and fsynced every batch_sync_interval_ms by
//            a background thread; survives a process crash, may lose that window on power loss.
//   kNone:   like kBatch without the periodic fsync (the OS decides); for benchmarks only.
enum class SyncMode { kAlways, kBatch, kNone };

StatusOr<SyncMode> ParseSyncMode(std::string_view name);
std::string_view SyncModeName(SyncMode mode);

struct LogOptions {
  SyncMode sync = SyncMode::kAlways;
  int batch_sync_interval_ms = 100;
  bool create_if_missing = true;
  rocksdb::Env* env = nullptr;  // tests inject a failing Env; nullptr: the default
};

enum class OpenMode {
  kReadWrite,  // the server: holds RocksDB's LOCK, only one per directory
  kReadOnly,   // tools: a consistent view as of open; fails when the WAL needs recovery
  kSecondary,  // tools: follows a running primary (TryCatchUp), needs a scratch directory
};

Status FromRocks(const rocksdb::Status& s, std::string_view what);

class EventLog {
 public:
  // Opens (and with create_if_missing, creates) the log in `dir`. Refuses a directory written by
  // a newer format, or a non-empty directory that is not a jobstore log.
  static StatusOr<std::unique_ptr<EventLog>> Open(const std::string& dir,
                                                  const LogOptions& options = {});
  // Opens for reading only, without taking the server's lock. For kSecondary, `scratch_dir`
  // holds the secondary instance's own files.
  static StatusOr<std::unique_ptr<EventLog>> OpenForTools(const std::string& dir, OpenMode mode,
                                                          const std::string& scratch_dir = "");

  // Closes without reporting; call Close() to learn whether the final sync worked.
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Appends `events` in one atomic, durable (per SyncMode) write together with their job_index
  // entries. Their seqs must run LastSeq()+1, +2, ... without a gap. On error nothing is written
  // and LastSeq() does not move.
  Status Append(const std::vector<SerializedEvent>& events);
  // Append for a copy of a replicated log: `source_seq` (the replicated stream's position these
  // events came from) is recorded in the same write, so a restarted instance resumes tailing
  // exactly after what it holds. `events` may be empty (a stream message without events).
  // Written to the WAL, not fsynced: the stream is the durable copy (see Write).
  Status AppendFromSource(const std::vector<SerializedEvent>& events, std::uint64_t source_seq);
  // For tests (leveldb's TEST_ convention): Append after serializing each event's data. The
  // store appends SerializedEvents it made itself.
  Status TEST_Append(const std::vector<Event>& events);

  // The newest seq (0 when empty) and the oldest retained seq (1 until retention moves it).
  std::uint64_t LastSeq() const { return last_seq_.load(std::memory_order_acquire); }
  std::uint64_t FirstSeq() const { return first_seq_.load(std::memory_order_acquire); }
  // The replicated stream's position this copy reached (0: none; the embedded log never sets it).
  std::uint64_t SourceSeq() const { return source_seq_.load(std::memory_order_acquire); }

  // Calls fn for each event with from <= seq <= to, oldest first, until fn returns false.
  // A record that does not decode ends the scan with kCorruption naming its seq.
  Status Scan(std::uint64_t from, std::uint64_t to,
              const std::function<bool(Event&&)>& fn) const;

  // Like Scan, but hands over every record's decoding result, damaged ones included, and goes on
  // past them (for `inspect verify`). Stops at an I/O error or when fn returns false.
  Status ScanRecords(std::uint64_t from, std::uint64_t to,
                     const std::function<bool(std::uint64_t seq, StatusOr<Event>&&)>& fn) const;

  // Like Scan, with each record's data left as JSON text (fast scans that print it as it is or
  // parse it only for some events). A damaged record ends the scan with kCorruption.
  Status ScanViews(std::uint64_t from, std::uint64_t to,
                   const std::function<bool(const RecordView&)>& fn) const;

  // The history of `job_id` with seq >= min_seq, oldest first, read through job_index.
  StatusOr<std::vector<Event>> ReadJob(const std::string& job_id, std::uint64_t min_seq = 0) const;

  // Every job_index entry (job_id, seq, version) whose id starts with `id_prefix` (all of them
  // when empty), in key order: `inspect verify`, and the schedules at startup.
  Status ScanJobIndex(
      const std::function<bool(std::string_view job_id, std::uint64_t seq,
                               std::uint64_t version)>& fn,
      std::string_view id_prefix = {}) const;

  // Deletes the given events and their job_index entries in one write (history retention).
  Status DeleteEvents(const std::vector<std::pair<std::string, std::uint64_t>>& job_seqs);
  // Records that history before `seq` is no longer kept.
  Status SetFirstSeq(std::uint64_t seq);
  // Compacts the events and job_index families so deleted history gives its space back.
  Status CompactAll();

  // For secondary instances: read what the primary wrote since. Refreshes LastSeq/FirstSeq.
  Status TryCatchUpWithPrimary();

  // Stops the kBatch sync thread, syncs the WAL and closes RocksDB. Idempotent; nothing may be
  // called on the log afterwards.
  Status Close();

  // Bytes on disk per column family ("events", "job_index", "default").
  std::vector<std::pair<std::string, std::uint64_t>> SizesOnDisk() const;
  std::uint64_t TotalSizeOnDisk() const;

  // A consistent copy of the store in `target_dir` (RocksDB checkpoint; hard links when it can).
  Status Checkpoint(const std::string& target_dir) const;

  SyncMode sync_mode() const { return options_.sync; }
  const std::string& dir() const { return dir_; }

 private:
  EventLog(std::string dir, LogOptions options, OpenMode mode);
  Status OpenDb(OpenMode mode, const std::string& scratch_dir);
  Status CheckOrWriteFormat();
  Status LoadBounds();
  void StartBatchSyncThread();
  struct BatchSyncer;
  void RunBatchSyncer(BatchSyncer* syncer);  // the kBatch thread's loop

  // Constant after construction.
  const std::string dir_;
  const LogOptions options_;
  const OpenMode mode_;
  // Set when opened; released by Close() (which the store calls once, after its writer ended).
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;  // owned by db_ (default family)
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // destroyed before db_
  rocksdb::ColumnFamilyHandle* events_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* index_cf_ = nullptr;

  // The last write failed: RocksDB must be resumed before the next, and the WAL must not be
  // synced meanwhile (its writer holds the error).
  std::atomic<bool> failed_{false};
  // kBatch: the last periodic WAL sync failed; the next Append syncs first or refuses.
  std::atomic<bool> sync_failed_{false};
  std::atomic<std::uint64_t> last_seq_{0};
  std::atomic<std::uint64_t> first_seq_{1};
  std::atomic<std::uint64_t> source_seq_{0};

  Status Write(const std::vector<SerializedEvent>& events, std::optional<std::uint64_t> source_seq);

  // The kBatch fsync thread.
  std::unique_ptr<BatchSyncer> syncer_;
};

}  // namespace jobstore::eventlog
