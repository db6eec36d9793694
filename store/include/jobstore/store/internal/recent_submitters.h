// Internal (not the library's API): for its own sources, tests, benchmarks and fuzz targets.
// The threads that submitted writes lately, for the delayed group commit (StoreOptions::
// commit_delay): how many writers are likely to come back soon.
//
// A busy server's writers come back as soon as they are answered (a connection's next request
// runs on the thread that served the last), so when writes queue up, the writer waits for as
// many as lately wrote, within the delay: the group is as large as the traffic allows, not as
// large as the last one happened to be. A thread that wrote nothing for a window is forgotten.
// Time is real (steady) time, as the delay's: it decides when a group is written, never what
// it holds. Writer thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include <absl/container/flat_hash_map.h>

namespace jobstore::internal {

// The calling thread's id for RecentSubmitters: small, unique in the process, never reused.
std::uint64_t SubmitterId();

class RecentSubmitters {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // Threads that submitted within `window` of now count.
  explicit RecentSubmitters(std::chrono::microseconds window) : window_(window) {}

  // `submitter` submitted a write that was taken into a group at `now`. Threads come and go
  // (the server's pool grows and shrinks): what is remembered stays within twice the threads
  // of the window, plus 64, even when Count() is never called.
  void Saw(std::uint64_t submitter, TimePoint now);

  // How many threads submitted within the window before `now` (forgetting the others).
  std::size_t Count(TimePoint now);

  std::size_t remembered() const { return last_seen_.size(); }  // tests

 private:
  const std::chrono::microseconds window_;
  absl::flat_hash_map<std::uint64_t, TimePoint> last_seen_;
  std::size_t forget_at_ = 64;  // Saw() forgets the old ones when this many are remembered
};

}  // namespace jobstore::internal
