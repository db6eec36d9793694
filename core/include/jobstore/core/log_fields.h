// Fields for the log lines a thread writes while a LogFields lives:
//
//   LogFields fields({{"job_id", id}, {"status", "failed"}});
//   spdlog::error("background: the lease deadline of job '{}' failed: {}", id, why);
//
// With `--log-format json` (cli/src/log_format.cc) each field becomes a member of the line's
// object ({"time","level","message","job_id":...}); in text they follow the message as
// key=value. Nested scopes add to the outer ones. Header-only: any library may set fields
// without depending on the logging setup; a program that never formats them ignores them.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace jobstore {

class LogFields {
 public:
  using Field = std::pair<std::string, nlohmann::json>;

  explicit LogFields(std::vector<Field> fields) : added_(fields.size()) {
    for (auto& f : fields) Current().push_back(std::move(f));
  }
  ~LogFields() { Current().resize(Current().size() - added_); }
  LogFields(const LogFields&) = delete;
  LogFields& operator=(const LogFields&) = delete;

  // This thread's fields, outermost first.
  static std::vector<Field>& Current() {
    thread_local std::vector<Field> fields;
    return fields;
  }

 private:
  std::size_t added_;
};

}  // namespace jobstore
