// The live schedules (core/schedule.h), as the log's schedule events leave them. Written by the
// store's writer (and loaded at startup); read from any thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "jobstore/core/mutex.h"
#include "jobstore/core/schedule.h"

namespace jobstore {

using SchedulePtr = std::shared_ptr<const Schedule>;

class ScheduleBook {
 public:
  SchedulePtr Get(std::string_view schedule_id) const;  // nullptr when there is none
  std::vector<SchedulePtr> List() const;                 // by schedule id
  std::size_t Size() const;

  // --- writer only ---
  void Load(std::vector<SchedulePtr> schedules);
  // Sets each schedule (nullptr: deleted).
  void Replace(const std::vector<std::pair<std::string, SchedulePtr>>& changes);

 private:
  mutable SharedMutex mu_;
  std::map<std::string, SchedulePtr, std::less<>> by_id_ ABSL_GUARDED_BY(mu_);
};

}  // namespace jobstore
