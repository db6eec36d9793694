// `jobstore serve --config FILE`: every flag of a subcommand may live in a TOML or INI file
// (CLI11's reader), one `key = value` per flag, the key being the flag without its dashes
// (`data-dir` or `data_dir`), lists as TOML arrays; keys may sit at the top or under a section
// named after the subcommand (`[serve]`).
//
// Precedence: command line > environment (JOBSTORE_<FLAG>) > file > default. The file fills in
// only the flags neither of the first two set. An unknown key, a section of another name, or a
// value its flag refuses is kInvalidArgument naming the key and the file, and nothing of the
// file is left half applied in a way that matters: the command does not run.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "jobstore/core/status.h"

namespace jobstore::cli {

Status ApplyConfigFile(CLI::App& command, const std::string& path);

}  // namespace jobstore::cli
