#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "jobstore/tools/tools.h"

namespace jobstore::tools {
namespace {

std::int64_t NowMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

StatusOr<std::unique_ptr<ToolLog>> ToolLog::Open(const std::string& data_dir) {
  std::unique_ptr<ToolLog> t(new ToolLog());
  t->data_dir_ = data_dir;
  std::string tmpl = std::filesystem::temp_directory_path().string() + "/jobstore-tool-XXXXXX";
  if (!::mkdtemp(tmpl.data())) return Unavailable("cannot create a temporary directory");
  t->scratch_ = tmpl;
  JOBSTORE_ASSIGN_OR_RETURN(
      t->log_, eventlog::EventLog::OpenForTools(data_dir, eventlog::OpenMode::kSecondary, t->scratch_));
  return t;
}

ToolLog::~ToolLog() {
  log_.reset();
  std::error_code ec;
  if (!scratch_.empty()) std::filesystem::remove_all(scratch_, ec);
}

Progress::Progress(std::uint64_t first_seq, std::uint64_t last_seq)
    : enabled_(::isatty(STDERR_FILENO) == 1), first_(first_seq), last_(last_seq),
      started_ms_(NowMs()), next_ms_(started_ms_ + 1000) {}

Progress::~Progress() {
  if (enabled_ && count_ > 0 && NowMs() > started_ms_ + 1000) std::fprintf(stderr, "\n");
}

void Progress::Update(std::uint64_t seq) {
  ++count_;
  if (!enabled_ || (count_ & 0xFFF) != 0) return;
  const std::int64_t now = NowMs();
  if (now < next_ms_) return;
  next_ms_ = now + 1000;
  const double done = last_ > first_ ? 100.0 * (seq - first_) / (last_ - first_) : 100.0;
  const double rate = count_ * 1000.0 / std::max<std::int64_t>(1, now - started_ms_);
  std::fprintf(stderr, "\r%llu events, %.0f events/s, %.1f%% of seq %llu..%llu   ",
               static_cast<unsigned long long>(count_), rate, done,
               static_cast<unsigned long long>(first_), static_cast<unsigned long long>(last_));
}

}  // namespace jobstore::tools
