// The offline tools behind `jobstore inspect`, `jobstore replay` and `jobstore backup`.
//
// They read a data directory through a RocksDB secondary instance (ToolLog), so they work while
// `jobstore serve` runs on it, see what it has written up to the moment they open, and never
// change it. Every function writes its output to `out` and returns an error value for the CLI
// to print as one line.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "jobstore/core/status.h"
#include "jobstore/eventlog/event_log.h"
#include "jobstore/projections/analytics.h"

namespace jobstore::tools {

// The log of a data directory, opened for reading beside a running server. The secondary
// instance's own files live in a temporary directory removed at destruction.
class ToolLog {
 public:
  static StatusOr<std::unique_ptr<ToolLog>> Open(const std::string& data_dir);
  ~ToolLog();
  eventlog::EventLog& log() { return *log_; }
  const std::string& data_dir() const { return data_dir_; }

 private:
  ToolLog() = default;
  std::string data_dir_;
  std::string scratch_;
  std::unique_ptr<eventlog::EventLog> log_;
};

// Reports progress on stderr while a long scan runs, when stderr is a terminal: events/s and the
// share of the seq range done. Silent otherwise.
class Progress {
 public:
  Progress(std::uint64_t first_seq, std::uint64_t last_seq);
  ~Progress();
  void Update(std::uint64_t seq);

 private:
  const bool enabled_;
  const std::uint64_t first_, last_;
  std::uint64_t count_ = 0;
  std::int64_t started_ms_, next_ms_;
};

Status PrintStats(ToolLog& log, std::ostream& out);

struct DumpOptions {
  std::optional<std::uint64_t> from_seq, to_seq;
  std::optional<std::string> job_id;
  std::optional<EventType> type;
  std::optional<TimeMs> since, until;
  bool table = false;  // else JSON lines, exactly as GET /api/v1/events shows each event
};
Status Dump(ToolLog& log, const DumpOptions& options, std::ostream& out);

Status PrintJob(ToolLog& log, const std::string& job_id, std::ostream& out);

struct Problem {
  std::uint64_t seq = 0;
  std::string job_id;
  std::string what;
};
// Checks checksums and decoding, seq order and gaps, per-job versions, job_index against the
// log, that every event applies to the state before it, and that the newest snapshot agrees with
// the replay. An empty result means clean.
StatusOr<std::vector<Problem>> Verify(ToolLog& log, std::ostream& out);

// Replays events with seq <= until_seq and at <= until_time (each when given).
struct ReplayOptions {
  std::optional<std::uint64_t> until_seq;
  std::optional<TimeMs> until_time;
};
StatusOr<AnalyticsProjection> Replay(ToolLog& log, const ReplayOptions& options);

// Renders report tables as "table", "json" or "csv".
std::string RenderReports(const std::vector<ReportTable>& tables, const std::string& format);

// What a backup holds: events up to last_seq; with --nats, the stream position its copy reached
// (an instance started on the copy follows the stream from stream_seq + 1); the snapshot copied.
struct BackupInfo {
  std::uint64_t last_seq = 0;
  std::uint64_t stream_seq = 0;    // 0: not a copy of a replicated log
  std::uint64_t snapshot_seq = 0;  // 0: none copied
};

// A consistent copy of a (possibly live) store in `to_dir`, which must not exist yet.
StatusOr<BackupInfo> Backup(const std::string& data_dir, const std::string& to_dir);

}  // namespace jobstore::tools
