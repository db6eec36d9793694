// `jobstore serve --config FILE` and `jobstore --version`, as an operator runs them: the file's
// flags take effect, the command line and the environment win over it, and a bad file stops the
// server before it starts, naming the key.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <string>

#include "support/server_process.h"
#include "support/temp_dir.h"

namespace jobstore {
namespace {

using testing::ServerProcess;
using testing::TempDir;

struct CommandRun {
  int exit_code = -1;
  std::string text;
};

CommandRun RunJobstore(std::vector<std::string> args) {
  args.insert(args.begin(), JOBSTORE_BINARY);
  testing::ChildProcess child(args, /*merge_stderr=*/true);
  CommandRun run;
  std::string line;
  while (child.ReadLine(&line)) run.text += line + "\n";
  const int status = child.Wait();
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

class ServeConfigTest : public ::testing::Test {
 protected:
  std::string WriteFile(const std::string& name, const std::string& text) {
    const std::string path = dir_.Sub(name);
    std::ofstream(path) << text;
    return path;
  }
  // The status of a create whose body is `bytes` long (the body limit decides 201 or 413).
  static int CreateOfSize(const ServerProcess& s, std::size_t bytes) {
    const std::string head = R"({"type":"t","input":")", tail = R"("})";
    const std::string body = head + std::string(bytes - head.size() - tail.size(), 'x') + tail;
    httplib::Client c("127.0.0.1", s.port());
    auto r = c.Post("/api/v1/jobs", body, "application/json");
    return r ? r->status : 0;
  }
  TempDir dir_;
};

TEST_F(ServeConfigTest, CommandLineBeatsEnvironmentBeatsFileBeatsDefault) {
  const std::string config = WriteFile("jobstore.toml",
                                       "# every flag may live here\n"
                                       "max-body-bytes = 1000\n"
                                       "job_ttl = \"2h\"\n");
  {  // the file over the default (1 MiB)
    ServerProcess s(dir_.Sub("a"), {"--config", config});
    ASSERT_TRUE(s.started()) << ::testing::PrintToString(s.Lines());
    EXPECT_EQ(CreateOfSize(s, 900), 201);
    EXPECT_EQ(CreateOfSize(s, 1500), 413);
  }
  {  // the environment over the file
    ServerProcess s(dir_.Sub("b"), {"--config", config}, {"/usr/bin/env", "JOBSTORE_MAX_BODY_BYTES=2000"});
    ASSERT_TRUE(s.started());
    EXPECT_EQ(CreateOfSize(s, 1500), 201);
    EXPECT_EQ(CreateOfSize(s, 2500), 413);
  }
  {  // the command line over both
    ServerProcess s(dir_.Sub("c"), {"--config", config, "--max-body-bytes", "3000"},
                    {"/usr/bin/env", "JOBSTORE_MAX_BODY_BYTES=2000"});
    ASSERT_TRUE(s.started());
    EXPECT_EQ(CreateOfSize(s, 2500), 201);
    EXPECT_EQ(CreateOfSize(s, 3500), 413);
  }
  {  // the file named by its variable; lists as TOML arrays, under a [serve] section
    const std::string hosts = WriteFile("hosts.toml",
                                        "[serve]\nallowed_hosts = [\"jobs.example\", \"b.example\"]\n");
    ServerProcess s(dir_.Sub("d"), {}, {"/usr/bin/env", "JOBSTORE_CONFIG=" + hosts});
    ASSERT_TRUE(s.started());
    EXPECT_EQ(s.Get("/api/v1/jobs", {{"Host", "jobs.example"}}).status, 200);
    EXPECT_EQ(s.Get("/api/v1/jobs", {{"Host", "b.example"}}).status, 200);
    EXPECT_EQ(s.Get("/api/v1/jobs", {{"Host", "c.example"}}).status, 421);
  }
}

TEST_F(ServeConfigTest, ABadFileStopsTheServerBeforeItStartsAndNamesTheKey) {
  CommandRun unknown = RunJobstore({"serve", "--data-dir", dir_.Sub("x"), "--config",
                             WriteFile("a.toml", "listen = \"127.0.0.1:0\"\nmax_bodybytes = 5\n")});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.text.find("unknown key 'max_bodybytes'"), std::string::npos) << unknown.text;
  CommandRun refused = RunJobstore({"serve", "--data-dir", dir_.Sub("x"), "--config",
                             WriteFile("b.toml", "sync = \"sometimes\"\n")});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.text.find("key 'sync'"), std::string::npos) << refused.text;
  CommandRun section = RunJobstore({"serve", "--data-dir", dir_.Sub("x"), "--config",
                             WriteFile("c.toml", "[inspect]\nformat = \"json\"\n")});
  EXPECT_EQ(section.exit_code, 2);
  EXPECT_NE(section.text.find("'inspect.format'"), std::string::npos) << section.text;
  CommandRun missing = RunJobstore({"serve", "--data-dir", dir_.Sub("x"), "--config", dir_.Sub("none")});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.text.find("cannot read"), std::string::npos) << missing.text;
  // Nothing started: no data directory was made.
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("x")));
}

TEST_F(ServeConfigTest, VersionNamesTheProjectVersionAndTheCommit) {
  CommandRun version = RunJobstore({"--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_TRUE(std::regex_search(version.text,
                                std::regex(R"(^jobstore \d+\.\d+\.\d+ \(commit ([0-9a-f]{12}(-modified)?|unknown)\)\n$)")))
      << version.text;
}

}  // namespace
}  // namespace jobstore
