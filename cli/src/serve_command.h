// `jobstore serve`: open the store, serve the API, stop cleanly on SIGINT/SIGTERM.
#pragma once

#include <CLI/CLI.hpp>

namespace jobstore::cli {

// Adds the subcommand to `app`; `run` is set to the function that runs it once parsed.
void AddServeCommand(CLI::App& app, std::function<int()>& run);

}  // namespace jobstore::cli
