// Checks the crash and fault tests run after a restart: the feed is gapless, and the offline
// `jobstore inspect verify` finds nothing wrong with the data directory.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdint>
#include <string>

#include "support/child_process.h"
#include "support/server_process.h"

namespace jobstore::testing {

// Pages through GET /api/v1/events: seqs first..head, none missing.
inline void ExpectGaplessFeed(const ServerProcess& s, std::uint64_t first = 1) {
  std::uint64_t expected = first, after = first - 1;
  const std::uint64_t head =
      s.Get("/api/v1/events?limit=1&after=" + std::to_string(after)).body["head"];
  while (after < head) {
    nlohmann::json page = s.Get("/api/v1/events?limit=1000&after=" + std::to_string(after)).body;
    for (const auto& e : page["events"]) ASSERT_EQ(e["seq"], expected++);
    after = page["next_after"];
  }
  EXPECT_EQ(expected - 1, head);
}

// Runs `jobstore inspect --data-dir DIR verify`; returns its output and sets *exit_code.
inline std::string VerifyOffline(const std::string& data_dir, int* exit_code) {
  ChildProcess child({JOBSTORE_BINARY, "inspect", "--data-dir", data_dir, "verify"}, true);
  std::string text, line;
  while (child.ReadLine(&line)) text += line + "\n";
  const int status = child.Wait();
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return text;
}

}  // namespace jobstore::testing
