#include "jobstore/store/internal/recent_submitters.h"

#include <atomic>

namespace jobstore::internal {

std::uint64_t SubmitterId() {
  static std::atomic<std::uint64_t> next{1};
  thread_local const std::uint64_t id = next.fetch_add(1, std::memory_order_relaxed);
  return id;
}

std::size_t RecentSubmitters::Count(TimePoint now) {
  absl::erase_if(last_seen_, [&](const auto& entry) { return now - entry.second > window_; });
  return last_seen_.size();
}

}  // namespace jobstore::internal
