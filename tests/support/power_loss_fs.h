// A RocksDB FileSystem that can lose power: the durability half of the fault tests.
//
// It tracks, for every file RocksDB writes, how many bytes were made durable (the size at the
// last Sync/Fsync/RangeSync-to-end, or the size the file had when it was reopened). CutPower()
// makes every later write, sync, create, rename and delete fail, as if the machine went dark;
// after the store is closed, DropUnsyncedData() truncates each file to its durable size, which
// is what a disk holds after power returns when the OS page cache is lost. Renames carry the
// durable size along (RocksDB installs CURRENT by renaming a synced temp file). A sync that is
// under way when the power goes counts as not done: it fails and its data is dropped.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

namespace jobstore::testing {

class PowerLossFileSystem : public rocksdb::FileSystemWrapper {
 public:
  explicit PowerLossFileSystem(const std::shared_ptr<rocksdb::FileSystem>& base)
      : FileSystemWrapper(base) {}
  const char* Name() const override { return "PowerLossFileSystem"; }

  void CutPower() { dark_.store(true); }
  bool dark() const { return dark_.load(); }

  // Truncates every tracked file to its durable size; returns the bytes dropped.
  std::uint64_t DropUnsyncedData() {
    std::lock_guard lock(mu_);
    std::uint64_t dropped = 0;
    for (const auto& [path, f] : files_) {
      struct stat st;
      if (::stat(path.c_str(), &st) != 0) continue;
      auto size = static_cast<std::uint64_t>(st.st_size);
      if (size > f.synced) {
        dropped += size - f.synced;
        if (::truncate(path.c_str(), static_cast<off_t>(f.synced)) != 0) return UINT64_MAX;
      }
    }
    return dropped;
  }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    if (dark()) return Dark();
    std::unique_ptr<rocksdb::FSWritableFile> file;
    auto s = target()->NewWritableFile(f, o, &file, dbg);
    if (s.ok()) *r = Track(f, std::move(file), 0);
    return s;
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override {
    if (dark()) return Dark();
    std::unique_ptr<rocksdb::FSWritableFile> file;
    auto s = target()->ReopenWritableFile(f, o, &file, dbg);
    struct stat st;
    std::uint64_t existing = ::stat(f.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
    if (s.ok()) *r = Track(f, std::move(file), existing);
    return s;
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old,
                                      const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override {
    if (dark()) return Dark();
    std::unique_ptr<rocksdb::FSWritableFile> file;
    auto s = target()->ReuseWritableFile(f, old, o, &file, dbg);
    if (s.ok()) *r = Track(f, std::move(file), 0);
    return s;
  }
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& dst,
                               const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    if (dark()) return Dark();
    auto s = target()->RenameFile(src, dst, o, dbg);
    if (s.ok()) {
      std::lock_guard lock(mu_);
      auto it = files_.find(src);
      if (it != files_.end()) {
        files_[dst] = it->second;
        files_.erase(src);
      }
    }
    return s;
  }
  rocksdb::IOStatus DeleteFile(const std::string& f, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override {
    if (dark()) return Dark();
    auto s = target()->DeleteFile(f, o, dbg);
    std::lock_guard lock(mu_);
    files_.erase(f);
    return s;
  }

 private:
  struct FileState {
    std::uint64_t written = 0;
    std::uint64_t synced = 0;
  };

  static rocksdb::IOStatus Dark() { return rocksdb::IOStatus::IOError("power is off"); }

  void Appended(const std::string& path, std::uint64_t n) {
    std::lock_guard lock(mu_);
    files_[path].written += n;
  }
  void Synced(const std::string& path) {
    std::lock_guard lock(mu_);
    auto& f = files_[path];
    f.synced = f.written;
  }

  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile> f, PowerLossFileSystem* fs, std::string path)
        : FSWritableFileOwnerWrapper(std::move(f)), fs_(fs), path_(std::move(path)) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& d, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->dark()) return Dark();
      auto s = FSWritableFileOwnerWrapper::Append(d, o, dbg);
      if (s.ok()) fs_->Appended(path_, d.size());
      return s;
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& d, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo& v,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->dark()) return Dark();
      auto s = FSWritableFileOwnerWrapper::Append(d, o, v, dbg);
      if (s.ok()) fs_->Appended(path_, d.size());
      return s;
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& d, uint64_t offset,
                                       const rocksdb::IOOptions& o,
                                       rocksdb::IODebugContext* dbg) override {
      if (fs_->dark()) return Dark();
      auto s = FSWritableFileOwnerWrapper::PositionedAppend(d, offset, o, dbg);
      if (s.ok()) {
        std::lock_guard lock(fs_->mu_);
        auto& f = fs_->files_[path_];
        f.written = std::max<std::uint64_t>(f.written, offset + d.size());
      }
      return s;
    }
    rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override {
      if (fs_->dark()) return Dark();
      auto s = FSWritableFileOwnerWrapper::Truncate(size, o, dbg);
      if (s.ok()) {
        std::lock_guard lock(fs_->mu_);
        auto& f = fs_->files_[path_];
        f.written = size;
        if (f.synced > size) f.synced = size;
      }
      return s;
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (fs_->dark()) return Dark();
      auto s = FSWritableFileOwnerWrapper::Sync(o, dbg);
      // A sync the cut interrupted made nothing durable, and its caller must not be told so.
      if (fs_->dark()) return Dark();
      if (s.ok()) fs_->Synced(path_);
      return s;
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (fs_->dark()) return Dark();
      auto s = FSWritableFileOwnerWrapper::Fsync(o, dbg);
      // A sync the cut interrupted made nothing durable, and its caller must not be told so.
      if (fs_->dark()) return Dark();
      if (s.ok()) fs_->Synced(path_);
      return s;
    }
    rocksdb::IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const rocksdb::IOOptions& o,
                                rocksdb::IODebugContext* dbg) override {
      if (fs_->dark()) return Dark();
      // Not counted as durable: RocksDB follows it with a Sync before relying on the data.
      return FSWritableFileOwnerWrapper::RangeSync(offset, nbytes, o, dbg);
    }
    rocksdb::IOStatus Flush(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (fs_->dark()) return Dark();
      return FSWritableFileOwnerWrapper::Flush(o, dbg);
    }

   private:
    PowerLossFileSystem* fs_;
    std::string path_;
  };

  std::unique_ptr<rocksdb::FSWritableFile> Track(const std::string& path,
                                                 std::unique_ptr<rocksdb::FSWritableFile> file,
                                                 std::uint64_t existing) {
    {
      std::lock_guard lock(mu_);
      files_[path] = FileState{existing, existing};
    }
    return std::make_unique<File>(std::move(file), this, path);
  }

  std::atomic<bool> dark_{false};
  std::mutex mu_;
  std::map<std::string, FileState> files_;  // guarded by mu_
};

// An Env over a PowerLossFileSystem; keep both alive as long as the store.
struct PowerLossEnv {
  std::shared_ptr<PowerLossFileSystem> fs =
      std::make_shared<PowerLossFileSystem>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
};

}  // namespace jobstore::testing
