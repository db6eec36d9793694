#include "jobstore/projections/job_projection.h"

#include <algorithm>
#include <thread>

namespace jobstore {
namespace {

using SeqSet = absl::btree_set<std::uint64_t>;

bool Matches(const Job& job, const ListQuery& q) {
  if (!q.statuses.empty() &&
      std::find(q.statuses.begin(), q.statuses.end(), job.status) == q.statuses.end()) {
    return false;
  }
  if (q.type && job.type != *q.type) return false;
  if (q.user_id && job.user_id != *q.user_id) return false;
  for (const auto& [k, v] : q.labels) {
    auto it = job.labels.find(k);
    if (it == job.labels.end() || !it->is_string() || it->get_ref<const std::string&>() != v) {
      return false;
    }
  }
  return true;
}

// Walks several sorted sets as one, newest (largest seq) first, starting below `before`.
class DescendingMerge {
 public:
  DescendingMerge(const std::vector<const SeqSet*>& sets, std::uint64_t before) {
    for (const SeqSet* s : sets) {
      auto it = s->lower_bound(before);
      if (it != s->begin()) cursors_.push_back({s, std::prev(it)});
    }
  }
  std::optional<std::uint64_t> Next() {
    if (cursors_.empty()) return std::nullopt;
    auto best = std::max_element(cursors_.begin(), cursors_.end(),
                                 [](const Cursor& a, const Cursor& b) { return *a.it < *b.it; });
    std::uint64_t seq = *best->it;
    if (best->it == best->set->begin()) {
      cursors_.erase(best);
    } else {
      --best->it;
    }
    return seq;
  }

 private:
  struct Cursor {
    const SeqSet* set;
    SeqSet::const_iterator it;
  };
  std::vector<Cursor> cursors_;
};

}  // namespace

const JobProjection::SeqSet& JobProjection::FindSet(const SeqIndex& index, const std::string& key) {
  static const SeqSet kEmptySet;
  auto it = index.find(key);
  return it == index.end() ? kEmptySet : it->second;
}

void JobProjection::EraseFrom(SeqIndex& index, const std::string& key, std::uint64_t seq) {
  auto it = index.find(key);
  if (it == index.end()) return;
  it->second.erase(seq);
  if (it->second.empty()) index.erase(it);
}

JobPtr JobProjection::Get(std::string_view job_id) const {
  ReaderLock lock(&mu_);
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? nullptr : *it;
}

ListPage JobProjection::List(const ListQuery& q) const {
  ReaderLock lock(&mu_);
  // Pick the smallest index that every match must be in; the rest is checked per job.
  std::vector<const SeqSet*> sources;
  std::size_t best = SIZE_MAX;
  auto consider = [&](std::vector<const SeqSet*> candidate) {
    std::size_t n = 0;
    for (const SeqSet* s : candidate) n += s->size();
    if (n < best) {
      best = n;
      sources = std::move(candidate);
    }
  };
  if (!q.statuses.empty()) {
    std::vector<const SeqSet*> sets;
    for (JobStatus s : q.statuses) sets.push_back(&by_status_[static_cast<int>(s)]);
    consider(std::move(sets));
  }
  if (q.type) consider({&FindSet(by_type_, *q.type)});
  if (q.user_id) consider({&FindSet(by_user_, *q.user_id)});
  for (const auto& [k, v] : q.labels) consider({&FindSet(by_label_, LabelKey(k, v))});

  ListPage page;
  const std::uint64_t before = q.before.value_or(UINT64_MAX);
  auto take = [&](const JobPtr& job) {
    if (!Matches(*job, q)) return true;
    if (page.jobs.size() == q.limit) {
      page.next_cursor = page.jobs.back()->created_seq;
      return false;
    }
    page.jobs.push_back(job);
    return true;
  };
  if (best == SIZE_MAX) {  // no filter: walk every job
    for (auto it = std::make_reverse_iterator(by_created_.lower_bound(before));
         it != by_created_.rend() && take(it->second); ++it) {
    }
    return page;
  }
  DescendingMerge merge(sources, before);
  while (auto seq = merge.Next()) {
    if (!take(by_created_.at(*seq))) break;
  }
  return page;
}

std::size_t JobProjection::Size() const {
  ReaderLock lock(&mu_);
  return jobs_.size();
}

std::array<std::size_t, kJobStatusCount> JobProjection::CountsByStatus() const {
  ReaderLock lock(&mu_);
  std::array<std::size_t, kJobStatusCount> counts{};
  for (int i = 0; i < kJobStatusCount; ++i) counts[i] = by_status_[i].size();
  return counts;
}

JobPtr JobProjection::FindByIdempotencyKey(const std::string& key, TimeMs now) const {
  ReaderLock lock(&mu_);
  auto it = by_idempotency_key_.find(key);
  if (it == by_idempotency_key_.end()) return nullptr;
  auto job = jobs_.find(std::string_view(it->second));
  if (job == jobs_.end() || (*job)->created_at + kIdempotencyWindowMs <= now) return nullptr;
  return *job;
}

JobPtr JobProjection::NextClaimable(const std::vector<std::string>& types,
                                    const std::function<bool(const Job&)>& skip) const {
  ReaderLock lock(&mu_);
  // The first job of `set` in claim order that is not skipped, with its key.
  auto first = [&](const ClaimSet& set) ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    for (const ClaimKey& key : set) {
      const JobPtr& job = by_created_.at(std::get<2>(key));
      if (!skip(*job)) return std::make_pair(key, job);
    }
    return std::make_pair(ClaimKey{}, JobPtr());
  };
  if (types.empty()) return first(claimable_).second;
  JobPtr best;
  ClaimKey best_key{};
  for (const auto& type : types) {
    auto it = claimable_by_type_.find(type);
    if (it == claimable_by_type_.end()) continue;
    auto [key, job] = first(it->second);
    if (job && (!best || key < best_key)) {
      best = job;
      best_key = key;
    }
  }
  return best;
}

void JobProjection::ForEach(const std::function<void(const JobPtr&)>& fn) const {
  ReaderLock lock(&mu_);
  for (const auto& [seq, job] : by_created_) fn(job);
}

std::uint64_t JobProjection::AppliedSeq() const {
  ReaderLock lock(&mu_);
  return applied_seq_;
}

std::vector<JobPtr> JobProjection::Capture(std::uint64_t* applied_seq) const {
  ReaderLock lock(&mu_);
  std::vector<JobPtr> jobs;
  jobs.reserve(by_created_.size());
  for (const auto& [seq, job] : by_created_) jobs.push_back(job);
  *applied_seq = applied_seq_;
  return jobs;
}

void JobProjection::IndexLocked(const Job& job) {
  IndexFieldsLocked(job);
  IndexIdempotencyKeyLocked(job);
  IndexForwardIdLocked(job);
}

void JobProjection::IndexForwardIdLocked(const Job& job) {
  if (job.forward_id) by_forward_id_[*job.forward_id] = job.job_id;
}

JobPtr JobProjection::FindByForwardId(const std::string& forward_id) const {
  ReaderLock lock(&mu_);
  auto it = by_forward_id_.find(forward_id);
  if (it == by_forward_id_.end()) return nullptr;
  auto job = jobs_.find(std::string_view(it->second));
  return job == jobs_.end() ? nullptr : *job;
}

void JobProjection::IndexFieldsLocked(const Job& job) {
  const std::uint64_t seq = job.created_seq;
  by_status_[static_cast<int>(job.status)].insert(seq);
  by_type_[job.type].insert(seq);
  if (job.status == JobStatus::kPending) {
    claimable_.insert(ClaimKeyOf(job));
    claimable_by_type_[job.type].insert(ClaimKeyOf(job));
  }
  by_user_[job.user_id].insert(seq);
  for (const auto& [k, v] : job.labels.items()) {
    if (v.is_string()) by_label_[LabelKey(k, v.get<std::string>())].insert(seq);
  }
}

void JobProjection::IndexIdempotencyKeyLocked(const Job& job) {
  if (!job.idempotency_key) return;
  // The newest job created with a key holds it (an older one may be re-indexed on update).
  auto [it, inserted] = by_idempotency_key_.try_emplace(*job.idempotency_key, job.job_id);
  if (!inserted && it->second != job.job_id) {
    auto holder = jobs_.find(std::string_view(it->second));
    if (holder == jobs_.end() || (*holder)->created_seq < job.created_seq) {
      it->second = job.job_id;
    }
  }
}

void JobProjection::UnindexLocked(const Job& job) {
  const std::uint64_t seq = job.created_seq;
  by_status_[static_cast<int>(job.status)].erase(seq);
  EraseFrom(by_type_, job.type, seq);
  if (job.status == JobStatus::kPending) {
    claimable_.erase(ClaimKeyOf(job));
    if (auto it = claimable_by_type_.find(job.type); it != claimable_by_type_.end()) {
      it->second.erase(ClaimKeyOf(job));
      if (it->second.empty()) claimable_by_type_.erase(it);
    }
  }
  EraseFrom(by_user_, job.user_id, seq);
  for (const auto& [k, v] : job.labels.items()) {
    if (v.is_string()) EraseFrom(by_label_, LabelKey(k, v.get<std::string>()), seq);
  }
  UnindexIdsLocked(job);
}

void JobProjection::UnindexIdsLocked(const Job& job) {
  // Only the job that holds a key removes it: a later job may have taken it over.
  if (job.idempotency_key) {
    auto it = by_idempotency_key_.find(*job.idempotency_key);
    if (it != by_idempotency_key_.end() && it->second == job.job_id) by_idempotency_key_.erase(it);
  }
  if (job.forward_id) {
    auto it = by_forward_id_.find(*job.forward_id);
    if (it != by_forward_id_.end() && it->second == job.job_id) by_forward_id_.erase(it);
  }
}

void JobProjection::ReindexLocked(const Job& old, const Job& job) {
  const std::uint64_t seq = job.created_seq;
  if (old.created_seq != seq) {
    UnindexLocked(old);
    IndexLocked(job);
    return;
  }
  if (old.status != job.status) {
    by_status_[static_cast<int>(old.status)].erase(seq);
    by_status_[static_cast<int>(job.status)].insert(seq);
  }
  const bool was_claimable = old.status == JobStatus::kPending;
  const bool is_claimable = job.status == JobStatus::kPending;
  if (was_claimable != is_claimable || old.type != job.type ||
      (is_claimable && ClaimKeyOf(old) != ClaimKeyOf(job))) {
    if (was_claimable) {
      claimable_.erase(ClaimKeyOf(old));
      if (auto it = claimable_by_type_.find(old.type); it != claimable_by_type_.end()) {
        it->second.erase(ClaimKeyOf(old));
        if (it->second.empty()) claimable_by_type_.erase(it);
      }
    }
    if (is_claimable) {
      claimable_.insert(ClaimKeyOf(job));
      claimable_by_type_[job.type].insert(ClaimKeyOf(job));
    }
  }
  if (old.type != job.type) {
    EraseFrom(by_type_, old.type, seq);
    by_type_[job.type].insert(seq);
  }
  if (old.user_id != job.user_id) {
    EraseFrom(by_user_, old.user_id, seq);
    by_user_[job.user_id].insert(seq);
  }
  if (old.labels != job.labels) {
    for (const auto& [k, v] : old.labels.items()) {
      if (v.is_string()) EraseFrom(by_label_, LabelKey(k, v.get<std::string>()), seq);
    }
    for (const auto& [k, v] : job.labels.items()) {
      if (v.is_string()) by_label_[LabelKey(k, v.get<std::string>())].insert(seq);
    }
  }
  if (old.idempotency_key != job.idempotency_key || old.forward_id != job.forward_id) {
    UnindexIdsLocked(old);
  }
  IndexIdempotencyKeyLocked(job);
  IndexForwardIdLocked(job);
}

void JobProjection::Load(std::vector<JobPtr> jobs, std::uint64_t applied_seq) {
  WriterLock lock(&mu_);
  jobs_.clear();
  by_created_.clear();
  for (SeqSet& set : by_status_) set.clear();
  by_type_.clear();
  by_user_.clear();
  by_label_.clear();
  claimable_.clear();
  claimable_by_type_.clear();
  by_idempotency_key_.clear();
  by_forward_id_.clear();
  jobs_.reserve(jobs.size());
  // The field indexes and the id indexes share nothing: for a large store (startup with a
  // million jobs) they are built on two cores. The second thread works under this thread's
  // exclusive lock, which the analysis cannot follow across threads.
  auto index_fields = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    for (const JobPtr& job : jobs) IndexFieldsLocked(*job);
  };
  constexpr std::size_t kParallelFrom = 10'000;
  std::thread fields;
  if (jobs.size() >= kParallelFrom) fields = std::thread(index_fields);
  for (const JobPtr& job : jobs) {
    jobs_.insert(job);
    by_created_.insert(by_created_.end(), {job->created_seq, job});  // ascending: appends
    IndexIdempotencyKeyLocked(*job);
    IndexForwardIdLocked(*job);
  }
  if (fields.joinable()) {
    fields.join();
  } else {
    index_fields();
  }
  applied_seq_ = applied_seq;
}

void JobProjection::AddLocked(const JobPtr& job) {
  jobs_.insert(job);
  IndexLocked(*job);
  by_created_.insert_or_assign(job->created_seq, job);
}

void JobProjection::Replace(const std::vector<std::pair<std::string, JobPtr>>& changes,
                            std::uint64_t applied_seq) {
  {
    WriterLock lock(&mu_);
    for (const auto& [job_id, job] : changes) {
      auto it = jobs_.find(std::string_view(job_id));
      if (it == jobs_.end()) {
        if (job) AddLocked(job);
        continue;
      }
      const JobPtr old = *it;  // alive until the indexes have moved off it
      if (job && job->job_id == old->job_id) {
        // The next version of a job, in place: the set's hash and equality (the id) stay the
        // same, so its entry takes the new pointer, and only the indexes whose key moved change.
        const_cast<JobPtr&>(*it) = job;
        ReindexLocked(*old, *job);
        if (old->created_seq != job->created_seq) by_created_.erase(old->created_seq);
        by_created_.insert_or_assign(job->created_seq, job);
        continue;
      }
      UnindexLocked(*old);
      by_created_.erase(old->created_seq);
      jobs_.erase(it);
      if (job) AddLocked(job);
    }
    applied_seq_ = std::max(applied_seq_, applied_seq);
  }
  if (!AnyWaiterFor(changes)) return;
  MutexLock wait_lock(&wait_mu_);
  ReaderLock slots(&slots_mu_);
  for (const auto& [job_id, job] : changes) {
    auto it = job_slots_.find(job_id);
    if (it == job_slots_.end()) continue;
    Slot& slot = *it->second;
    slot.last_event_seq = std::max(slot.last_event_seq, applied_seq);
    slot.wake_below = slot.next_ticket;
    WakeNextLocked(slot);
  }
  feed_cv_.SignalAll();
}

void JobProjection::WakeNextLocked(Slot& slot) {
  if (slot.parked.empty()) return;
  Parked& oldest = *slot.parked.front();
  if (oldest.woken || oldest.ticket >= slot.wake_below) return;
  oldest.woken = true;
  oldest.cv.Signal();
}

bool JobProjection::ParkLocked(Slot& slot, Deadline deadline) const {
  Parked self;
  self.ticket = slot.next_ticket++;
  const auto at = slot.parked.insert(slot.parked.end(), &self);
  bool in_time = true;
  while (!self.woken && !shutdown_ && in_time) in_time = self.cv.WaitUntil(&wait_mu_, deadline);
  slot.parked.erase(at);
  if (self.woken) WakeNextLocked(slot);  // pass the turn on
  return self.woken || in_time;
}

bool JobProjection::AnyWaiterFor(
    const std::vector<std::pair<std::string, JobPtr>>& changes) const {
  ReaderLock slots(&slots_mu_);
  if (feed_waiters_ > 0) return true;
  for (const auto& [job_id, job] : changes) {
    if (job_slots_.contains(job_id)) return true;
  }
  return false;
}

std::shared_ptr<JobProjection::Slot> JobProjection::AcquireSlotLocked(
    const std::string& job_id) const {
  WriterLock slots(&slots_mu_);
  auto& slot = job_slots_[job_id];
  if (!slot) {
    slot = std::make_shared<Slot>();
    // Read after the slot is visible to the writer (see the header): a change applied before
    // this read is in it, one applied after finds the slot.
    JobPtr job = Get(job_id);
    slot->last_event_seq = job ? job->last_seq : AppliedSeq();
  }
  ++slot->waiters;
  ++open_waiters_;
  return slot;
}

void JobProjection::ReleaseSlotLocked(const std::string& job_id, Slot& slot) const {
  --open_waiters_;
  if (--slot.waiters == 0) {
    WriterLock slots(&slots_mu_);
    job_slots_.erase(job_id);
  }
}

JobPtr JobProjection::WaitForVersion(const std::string& job_id, std::uint64_t after_version,
                                     Deadline deadline) const {
  MutexLock lock(&wait_mu_);
  JobPtr job = Get(job_id);
  if (!job || job->version > after_version || shutdown_) return job;
  // Registered before the next read, so the change this waits for either is in that read or
  // wakes the slot.
  std::shared_ptr<Slot> slot = AcquireSlotLocked(job_id);
  for (bool woken = true;;) {
    job = Get(job_id);
    if (!job || job->version > after_version || shutdown_ || !woken) break;
    woken = ParkLocked(*slot, deadline);
  }
  ReleaseSlotLocked(job_id, *slot);
  return job;
}

void JobProjection::WaitForJobEvent(const std::string& job_id, std::uint64_t after_seq,
                                    Deadline deadline) const {
  MutexLock lock(&wait_mu_);
  if (shutdown_) return;
  std::shared_ptr<Slot> slot = AcquireSlotLocked(job_id);
  while (slot->last_event_seq <= after_seq && !shutdown_) {
    if (!ParkLocked(*slot, deadline)) break;
  }
  ReleaseSlotLocked(job_id, *slot);
}

std::uint64_t JobProjection::WaitForSeq(std::uint64_t after_seq, Deadline deadline) const {
  MutexLock lock(&wait_mu_);
  ++open_waiters_;
  {
    WriterLock slots(&slots_mu_);  // registered before AppliedSeq() is read (see the header)
    ++feed_waiters_;
  }
  std::uint64_t seq = AppliedSeq();
  while (seq <= after_seq && !shutdown_) {
    const bool woken = feed_cv_.WaitUntil(&wait_mu_, deadline);
    seq = AppliedSeq();
    if (!woken) break;
  }
  {
    WriterLock slots(&slots_mu_);
    --feed_waiters_;
  }
  --open_waiters_;
  return seq;
}

void JobProjection::Shutdown() {
  MutexLock lock(&wait_mu_);
  shutdown_ = true;
  ReaderLock slots(&slots_mu_);
  for (auto& [id, slot] : job_slots_) {
    for (Parked* parked : slot->parked) {
      parked->woken = true;
      parked->cv.Signal();
    }
  }
  feed_cv_.SignalAll();
}

bool JobProjection::IsShutdown() const {
  MutexLock lock(&wait_mu_);
  return shutdown_;
}

std::size_t JobProjection::OpenWaiters() const {
  MutexLock lock(&wait_mu_);
  return open_waiters_;
}

}  // namespace jobstore
