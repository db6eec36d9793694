// jobstore: one executable, one subcommand per job. Wiring only.
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "flags.h"
#include "serve_command.h"
#include "tool_commands.h"
#include "version_info.h"

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("jobstore"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);

  CLI::App app("jobstore: a durable, event-sourced job store", "jobstore");
  app.require_subcommand(1);
  app.set_version_flag("--version",
                       std::string("jobstore ") + jobstore::cli::kVersion + " (commit " +
                           jobstore::cli::kGitCommit + ")");
  std::function<int()> run;
  jobstore::cli::AddServeCommand(app, run);
  jobstore::cli::AddInspectCommand(app, run);
  jobstore::cli::AddReplayCommand(app, run);
  jobstore::cli::AddBackupCommand(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return jobstore::cli::kExitUsage;
  }
  return run ? run() : jobstore::cli::kExitUsage;
}
