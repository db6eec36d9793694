// A RocksDB FileSystem that fails writes on demand: the injected-error half of the fault tests.
// While failing() is set, every Append/Sync/Fsync of a writable file answers an error: NoSpace
// (a full disk: the event log turns RocksDB's background recovery off and calls Resume() itself
// before the next write, so the first write after space returns succeeds) or, with
// set_hard_errors(true), a plain I/O error (a failing disk, which RocksDB refuses to resume from).
#pragma once

#include <atomic>
#include <memory>

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

namespace jobstore::testing {

class FaultyFileSystem : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultyFileSystem(const std::shared_ptr<rocksdb::FileSystem>& base)
      : FileSystemWrapper(base) {}
  const char* Name() const override { return "FaultyFileSystem"; }

  void set_failing(bool on) { failing_.store(on); }
  void set_hard_errors(bool on) { hard_.store(on); }
  rocksdb::IOStatus Error() const {
    return hard_.load() ? rocksdb::IOStatus::IOError("injected: write failed")
                        : rocksdb::IOStatus::NoSpace("injected: no space left");
  }
  bool failing() const { return failing_.load(); }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    auto s = target()->NewWritableFile(f, o, &file, dbg);
    if (s.ok()) *r = std::make_unique<File>(std::move(file), this);
    return s;
  }

 private:
  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile> f, FaultyFileSystem* fs)
        : FSWritableFileOwnerWrapper(std::move(f)), fs_(fs) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& d, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->failing()) return fs_->Error();
      return FSWritableFileOwnerWrapper::Append(d, o, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& d, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo& v,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->failing()) return fs_->Error();
      return FSWritableFileOwnerWrapper::Append(d, o, v, dbg);
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (fs_->failing()) return fs_->Error();
      return FSWritableFileOwnerWrapper::Sync(o, dbg);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (fs_->failing()) return fs_->Error();
      return FSWritableFileOwnerWrapper::Fsync(o, dbg);
    }

   private:
    FaultyFileSystem* fs_;
  };

  std::atomic<bool> failing_{false};
  std::atomic<bool> hard_{false};
};

// An Env over a FaultyFileSystem; keep both alive as long as the log.
struct FaultyEnv {
  std::shared_ptr<FaultyFileSystem> fs =
      std::make_shared<FaultyFileSystem>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
};

}  // namespace jobstore::testing
