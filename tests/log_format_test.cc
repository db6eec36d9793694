// --log-format json and --access-log against the real server: every line a JSON object a log
// shipper can read, one access line per request with its fields, and no secret in any line.
#include <gtest/gtest.h>

#include <fstream>

#include "support/server_process.h"
#include "support/temp_dir.h"

namespace jobstore {
namespace {

using nlohmann::json;
using testing::ServerProcess;
using testing::TempDir;

class LogFormatTest : public ::testing::Test {
 protected:
  std::string TokenFile() {
    const std::string path = dir_.Sub("token");
    std::ofstream(path) << "tok-SECRET-123\n";
    return path;
  }
  // Waits until the server wrote a line containing `needle` (the access line follows the answer).
  static bool WaitForLine(const ServerProcess& s, const std::string& needle) {
    for (int i = 0; i < 200; ++i) {
      for (const auto& l : s.Lines()) {
        if (l.find(needle) != std::string::npos) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  TempDir dir_;
};

TEST_F(LogFormatTest, JsonLinesCarryTimeLevelMessageAndAccessFieldsWithoutSecrets) {
  ServerProcess s(dir_.Sub("data"),
                  {"--log-format", "json", "--access-log", "--token-file", TokenFile()});
  ASSERT_TRUE(s.started());
  httplib::Headers auth = {{"Authorization", "Bearer tok-SECRET-123"}};
  testing::Reply created = s.Post("/api/v1/jobs", {{"type", "t"}, {"input", "body-SECRET"}}, auth);
  ASSERT_EQ(created.status, 201);
  EXPECT_EQ(s.Get("/api/v1/jobs?label=k:query-SECRET", auth).status, 200);
  EXPECT_EQ(s.Get("/api/v1/jobs").status, 401);
  ASSERT_TRUE(WaitForLine(s, "\"status\":401"));

  int access_lines = 0;
  bool saw_create = false, saw_list = false;
  for (const std::string& line : s.Lines()) {
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(j.is_object()) << "not a JSON object: " << line;
    ASSERT_TRUE(j.contains("time") && j.contains("level") && j.contains("message")) << line;
    EXPECT_EQ(line.find("SECRET"), std::string::npos) << "a secret reached the log: " << line;
    if (j["message"] != "request") continue;
    ++access_lines;
    EXPECT_TRUE(j["duration_ms"].is_number()) << line;
    EXPECT_TRUE(j["bytes"].is_number()) << line;
    EXPECT_NE(j["remote"].get<std::string>().find("127.0.0.1:"), std::string::npos) << line;
    if (j["method"] == "POST" && j["path"] == "/api/v1/jobs") {
      saw_create = true;
      EXPECT_EQ(j["status"], 201);
      EXPECT_EQ(j["route"], "/api/v1/jobs") << line;
    }
    if (j["method"] == "GET" && j["path"] == "/api/v1/jobs" && j["status"] == 200) saw_list = true;
  }
  EXPECT_TRUE(saw_create);
  // Lines about a thing carry it as fields (core/log_fields.h): the start names port and seq.
  bool saw_start = false;
  for (const std::string& line : s.Lines()) {
    json j = json::parse(line, nullptr, false);
    if (!j.is_object() || j["message"].get<std::string>().rfind("jobstore serving", 0) != 0) continue;
    saw_start = true;
    EXPECT_EQ(j["port"], s.port()) << line;
    EXPECT_TRUE(j["seq"].is_number() && j["jobs"].is_number()) << line;
  }
  EXPECT_TRUE(saw_start);
  EXPECT_TRUE(saw_list) << "the list's line names its path without the query";
  EXPECT_GE(access_lines, 3);
}

TEST_F(LogFormatTest, TextIsTheDefaultAndTheAccessLogIsOffUnlessAsked) {
  {
    ServerProcess s(dir_.Sub("a"));
    ASSERT_TRUE(s.started());
    EXPECT_EQ(s.Get("/api/v1/jobs").status, 200);
    EXPECT_EQ(s.Post("/api/v1/jobs", {{"type", "t"}}).status, 201);
    EXPECT_EQ(s.Terminate(), 0);
    for (const std::string& line : s.Lines()) {
      EXPECT_EQ(line.find("access "), std::string::npos) << line;
      EXPECT_NE(line.front(), '{') << line;
    }
  }
  ServerProcess s(dir_.Sub("b"), {"--access-log"});
  ASSERT_TRUE(s.started());
  // The start's line (others, such as the first compaction's, may follow it at any moment).
  std::string start;
  for (const std::string& line : s.Lines()) {
    if (line.find("jobstore serving") != std::string::npos) start = line;
  }
  EXPECT_NE(start.find(" port=" + std::to_string(s.port()) + " seq=0 jobs=0"), std::string::npos)
      << "the start's fields follow its message: " << start;
  EXPECT_GE(s.Get("/api/v1/jobs/nope%0Aforged").status, 400);
  ASSERT_TRUE(WaitForLine(s, "access GET /api/v1/jobs/nope"));
  for (const std::string& line : s.Lines()) {
    // The decoded %0A did not start a line of its own: the path's line shows it as '?'.
    EXPECT_NE(line.rfind("forged", 0), 0u) << line;
    if (line.find("access GET /api/v1/jobs/nope") != std::string::npos) {
      EXPECT_NE(line.find("/api/v1/jobs/nope?forged 4"), std::string::npos) << line;
    }
  }
}

TEST_F(LogFormatTest, AnUnknownFormatIsAUsageError) {
  ServerProcess s(dir_.Sub("c"), {"--log-format", "xml"});
  EXPECT_FALSE(s.started());
}

}  // namespace
}  // namespace jobstore
