// `jobstore inspect | replay | backup` as a user runs them: against a directory the real server
// keeps writing to, with the exit codes and one-line errors of the contract.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/server_process.h"
#include "support/temp_dir.h"

namespace jobstore {
namespace {

using nlohmann::json;
using testing::ServerProcess;
using testing::TempDir;

struct ToolRun {
  int exit_code = -1;
  std::vector<std::string> lines;
  std::string Text() const {
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
  }
};

ToolRun RunTool(std::vector<std::string> args, bool with_stderr = true) {
  args.insert(args.begin(), JOBSTORE_BINARY);
  testing::ChildProcess child(args, with_stderr);
  ToolRun run;
  std::string line;
  while (child.ReadLine(&line)) run.lines.push_back(line);
  int status = child.Wait();
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

class ToolsCliTest : public ::testing::Test {
 protected:
  void Populate(ServerProcess& s, int jobs) {
    for (int i = 0; i < jobs; ++i) {
      std::string id = s.Post("/api/v1/jobs", {{"type", i % 2 ? "a" : "b"}, {"input", {{"text", "héllo ✓"}}}})
                           .body["job_id"];
      s.Post("/api/v1/jobs/" + id + "/start");
      if (i % 3 == 0) {
        s.Post("/api/v1/jobs/" + id + "/hitl", {{"prompt", {{"q", "ok?"}}}});
        s.Post("/api/v1/jobs/" + id + "/hitl/response", {{"request_id", "h-1"}, {"response", true}});
      }
      s.Post("/api/v1/jobs/" + id + "/complete", {{"result", i}});
    }
  }
  TempDir dir_;
};

TEST_F(ToolsCliTest, DumpJsonlIsByteForByteTheApiFeed) {
  ServerProcess s(dir_.Sub("data"));
  Populate(s, 10);
  testing::Reply feed = s.Get("/api/v1/events?limit=1000");
  ToolRun dump = RunTool({"inspect", "--data-dir", dir_.Sub("data"), "dump"}, false);
  ASSERT_EQ(dump.exit_code, 0);
  ASSERT_EQ(dump.lines.size(), feed.body["events"].size());
  // The API's body is {"events":[e1,e2,...],...}: the dump's lines joined by commas, exactly.
  std::string joined;
  for (const auto& l : dump.lines) joined += (joined.empty() ? "" : ",") + l;
  EXPECT_NE(feed.raw.find("\"events\":[" + joined + "]"), std::string::npos);
  ToolRun filtered = RunTool({"inspect", "--data-dir", dir_.Sub("data"), "dump", "--type",
                              "job.hitl_answered", "--format", "table"}, false);
  EXPECT_EQ(filtered.lines.size(), 4u);
}

TEST_F(ToolsCliTest, EveryToolWorksWhileTheServerKeepsWriting) {
  ServerProcess s(dir_.Sub("data"));
  Populate(s, 20);
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::thread writer([&] {
    while (!stop) {
      if (s.Post("/api/v1/jobs", {{"type", "live"}}).status == 201) written++;
    }
  });
  ToolRun stats = RunTool({"inspect", "--data-dir", dir_.Sub("data"), "stats"}, false);
  EXPECT_EQ(stats.exit_code, 0);
  EXPECT_GE(json::parse(stats.Text())["events"].get<int>(), 20 * 3);
  ToolRun verify = RunTool({"inspect", "--data-dir", dir_.Sub("data"), "verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.Text();
  ToolRun replay = RunTool({"replay", "--data-dir", dir_.Sub("data"), "--report", "all",
                            "--format", "json"}, false);
  EXPECT_EQ(replay.exit_code, 0);
  json reports = json::parse(replay.Text());
  for (const char* table : {"jobs_by_status", "durations_seconds", "hitl_response_seconds",
                            "throughput_per_hour", "stalled_jobs"}) {
    EXPECT_TRUE(reports.contains(table)) << table;
  }
  ToolRun job = RunTool({"inspect", "--data-dir", dir_.Sub("data"), "job",
                         s.Get("/api/v1/jobs?type=a&limit=1").body["jobs"][0]["job_id"]}, false);
  EXPECT_EQ(job.exit_code, 0);
  EXPECT_NE(job.Text().find("job.completed"), std::string::npos);
  ToolRun backup = RunTool({"backup", "--data-dir", dir_.Sub("data"), "--to", dir_.Sub("copy")});
  EXPECT_EQ(backup.exit_code, 0) << backup.Text();
  stop = true;
  writer.join();
  EXPECT_GT(written.load(), 0);
  // The server was never disturbed, and the copy is a store of its own.
  EXPECT_EQ(s.Get("/readyz").status, 200);
  EXPECT_EQ(RunTool({"inspect", "--data-dir", dir_.Sub("copy"), "verify"}).exit_code, 0);
  ServerProcess copy(dir_.Sub("copy"));
  ASSERT_TRUE(copy.started());
  EXPECT_GE(copy.Get("/api/v1/stats").body["jobs"]["completed"].get<int>(), 20);
}

TEST_F(ToolsCliTest, FlagsAlsoReadJobstoreEnvironmentVariablesAndTheFlagWins) {
  {
    ServerProcess s(dir_.Sub("data"));
    Populate(s, 2);
  }
  ::setenv("JOBSTORE_DATA_DIR", dir_.Sub("data").c_str(), 1);
  ToolRun from_env = RunTool({"inspect", "stats"}, false);
  ToolRun flag_wins = RunTool({"inspect", "--data-dir", dir_.Sub("nope"), "stats"});
  ::unsetenv("JOBSTORE_DATA_DIR");
  EXPECT_EQ(from_env.exit_code, 0);
  EXPECT_EQ(json::parse(from_env.Text())["events"], 8);
  EXPECT_EQ(flag_wins.exit_code, 1);
}

TEST_F(ToolsCliTest, ErrorsAreOneLineWithTheContractsExitCodes) {
  ToolRun missing = RunTool({"inspect", "--data-dir", dir_.Sub("nope"), "stats"});
  EXPECT_EQ(missing.exit_code, 1);
  ASSERT_EQ(missing.lines.size(), 1u);
  EXPECT_NE(missing.lines[0].find("does not exist"), std::string::npos);
  std::filesystem::create_directories(dir_.Sub("empty"));
  std::ofstream(dir_.Sub("empty/file")) << "x";
  ToolRun foreign = RunTool({"replay", "--data-dir", dir_.Sub("empty")});
  EXPECT_EQ(foreign.exit_code, 1);
  EXPECT_NE(foreign.Text().find("not a jobstore data directory"), std::string::npos);
  EXPECT_EQ(RunTool({"inspect", "stats"}).exit_code, 2);
  EXPECT_EQ(RunTool({"inspect", "--data-dir", dir_.Sub("nope")}).exit_code, 2);
  EXPECT_EQ(RunTool({"inspect", "--data-dir", dir_.Sub("nope"), "dump", "--type", "x"}).exit_code, 2);
  EXPECT_EQ(RunTool({"replay", "--data-dir", dir_.Sub("nope"), "--until", "yesterday"}).exit_code, 2);
  EXPECT_EQ(RunTool({"replay", "--data-dir", dir_.Sub("nope"), "--report", "everything"}).exit_code, 2);
  EXPECT_EQ(RunTool({"backup", "--data-dir", dir_.Sub("nope")}).exit_code, 2);
  EXPECT_EQ(RunTool({"serve", "--data-dir", dir_.Sub("x"), "--listen", "127.0.0.1:0",
                     "--compaction-interval", "10ms"}).exit_code, 2);
  EXPECT_EQ(RunTool({"serve", "--listen", "nowhere"}).exit_code, 2);
  ToolRun help = RunTool({"replay", "--help"}, false);
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.Text().find("--stalled-after"), std::string::npos);
}

}  // namespace
}  // namespace jobstore
