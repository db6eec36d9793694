// Projection snapshots: every live job as of one seq, so that startup replays only the log's tail.
//
// Files: <data_dir>/snapshots/snapshot-<seq, 20 digits>.jss, written to a temporary name,
// fsynced and renamed, so a crash never leaves a torn snapshot under the final name.
//
//   file    := magic "JOBSNAP\0" | format:u32le | seq:u64le | jobs:u64le | retained:u64le
//              | jobs × record | retained × record | crc:u32le
//   record  := len:u32le | bytes (jobs: EncodeJobState, store/job_state_codec.h;
//                                retained: CBOR [job_id, created_seq, expired_seq, expired_at])
//   crc     := CRC-32C of everything before it
//
// A snapshot is only a cache of the log: one that fails its checksum, has another format, or
// names a seq beyond the log is skipped with a warning and the log is replayed in full.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "jobstore/core/job.h"
#include "jobstore/core/status.h"
#include "jobstore/projections/job_projection.h"

namespace jobstore {

// 1: jobs as CBOR state trees; 2: jobs in the binary state encoding. A format-1 snapshot is
// ignored (the log is replayed) and replaced by the next snapshot written.
inline constexpr std::uint32_t kSnapshotFormat = 2;

// An expired job whose events are still in the log (for history retention).
struct RetainedHistory {
  std::string job_id;
  std::uint64_t created_seq = 0;  // its history is the seqs [created_seq, expired_seq]
  std::uint64_t expired_seq = 0;
  TimeMs expired_at = 0;
};

struct SnapshotContents {
  std::uint64_t seq = 0;
  std::vector<std::shared_ptr<Job>> jobs;  // in creation order; not yet shared with anyone
  std::vector<RetainedHistory> retained;
};

std::string SnapshotDir(const std::string& data_dir);
// "snapshot-<seq, 20 digits>.jss"
std::string SnapshotFileName(std::uint64_t seq);

// Writes the snapshot and then removes all but the newest `keep` snapshots.
Status WriteSnapshot(const std::string& data_dir, std::uint64_t seq,
                     const std::vector<JobPtr>& jobs,
                     const std::vector<RetainedHistory>& retained, int keep = 2);

// The newest valid snapshot with seq <= max_seq, or an empty result (seq 0) when there is none.
// Each snapshot skipped is described in `warnings`.
SnapshotContents LoadNewestSnapshot(const std::string& data_dir, std::uint64_t max_seq,
                                    std::vector<std::string>* warnings);

}  // namespace jobstore
