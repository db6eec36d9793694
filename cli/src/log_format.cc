#include "log_format.h"

#include <chrono>
#include <memory>

#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "jobstore/core/log_fields.h"
#include "jobstore/core/time_format.h"

namespace jobstore::cli {
namespace {

constexpr const char* kTextPattern = "%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v%&";

// {"time","level","message"} a line; the message JSON-escaped (invalid UTF-8 replaced).
class JsonLineFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        msg.time.time_since_epoch())
                        .count();
    const auto level = spdlog::level::to_string_view(msg.level);
    nlohmann::ordered_json line = {
        {"time", FormatRfc3339(ms)},
        {"level", std::string(level.data(), level.size())},
        {"message", std::string(msg.payload.data(), msg.payload.size())}};
    for (const auto& [key, value] : LogFields::Current()) {
      if (key != "time" && key != "level" && key != "message") line[key] = value;
    }
    const std::string text =
        line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonLineFormatter>();
  }
};

// "%&" in the text pattern: the thread's LogFields as " key=value" (strings quoted when they
// hold a space or a quote).
class FieldsFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    for (const auto& [key, value] : LogFields::Current()) {
      std::string text = value.is_string() ? value.get<std::string>()
                                           : value.dump(-1, ' ', false,
                                                        nlohmann::json::error_handler_t::replace);
      if (value.is_string() && text.find_first_of(" \"=") != std::string::npos) {
        text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      }
      const std::string field = " " + key + "=" + text;
      dest.append(field.data(), field.data() + field.size());
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<FieldsFlag>();
  }
};

std::unique_ptr<spdlog::formatter> TextFormatter() {
  auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  f->add_flag<FieldsFlag>('&').set_pattern(kTextPattern);
  return f;
}

}  // namespace

Status ConfigureLogFormat(const std::string& format) {
  if (format != "text" && format != "json") {
    return InvalidArgument("--log-format is text or json, not '" + format + "'");
  }
  const bool json = format == "json";
  auto logger = spdlog::default_logger();
  if (json) {
    logger->set_formatter(std::make_unique<JsonLineFormatter>());
  } else {
    logger->set_formatter(TextFormatter());
  }
  // The access log has a sink of its own (a sink holds the format; in json mode the access
  // lines are whole objects already). Both write each line to stderr in one fwrite.
  spdlog::drop("access");
  auto access = std::make_shared<spdlog::logger>(
      "access", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (json) {
    access->set_pattern("%v");
  } else {
    access->set_formatter(TextFormatter());
  }
  spdlog::register_logger(access);
  return Status::Ok();
}

}  // namespace jobstore::cli
