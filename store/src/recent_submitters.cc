#include "jobstore/store/internal/recent_submitters.h"

#include <atomic>

namespace jobstore::internal {

std::uint64_t SubmitterId() {
  static std::atomic<std::uint64_t> next{1};
  thread_local const std::uint64_t id = next.fetch_add(1, std::memory_order_relaxed);
  return id;
}

void RecentSubmitters::Saw(std::uint64_t submitter, TimePoint now) {
  last_seen_[submitter] = now;
  if (last_seen_.size() < forget_at_) return;
  forget_at_ = 2 * Count(now) + 64;
}

std::size_t RecentSubmitters::Count(TimePoint now) {
  absl::erase_if(last_seen_, [&](const auto& entry) { return now - entry.second > window_; });
  return last_seen_.size();
}

}  // namespace jobstore::internal
