#include "rocksdb_logger.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <string>

#include <spdlog/spdlog.h>

namespace jobstore::eventlog {
namespace {

class SpdlogForwarder : public rocksdb::Logger {
 public:
  SpdlogForwarder() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}

  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }

  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char buffer[1024];
    va_list copy;
    va_copy(copy, ap);
    int n = std::vsnprintf(buffer, sizeof buffer, format, copy);
    va_end(copy);
    if (n < 0) return;
    const auto length = std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buffer - 1);
    std::string_view text(buffer, length);
    switch (level) {
      case rocksdb::InfoLogLevel::DEBUG_LEVEL:
      case rocksdb::InfoLogLevel::INFO_LEVEL:
      case rocksdb::InfoLogLevel::HEADER_LEVEL:
        spdlog::info("rocksdb: {}", text);
        break;
      case rocksdb::InfoLogLevel::WARN_LEVEL:
        spdlog::warn("rocksdb: {}", text);
        break;
      default:
        spdlog::error("rocksdb: {}", text);
    }
  }
};

}  // namespace

std::shared_ptr<rocksdb::Logger> MakeRocksDbLogger() { return std::make_shared<SpdlogForwarder>(); }

}  // namespace jobstore::eventlog
