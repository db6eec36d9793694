// `jobstore inspect ...`, `jobstore replay` and `jobstore backup`: wiring of the offline tools.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace jobstore::cli {

void AddInspectCommand(CLI::App& app, std::function<int()>& run);
void AddReplayCommand(CLI::App& app, std::function<int()>& run);
void AddBackupCommand(CLI::App& app, std::function<int()>& run);

}  // namespace jobstore::cli
