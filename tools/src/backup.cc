// backup: a RocksDB checkpoint of the log (hard links where the filesystem allows), taken
// through a secondary instance so the server keeps running, plus the newest snapshot it covers.
#include <sys/stat.h>

#include <filesystem>

#include "jobstore/store/snapshot.h"
#include "jobstore/tools/tools.h"

namespace jobstore::tools {

StatusOr<BackupInfo> Backup(const std::string& data_dir, const std::string& to_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(to_dir, ec)) return InvalidArgument("'" + to_dir + "' already exists");
  JOBSTORE_ASSIGN_OR_RETURN(auto tl, ToolLog::Open(data_dir));
  JOBSTORE_RETURN_IF_ERROR((tl)->log().Checkpoint(to_dir));
  ::chmod(to_dir.c_str(), 0700);
  // The secondary instance sees the log as of its opening: what the checkpoint holds.
  BackupInfo info{tl->log().LastSeq(), tl->log().SourceSeq(), 0};
  std::vector<std::string> warnings;
  SnapshotContents snapshot = LoadNewestSnapshot(data_dir, (tl)->log().LastSeq(), &warnings);
  if (snapshot.seq > 0) {
    // Only a snapshot at or below the copied seq; copied as written, checksum and all.
    const std::string name = SnapshotFileName(snapshot.seq);
    fs::create_directories(SnapshotDir(to_dir), ec);
    fs::copy_file(fs::path(SnapshotDir(data_dir)) / name, fs::path(SnapshotDir(to_dir)) / name, ec);
    if (ec) return Unavailable("copying the snapshot failed: " + ec.message());
    info.snapshot_seq = snapshot.seq;
  }
  return info;
}

}  // namespace jobstore::tools
