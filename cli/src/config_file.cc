#include "config_file.h"

#include <algorithm>
#include <vector>

namespace jobstore::cli {
namespace {

// "data_dir" -> "data-dir": TOML users write either.
std::string FlagName(std::string key) {
  std::replace(key.begin(), key.end(), '_', '-');
  return key;
}

}  // namespace

Status ApplyConfigFile(CLI::App& command, const std::string& path) {
  std::vector<CLI::ConfigItem> items;
  try {
    items = CLI::ConfigTOML().from_file(path);
  } catch (const CLI::Error& e) {
    return InvalidArgument("--config: cannot read '" + path + "': " + e.what());
  }
  for (const CLI::ConfigItem& item : items) {
    // CLI11 marks entering and leaving a section with the names "++" and "--".
    if (item.name == "++" || item.name == "--") continue;
    if (!item.parents.empty() &&
        (item.parents.size() != 1 || item.parents.front() != command.get_name())) {
      return InvalidArgument("--config '" + path + "': unknown section or key '" +
                             item.fullname() + "' (keys sit at the top or under [" +
                             command.get_name() + "])");
    }
    const std::string flag = FlagName(item.name);
    CLI::Option* option = command.get_option_no_throw("--" + flag);
    if (option == nullptr || flag == "config" || flag == "help") {
      return InvalidArgument("--config '" + path + "': unknown key '" + item.fullname() +
                             "': `jobstore " + command.get_name() + " --help` lists the flags");
    }
    if (option->count() > 0) continue;  // set on the command line or by its variable
    try {
      option->add_result(item.inputs);
      option->run_callback();
    } catch (const CLI::Error& e) {
      return InvalidArgument("--config '" + path + "': key '" + item.fullname() + "': " +
                             e.what());
    }
  }
  return Status::Ok();
}

}  // namespace jobstore::cli
