// Flag helpers shared by the subcommands: durations, HOST:PORT, and CLI11 wiring that gives
// every flag its JOBSTORE_<FLAG> environment variable.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "jobstore/core/status.h"

namespace jobstore::cli {

// Exit codes of every subcommand.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// "--data-dir" -> "JOBSTORE_DATA_DIR".
std::string EnvNameFor(const std::string& flag);

// Adds an option that also reads JOBSTORE_<FLAG>; the flag wins over the variable.
template <typename T>
CLI::Option* AddFlag(CLI::App& app, const std::string& flag, T& value, const std::string& help) {
  return app.add_option(flag, value, help)->envname(EnvNameFor(flag))->capture_default_str();
}

struct HostPort {
  std::string host;
  int port = 0;
};
// "127.0.0.1:8000", "localhost:0", "[::1]:8000".
StatusOr<HostPort> ParseHostPort(const std::string& text);
// Loopback addresses: 127.0.0.0/8, ::1, localhost.
bool IsLoopback(const std::string& host);

// Reads a secret from a file: the first line, without surrounding white space.
StatusOr<std::string> ReadSecretFile(const std::string& path);

}  // namespace jobstore::cli
