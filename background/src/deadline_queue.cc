#include "jobstore/background/deadline_queue.h"

#include "jobstore/core/decide.h"

namespace jobstore {

void DeadlineQueue::SetLocked(const std::string& job_id, DeadlineKind kind,
                              std::optional<TimeMs> due) {
  const int k = static_cast<int>(kind);
  auto it = by_job_.find(job_id);
  if (it != by_job_.end() && it->second[k]) {
    if (it->second[k] == due) return;
    by_due_[k].erase({*it->second[k], job_id});
  }
  if (!due) {
    if (it != by_job_.end()) {
      it->second[k].reset();
      bool any = false;
      for (const auto& d : it->second) any = any || d.has_value();
      if (!any) by_job_.erase(it);
    }
    return;
  }
  by_due_[k].insert({*due, job_id});
  by_job_[job_id][k] = due;
}

void DeadlineQueue::Track(const Job& job) {
  // Worked out before the lock, and the job looked up once: this runs on the writer's thread
  // for every job of every group commit.
  const std::array<std::optional<TimeMs>, kDeadlineKinds> want = {
      LeaseDeadline(job), HitlDeadline(job), ExpiryDeadline(job), RunAtDeadline(job)};
  bool any = false;
  for (const auto& d : want) any = any || d.has_value();
  MutexLock lock(&mu_);
  auto it = by_job_.find(job.job_id);
  if (it == by_job_.end()) {
    if (!any) return;
    it = by_job_.try_emplace(job.job_id).first;
  }
  auto& have = it->second;
  for (int k = 0; k < kDeadlineKinds; ++k) {
    if (have[k] == want[k]) continue;
    if (have[k]) by_due_[k].erase({*have[k], job.job_id});
    if (want[k]) by_due_[k].insert({*want[k], job.job_id});
    have[k] = want[k];
  }
  if (!any) by_job_.erase(it);
}

void DeadlineQueue::Forget(const std::string& job_id) {
  MutexLock lock(&mu_);
  for (int k = 0; k < kDeadlineKinds; ++k) SetLocked(job_id, static_cast<DeadlineKind>(k), std::nullopt);
}

void DeadlineQueue::Retry(const DueDeadline& d) {
  MutexLock lock(&mu_);
  SetLocked(d.job_id, d.kind, d.due);
}

std::vector<DueDeadline> DeadlineQueue::PopDue(DeadlineKind kind, TimeMs now, std::size_t max) {
  MutexLock lock(&mu_);
  std::vector<DueDeadline> out;
  auto& set = by_due_[static_cast<int>(kind)];
  while (!set.empty() && out.size() < max && set.begin()->first <= now) {
    Entry e = *set.begin();
    out.push_back({e.first, kind, e.second});
    SetLocked(e.second, kind, std::nullopt);
  }
  return out;
}

std::optional<TimeMs> DeadlineQueue::NextDue(DeadlineKind kind) const {
  MutexLock lock(&mu_);
  const auto& set = by_due_[static_cast<int>(kind)];
  if (set.empty()) return std::nullopt;
  return set.begin()->first;
}

std::size_t DeadlineQueue::Size() const {
  MutexLock lock(&mu_);
  std::size_t n = 0;
  for (const auto& s : by_due_) n += s.size();
  return n;
}

}  // namespace jobstore
