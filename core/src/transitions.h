// Internal: which statuses each event type may be recorded from. One table, used by Decide (to
// reject commands) and Apply (to reject events that break the state machine).
#pragma once

#include "jobstore/core/event.h"
#include "jobstore/core/job.h"

namespace jobstore::internal {

using StatusMask = unsigned;
constexpr StatusMask Bit(JobStatus s) { return 1u << static_cast<unsigned>(s); }
constexpr StatusMask kLive = Bit(JobStatus::kPending) | Bit(JobStatus::kRunning) |
                             Bit(JobStatus::kPendingHitl) | Bit(JobStatus::kScheduled);
constexpr StatusMask kTerminal = Bit(JobStatus::kCompleted) | Bit(JobStatus::kFailed) |
                                 Bit(JobStatus::kCancelled);

// The statuses from which an event of type `t` may be applied (job.created: none; it needs no job).
constexpr StatusMask AllowedFrom(EventType t) {
  switch (t) {
    case EventType::kCreated: return 0;
    case EventType::kStarted: return Bit(JobStatus::kPending);
    case EventType::kUpdated: return kLive;
    case EventType::kHeartbeat: return Bit(JobStatus::kRunning);
    case EventType::kHitlRequested: return Bit(JobStatus::kRunning);
    case EventType::kHitlAnswered: return Bit(JobStatus::kPendingHitl);
    case EventType::kCompleted: return Bit(JobStatus::kRunning);
    case EventType::kFailed: return Bit(JobStatus::kRunning) | Bit(JobStatus::kPendingHitl);
    case EventType::kCancelled: return kLive;
    case EventType::kLeaseExpired: return Bit(JobStatus::kRunning);
    case EventType::kHitlTimedOut: return Bit(JobStatus::kPendingHitl);
    case EventType::kExpired: return kTerminal;
    case EventType::kRetryScheduled: return Bit(JobStatus::kRunning) | Bit(JobStatus::kPendingHitl);
    case EventType::kDue: return Bit(JobStatus::kScheduled);
    case EventType::kRetried: return Bit(JobStatus::kFailed) | Bit(JobStatus::kCancelled);
    case EventType::kScheduleSet:  // a schedule's events never apply to a job
    case EventType::kScheduleFired:
    case EventType::kScheduleDeleted: return 0;
  }
  return 0;
}

// "pending", "running or pending_hitl", ... for messages.
std::string DescribeMask(StatusMask mask);

}  // namespace jobstore::internal
