// The live projection: job_id -> job, with the indexes that list and claim use, and the waiters
// that long-polls and SSE block on.
//
// Jobs are immutable values shared by pointer (JobPtr): a reader copies a pointer under a short
// shared lock and never blocks the writer for longer than that. Only the store's writer thread
// calls the mutating methods (Load, Replace); everything else is safe from any thread.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <absl/container/btree_map.h>
#include <absl/container/btree_set.h>
#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <absl/hash/hash.h>

#include "jobstore/core/job.h"
#include "jobstore/core/mutex.h"

namespace jobstore {

using JobPtr = std::shared_ptr<const Job>;

// How long an Idempotency-Key deduplicates creates: 24 hours. Keys live no longer than their job,
// so the index is bounded by live jobs.
inline constexpr TimeMs kIdempotencyWindowMs = 24LL * 3600 * 1000;
using Deadline = std::chrono::steady_clock::time_point;

struct ListQuery {
  std::vector<JobStatus> statuses;  // any of these; empty: all
  std::optional<std::string> type;
  std::optional<std::string> user_id;
  std::vector<std::pair<std::string, std::string>> labels;  // all of these
  std::size_t limit = kDefaultListLimit;
  std::optional<std::uint64_t> before;  // the cursor: only jobs created before this seq
};

struct ListPage {
  std::vector<JobPtr> jobs;                 // newest first
  std::optional<std::uint64_t> next_cursor;  // set when more jobs may follow
};

class JobProjection {
 public:
  JobProjection() = default;
  JobProjection(const JobProjection&) = delete;
  JobProjection& operator=(const JobProjection&) = delete;

  // --- reads (any thread) ---
  JobPtr Get(std::string_view job_id) const;  // nullptr when absent or expired
  ListPage List(const ListQuery& query) const;
  std::size_t Size() const;
  std::array<std::size_t, kJobStatusCount> CountsByStatus() const;
  // The job created with this Idempotency-Key, if it is still live and was created less than
  // kIdempotencyWindowMs before `now` (an older key no longer deduplicates).
  JobPtr FindByIdempotencyKey(const std::string& key, TimeMs now) const;
  // The live job whose current version a forwarded request with this id made (Job::forward_id).
  JobPtr FindByForwardId(const std::string& forward_id) const;
  // The pending job a claim takes next: of a type in `types` (any type when empty), `skip`
  // false, first in claim order: highest priority, then earliest due time (run_at, or the
  // creation time), then creation order. `skip` runs under the projection's shared lock: it
  // must not call back into the projection.
  JobPtr NextClaimable(const std::vector<std::string>& types,
                       const std::function<bool(const Job&)>& skip) const;
  // Every live job (for snapshots, timers and tools), in creation order.
  void ForEach(const std::function<void(const JobPtr&)>& fn) const;
  // The seq of the newest event folded in.
  std::uint64_t AppliedSeq() const;
  // Every live job and the seq they are consistent with, taken under one lock (for snapshots).
  std::vector<JobPtr> Capture(std::uint64_t* applied_seq) const;

  // --- waiting (any thread) ---
  // Blocks until the job's version exceeds `after_version`, the job disappears, the deadline
  // passes or Shutdown() is called. Returns the job as it then is (nullptr if gone).
  JobPtr WaitForVersion(const std::string& job_id, std::uint64_t after_version,
                        Deadline deadline) const;
  // Blocks until AppliedSeq() > after_seq, the deadline, or Shutdown(). Returns AppliedSeq().
  std::uint64_t WaitForSeq(std::uint64_t after_seq, Deadline deadline) const;
  // Blocks until an event of `job_id` newer than `after_seq` is applied (the job need not
  // exist yet), the deadline, or Shutdown(). Wakes only for that job's events: a feed filtered
  // to one job waits here, not on every event. May return early once when the job is absent
  // (see Slot); callers re-read and wait again.
  void WaitForJobEvent(const std::string& job_id, std::uint64_t after_seq,
                       Deadline deadline) const;
  // Wakes every waiter and makes later waits return at once.
  void Shutdown();
  bool IsShutdown() const;
  std::size_t OpenWaiters() const;

  // --- writer thread only ---
  // Replaces every job with `jobs` (in creation order, as the store rebuilt them at startup)
  // and sets AppliedSeq; no waiter is woken.
  void Load(std::vector<JobPtr> jobs, std::uint64_t applied_seq);
  // Sets each job (nullptr: removes it), moves AppliedSeq to `applied_seq`, then wakes the
  // waiters of those jobs and of the feed.
  void Replace(const std::vector<std::pair<std::string, JobPtr>>& changes,
               std::uint64_t applied_seq);

 private:
  // The live jobs, looked up by job_id without a key of their own (the job holds its id).
  struct JobIdHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view id) const { return absl::Hash<std::string_view>{}(id); }
    std::size_t operator()(const JobPtr& job) const { return (*this)(std::string_view(job->job_id)); }
  };
  struct JobIdEq {
    using is_transparent = void;
    static std::string_view Id(std::string_view id) { return id; }
    static std::string_view Id(const JobPtr& job) { return job->job_id; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const { return Id(a) == Id(b); }
  };
  // Ordered sets of created_seq. B-trees: ~10 bytes per entry where a std::set node takes 48,
  // and ascending inserts (every new job, a whole snapshot) stay in cache.
  using SeqSet = absl::btree_set<std::uint64_t>;
  using SeqIndex = absl::flat_hash_map<std::string, SeqSet>;
  // Pending jobs in claim order: (-priority, due time, created_seq).
  using ClaimKey = std::tuple<std::int32_t, TimeMs, std::uint64_t>;
  using ClaimSet = absl::btree_set<ClaimKey>;
  static ClaimKey ClaimKeyOf(const Job& job) {
    return {-job.priority, job.run_at.value_or(job.created_at), job.created_seq};
  }

  // Adds a job the projection does not hold: the set, the indexes, by_created_.
  void AddLocked(const JobPtr& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void IndexLocked(const Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);  // both of:
  // status, type, user, labels
  void IndexFieldsLocked(const Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // needs jobs_ to hold the job's rivals
  void IndexIdempotencyKeyLocked(const Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void IndexForwardIdLocked(const Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnindexLocked(const Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The idempotency key and forward id entries of UnindexLocked.
  void UnindexIdsLocked(const Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // UnindexLocked(old) then IndexLocked(job) for the next version of the same job, touching
  // only the indexes whose key changed (a status change moves two entries, not a dozen).
  void ReindexLocked(const Job& old, const Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static const SeqSet& FindSet(const SeqIndex& index, const std::string& key);
  static void EraseFrom(SeqIndex& index, const std::string& key, std::uint64_t seq);
  static std::string LabelKey(const std::string& k, const std::string& v) { return k + ":" + v; }

  mutable SharedMutex mu_;
  absl::flat_hash_set<JobPtr, JobIdHash, JobIdEq> jobs_ ABSL_GUARDED_BY(mu_);
  absl::btree_map<std::uint64_t, JobPtr> by_created_ ABSL_GUARDED_BY(mu_);  // created_seq -> job
  std::array<SeqSet, kJobStatusCount> by_status_ ABSL_GUARDED_BY(mu_);
  SeqIndex by_type_ ABSL_GUARDED_BY(mu_);
  SeqIndex by_user_ ABSL_GUARDED_BY(mu_);
  SeqIndex by_label_ ABSL_GUARDED_BY(mu_);  // "key:value"
  ClaimSet claimable_ ABSL_GUARDED_BY(mu_);  // every pending job
  absl::flat_hash_map<std::string, ClaimSet> claimable_by_type_ ABSL_GUARDED_BY(mu_);
  // key -> job_id
  absl::flat_hash_map<std::string, std::string> by_idempotency_key_ ABSL_GUARDED_BY(mu_);
  // forward_id -> job_id, for the jobs whose current version carries one
  absl::flat_hash_map<std::string, std::string> by_forward_id_ ABSL_GUARDED_BY(mu_);
  std::uint64_t applied_seq_ ABSL_GUARDED_BY(mu_) = 0;

  // Waiters (bench/RESULTS.md, "herd", has the measurements behind each choice).
  // Lock order: wait_mu_, then slots_mu_, then mu_ (shared); never the reverse.
  // - One mutex, wait_mu_, for every waiter: per-slot mutexes were measured worse (a 2000-waiter
  //   wake took twice as long and doubled the creates' p99 beside it).
  // - The writer takes wait_mu_ only for a batch that someone waits on: it first looks, under
  //   slots_mu_ shared, for a slot of one of its jobs or a feed waiter, so a batch of creates
  //   beside a woken herd never queues behind the herd for wait_mu_. A waiter registers (slot
  //   or feed count) under slots_mu_ before it reads the projection: either the writer sees it
  //   registered or it reads the writer's change, and no wake-up is lost.
  // - A job's waiters are woken in turn, not all at once: the writer wakes the oldest one parked
  //   before its change, and each woken waiter wakes the next as it leaves. Woken all at once,
  //   thousands of threads were runnable together and the writer waited ~45 ms for a core.
  struct Parked {  // one parked thread; lives on its stack
    CondVar cv;
    std::uint64_t ticket = 0;  // the order it parked in, within its slot
    bool woken = false;        // its turn came (or shutdown)
  };
  struct Slot {
    // All guarded by the projection's wait_mu_ (the analysis cannot name it from here).
    int waiters = 0;
    // The newest seq applied to this job since the slot was made; it starts at the job's
    // last_seq, or at AppliedSeq() when the job is absent (which can wake a waiter once for
    // nothing, never miss an event).
    std::uint64_t last_event_seq = 0;
    std::list<Parked*> parked;      // oldest first
    std::uint64_t next_ticket = 0;  // the next parked thread's ticket
    std::uint64_t wake_below = 0;   // every parked thread with a lower ticket is owed its turn
  };
  // Parks the calling thread in `slot` until its turn comes, the deadline passes or Shutdown().
  // Returns false when the deadline passed first.
  bool ParkLocked(Slot& slot, Deadline deadline) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(wait_mu_);
  // Wakes the oldest parked thread of `slot` if it is owed its turn and not woken yet.
  static void WakeNextLocked(Slot& slot);
  // The job's slot, made if needed, with its waiter counted.
  std::shared_ptr<Slot> AcquireSlotLocked(const std::string& job_id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(wait_mu_);
  void ReleaseSlotLocked(const std::string& job_id, Slot& slot) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(wait_mu_);
  // Whether a feed waiter or a waiter on one of `changes`' jobs is registered.
  bool AnyWaiterFor(const std::vector<std::pair<std::string, JobPtr>>& changes) const;
  mutable Mutex wait_mu_ ABSL_ACQUIRED_BEFORE(slots_mu_);
  mutable SharedMutex slots_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable std::unordered_map<std::string, std::shared_ptr<Slot>> job_slots_
      ABSL_GUARDED_BY(slots_mu_);
  mutable std::size_t feed_waiters_ ABSL_GUARDED_BY(slots_mu_) = 0;
  mutable CondVar feed_cv_;
  mutable std::size_t open_waiters_ ABSL_GUARDED_BY(wait_mu_) = 0;
  bool shutdown_ ABSL_GUARDED_BY(wait_mu_) = false;
};

}  // namespace jobstore
