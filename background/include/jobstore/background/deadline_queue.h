// Every pending deadline of every live job, in due order: lease expiries, HITL timeouts and TTL
// expiries. The timers pop what is due instead of scanning all jobs on each tick.
//
// Thread-safe. Track() is called from the store's writer thread after each group commit, the
// Pop/Next calls from the background thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "jobstore/core/job.h"
#include "jobstore/core/mutex.h"

namespace jobstore {

// kDue: a scheduled job's run_at (it becomes pending).
enum class DeadlineKind : std::uint8_t { kLease = 0, kHitl = 1, kExpiry = 2, kDue = 3 };
inline constexpr int kDeadlineKinds = 4;

struct DueDeadline {
  TimeMs due = 0;
  DeadlineKind kind = DeadlineKind::kLease;
  std::string job_id;
};

class DeadlineQueue {
 public:
  // Replaces the job's deadlines with those its current state implies (none when it has none).
  void Track(const Job& job);
  // Forgets every deadline of the job (it left the projection).
  void Forget(const std::string& job_id);
  // Schedules one deadline again (a retry after a failed write).
  void Retry(const DueDeadline& d);

  // Removes and returns up to `max` deadlines of `kind` due at or before `now`, earliest first.
  std::vector<DueDeadline> PopDue(DeadlineKind kind, TimeMs now, std::size_t max);
  // The earliest deadline of `kind`, if any.
  std::optional<TimeMs> NextDue(DeadlineKind kind) const;
  std::size_t Size() const;

 private:
  using Entry = std::pair<TimeMs, std::string>;  // (due, job_id)
  void SetLocked(const std::string& job_id, DeadlineKind kind, std::optional<TimeMs> due)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  // One ordered set per kind, and each job's current deadline per kind.
  std::array<std::set<Entry>, kDeadlineKinds> by_due_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string, std::array<std::optional<TimeMs>, kDeadlineKinds>> by_job_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace jobstore
