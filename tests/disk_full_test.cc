// A real full disk: the server's data dir on a small tmpfs mounted by the test (root only; the
// test is skipped with a message where mounting is impossible). Filling the file system makes
// writes answer 503 `unavailable` while reads keep working; freeing space lets writes resume
// without a restart; after a restart every acknowledged job is there and the log verifies clean.
#include <gtest/gtest.h>

#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "support/log_checks.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

namespace jobstore {
namespace {

using nlohmann::json;
using testing::Reply;
using testing::ServerProcess;
using testing::TempDir;

class SmallTmpfs {
 public:
  SmallTmpfs(const std::string& path, const std::string& size) : path_(path) {
    std::filesystem::create_directories(path);
    std::string opts = "size=" + size + ",mode=0700";
    if (::mount("tmpfs", path.c_str(), "tmpfs", 0, opts.c_str()) == 0) {
      mounted_ = true;
    } else {
      error_ = std::strerror(errno);
    }
  }
  ~SmallTmpfs() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

  // Writes `file` until the file system has no space left; returns the bytes written.
  std::uint64_t FillWith(const std::string& file) {
    std::FILE* f = std::fopen(file.c_str(), "wb");
    if (!f) return 0;
    std::string chunk(64 * 1024, 'f');
    std::uint64_t written = 0;
    for (;;) {
      std::size_t n = std::fwrite(chunk.data(), 1, chunk.size(), f);
      written += n;
      if (n < chunk.size() || std::fflush(f) != 0) break;
    }
    std::fclose(f);
    return written;
  }

 private:
  std::string path_;
  bool mounted_ = false;
  std::string error_;
};

std::string ServerLog(const ServerProcess& s) {
  std::string text;
  for (const auto& line : s.Lines()) text += line + "\n";
  return text;
}

std::size_t Occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(DiskFull, WritesAnswer503ReadsWorkAndWritesResumeWhenSpaceReturns) {
  TempDir dir;
  SmallTmpfs fs(dir.Sub("small"), "48m");
  if (!fs.mounted()) {
    GTEST_SKIP() << "cannot mount a tmpfs here (" << fs.error()
                 << "); the full-disk test needs root and mount rights";
  }
  const std::string data = dir.Sub("small") + "/data";
  const std::string filler = dir.Sub("small") + "/filler";
  std::set<std::string> acked;
  const std::string input(8 * 1024, 'x');
  {
    ServerProcess s(data);
    ASSERT_TRUE(s.started());
    for (int i = 0; i < 20; ++i) {
      std::string id = "before-" + std::to_string(i);
      ASSERT_EQ(s.Post("/api/v1/jobs", {{"job_id", id}, {"input", {{"text", input}}}}).status, 201);
      acked.insert(id);
    }
    std::uint64_t filled = fs.FillWith(filler);
    std::printf("[ setup ] filled the tmpfs with %llu bytes\n", static_cast<unsigned long long>(filled));

    // Write until the disk refuses: there may be room left in a preallocated WAL block.
    Reply refused;
    for (int i = 0; i < 5000; ++i) {
      std::string id = "fill-" + std::to_string(i);
      refused = s.Post("/api/v1/jobs", {{"job_id", id}, {"input", {{"text", input}}}});
      if (refused.status == 201) acked.insert(id);
      if (refused.status != 201) break;
    }
    ASSERT_EQ(refused.status, 503) << refused.raw << "\nserver log:\n" << ServerLog(s);
    EXPECT_EQ(refused.body["error"]["code"], "unavailable");

    // Full: reads work, writes keep answering 503, the server stays up.
    for (int i = 0; i < 5; ++i) {
      Reply again = s.Post("/api/v1/jobs", {{"job_id", "while-full-" + std::to_string(i)}});
      EXPECT_EQ(again.status, 503) << again.raw;
    }
    EXPECT_EQ(s.Get("/api/v1/jobs/before-3").status, 200);
    EXPECT_EQ(s.Get("/api/v1/jobs?limit=5").status, 200);
    EXPECT_EQ(s.Get("/api/v1/events?limit=5").status, 200);
    EXPECT_EQ(s.Get("/healthz").status, 200);
    EXPECT_EQ(s.Get("/api/v1/jobs/while-full-0").status, 404);  // nothing partial

    // Space returns: writes resume in the same process, with the first write.
    std::filesystem::remove(filler);
    Reply resumed = s.Post("/api/v1/jobs", {{"job_id", "after-space"}});
    ASSERT_EQ(resumed.status, 201) << resumed.raw << "\nserver log:\n" << ServerLog(s);
    acked.insert("after-space");
    ASSERT_EQ(s.Post("/api/v1/jobs/after-space/start").status, 200);
    // The operator sees the outage and its end in the server's log, once each.
    EXPECT_TRUE(s.WaitForLine("refuses writes until the cause is fixed: appending to the event "
                              "log: IO error: No space left"))
        << ServerLog(s);
    EXPECT_TRUE(s.WaitForLine("takes writes again")) << ServerLog(s);
    const std::string log = ServerLog(s);
    EXPECT_EQ(Occurrences(log, "refuses writes until the cause is fixed"), 1u) << log;
    EXPECT_EQ(Occurrences(log, "takes writes again"), 1u) << log;
    EXPECT_EQ(s.Terminate(), 0);
  }
  int verify_code = -1;
  std::string report = testing::VerifyOffline(data, &verify_code);
  EXPECT_EQ(verify_code, 0) << report;

  ServerProcess s(data);
  ASSERT_TRUE(s.started());
  for (const auto& id : acked) EXPECT_EQ(s.Get("/api/v1/jobs/" + id).status, 200) << id;
  EXPECT_EQ(s.Get("/api/v1/jobs/after-space").body["status"], "running");
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(s.Get("/api/v1/jobs/while-full-" + std::to_string(i)).status, 404);
  }
  std::printf("[ measured ] %zu jobs acknowledged around the full disk, all present after restart\n",
              acked.size());
}

}  // namespace
}  // namespace jobstore
