// Events: the facts in the log. Every change to a job is one event (http/openapi.json, "Event").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "jobstore/core/clock.h"
#include "jobstore/core/job.h"

namespace jobstore {

// Stored as one byte in the log: never renumber, only append.
enum class EventType : std::uint8_t {
  kCreated = 1,
  kStarted = 2,
  kUpdated = 3,
  kHeartbeat = 4,
  kHitlRequested = 5,
  kHitlAnswered = 6,
  kCompleted = 7,
  kFailed = 8,
  kCancelled = 9,
  kLeaseExpired = 10,
  kHitlTimedOut = 11,
  kExpired = 12,
  kRetryScheduled = 13,  // a failure with attempts left: scheduled again after the backoff
  kDue = 14,             // a scheduled job's run_at came: pending
  kRetried = 15,         // a failed or cancelled job sent back to pending by hand
  kScheduleSet = 16,     // the schedule events (core/schedule.h): under "schedule/<id>"
  kScheduleFired = 17,
  kScheduleDeleted = 18,
};
inline constexpr std::uint8_t kMaxEventType = 18;

std::string_view EventTypeName(EventType t);  // "job.created", ...
std::optional<EventType> ParseEventType(std::string_view name);

struct Event {
  std::uint64_t seq = 0;      // global, strictly increasing, gapless; assigned by the writer
  std::string job_id;
  std::uint64_t version = 0;  // 1..n within the job, gapless
  EventType type = EventType::kCreated;
  TimeMs at = 0;
  Json data = Json::object();  // what the mutation changed; enough to rebuild the job

  bool operator==(const Event&) const = default;
};

}  // namespace jobstore
