#include "jobstore/projections/schedule_book.h"

namespace jobstore {

SchedulePtr ScheduleBook::Get(std::string_view schedule_id) const {
  ReaderLock lock(&mu_);
  auto it = by_id_.find(schedule_id);
  return it == by_id_.end() ? nullptr : it->second;
}

std::vector<SchedulePtr> ScheduleBook::List() const {
  ReaderLock lock(&mu_);
  std::vector<SchedulePtr> out;
  out.reserve(by_id_.size());
  for (const auto& [id, schedule] : by_id_) out.push_back(schedule);
  return out;
}

std::size_t ScheduleBook::Size() const {
  ReaderLock lock(&mu_);
  return by_id_.size();
}

void ScheduleBook::Load(std::vector<SchedulePtr> schedules) {
  WriterLock lock(&mu_);
  by_id_.clear();
  for (SchedulePtr& s : schedules) {
    const std::string id = s->schedule_id;
    by_id_.emplace(id, std::move(s));
  }
}

void ScheduleBook::Replace(const std::vector<std::pair<std::string, SchedulePtr>>& changes) {
  WriterLock lock(&mu_);
  for (const auto& [id, schedule] : changes) {
    if (schedule) {
      by_id_.insert_or_assign(id, schedule);
    } else {
      by_id_.erase(id);
    }
  }
}

}  // namespace jobstore
