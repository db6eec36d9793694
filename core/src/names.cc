// Names of statuses, event types and commands, as the API spells them.
#include <array>

#include "jobstore/core/command.h"
#include "jobstore/core/event.h"
#include "jobstore/core/job.h"

namespace jobstore {
namespace {

constexpr std::array<std::string_view, kJobStatusCount> kStatusNames = {
    "pending", "running", "pending_hitl", "completed", "failed", "cancelled", "scheduled"};

constexpr std::array<std::string_view, kMaxEventType + 1> kEventNames = {
    "",
    "job.created",
    "job.started",
    "job.updated",
    "job.heartbeat",
    "job.hitl_requested",
    "job.hitl_answered",
    "job.completed",
    "job.failed",
    "job.cancelled",
    "job.lease_expired",
    "job.hitl_timed_out",
    "job.expired",
    "job.retry_scheduled",
    "job.due",
    "job.retried",
    "schedule.set",
    "schedule.fired",
    "schedule.deleted"};

}  // namespace

std::string_view JobStatusName(JobStatus s) { return kStatusNames[static_cast<int>(s)]; }

std::optional<JobStatus> ParseJobStatus(std::string_view name) {
  for (int i = 0; i < kJobStatusCount; ++i) {
    if (kStatusNames[i] == name) return static_cast<JobStatus>(i);
  }
  return std::nullopt;
}

std::string_view EventTypeName(EventType t) {
  auto i = static_cast<std::uint8_t>(t);
  return i >= 1 && i <= kMaxEventType ? kEventNames[i] : std::string_view("job.unknown");
}

std::optional<EventType> ParseEventType(std::string_view name) {
  for (std::uint8_t i = 1; i <= kMaxEventType; ++i) {
    if (kEventNames[i] == name) return static_cast<EventType>(i);
  }
  return std::nullopt;
}

std::string_view CommandName(const CommandBody& body) {
  static constexpr std::array<std::string_view, std::variant_size_v<CommandBody>> kNames = {
      "create",   "update", "start",  "heartbeat",    "hitl",         "hitl_response",
      "complete", "fail",   "cancel", "expire_lease", "timeout_hitl", "expire",
      "retry",    "make_due", "set_schedule", "delete_schedule", "fire_schedule"};
  return kNames[body.index()];
}

}  // namespace jobstore
