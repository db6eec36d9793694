#include "jobstore/store/log_replay.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <latch>
#include <optional>
#include <string_view>
#include <thread>

#include <absl/container/flat_hash_map.h>

#include "jobstore/core/decide.h"
#include "jobstore/core/schedule.h"
#include "jobstore/eventlog/record.h"

namespace jobstore {
namespace {

using eventlog::RecordView;

// Checked records on their way to a partition: the views' bytes copied into one buffer.
struct Batch {
  struct Entry {
    RecordView view;  // job_id and data_json are offsets into `bytes` until Resolve()
    std::size_t id_offset, data_offset;
  };
  std::vector<Entry> entries;
  std::string bytes;

  void Add(const RecordView& v) {
    entries.push_back({v, bytes.size(), bytes.size() + v.job_id.size()});
    bytes.append(v.job_id);
    bytes.append(v.data_json);
  }
  RecordView Resolve(const Entry& e) const {
    RecordView v = e.view;
    v.job_id = std::string_view(bytes).substr(e.id_offset, e.view.job_id.size());
    v.data_json = std::string_view(bytes).substr(e.data_offset, e.view.data_json.size());
    return v;
  }
};

// A bounded single-producer, single-consumer queue of batches.
class BatchQueue {
 public:
  // Blocks while full. False when the consumer stopped.
  bool Push(Batch batch) {
    MutexLock lock(&mu_);
    while (queue_.size() >= kCapacity && !stopped_) cv_.Wait(&mu_);
    if (stopped_) return false;
    queue_.push_back(std::move(batch));
    cv_.SignalAll();
    return true;
  }
  // Blocks while empty. Nullopt once closed and drained, or stopped.
  std::optional<Batch> Pop() {
    MutexLock lock(&mu_);
    while (queue_.empty() && !closed_ && !stopped_) cv_.Wait(&mu_);
    if (stopped_ || queue_.empty()) return std::nullopt;
    Batch b = std::move(queue_.front());
    queue_.pop_front();
    cv_.SignalAll();
    return b;
  }
  void Close() {  // producer: no more batches
    MutexLock lock(&mu_);
    closed_ = true;
    cv_.SignalAll();
  }
  void Stop() {  // consumer: takes no more batches
    MutexLock lock(&mu_);
    stopped_ = true;
    queue_.clear();
    cv_.SignalAll();
  }

 private:
  static constexpr std::size_t kCapacity = 32;
  Mutex mu_;
  CondVar cv_;
  std::deque<Batch> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

// One partition's jobs: the snapshot's jobs whose ids route here, and those created since.
class Partition {
 public:
  // Applies every batch until the queue closes; stops at the first failure.
  // `indexed` counts down once this partition has indexed its snapshot jobs: no partition may
  // expire (reset) a snapshot slot while another still reads the slots.
  void Run(std::vector<std::shared_ptr<Job>>& snapshot_jobs, unsigned self,
           const std::function<unsigned(std::string_view)>& route, std::latch& indexed) {
    for (auto& job : snapshot_jobs) {
      if (route(job->job_id) == self) index_.emplace(job->job_id, &job);
    }
    indexed.arrive_and_wait();
    while (auto batch = queue_.Pop()) {
      for (const Batch::Entry& entry : batch->entries) {
        Status st = Apply(batch->Resolve(entry));
        if (!st.ok()) {
          failure_ = std::move(st);
          failed_seq_ = entry.view.seq;
          queue_.Stop();
          return;
        }
      }
    }
  }

  BatchQueue& queue() { return queue_; }
  const Status& failure() const { return failure_; }
  std::uint64_t failed_seq() const { return failed_seq_; }
  std::deque<std::shared_ptr<Job>>& created() { return created_; }
  std::vector<RetainedHistory>& expired() { return expired_; }

 private:
  Status Apply(const RecordView& view) {
    JOBSTORE_ASSIGN_OR_RETURN(auto event, eventlog::EventFromView(view));
    const Event& e = event;
    auto it = index_.find(std::string_view(e.job_id));
    if (it == index_.end()) {
      std::optional<Job> fresh;
      JOBSTORE_RETURN_IF_ERROR(ApplyInPlace(fresh, e));
      std::shared_ptr<Job>& slot = created_.emplace_back(std::make_shared<Job>(std::move(*fresh)));
      index_.emplace(slot->job_id, &slot);  // the key views the job's own id
      return Status::Ok();
    }
    std::shared_ptr<Job>& slot = *it->second;
    JOBSTORE_RETURN_IF_ERROR(ApplyInPlace(*slot, e));
    if (e.type == EventType::kExpired) {
      expired_.push_back({e.job_id, slot->created_seq, e.seq, e.at});
      index_.erase(it);
      slot.reset();
    }
    return Status::Ok();
  }

  BatchQueue queue_;
  absl::flat_hash_map<std::string_view, std::shared_ptr<Job>*> index_;
  std::deque<std::shared_ptr<Job>> created_;  // a deque: slots the index points at never move
  std::vector<RetainedHistory> expired_;
  Status failure_;
  std::uint64_t failed_seq_ = 0;
};

}  // namespace

StatusOr<ReplayedJobs> ReplayLog(const eventlog::EventLog& log, std::uint64_t from_seq,
                                 std::vector<std::shared_ptr<Job>> jobs, unsigned partitions) {
  ReplayedJobs out;
  if (log.LastSeq() < from_seq) {  // nothing after the snapshot
    out.jobs = std::move(jobs);
    return out;
  }
  if (partitions == 0) partitions = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  const auto route = [partitions](std::string_view id) {
    return static_cast<unsigned>(std::hash<std::string_view>{}(id) % partitions);
  };
  std::vector<Partition> parts(partitions);
  std::latch indexed(partitions);
  std::vector<std::thread> threads;
  for (unsigned p = 0; p < partitions; ++p) {
    threads.emplace_back([&, p] { parts[p].Run(jobs, p, route, indexed); });
  }

  constexpr std::size_t kBatchEvents = 512;
  std::vector<Batch> pending(partitions);
  bool stopped = false;
  auto flush = [&](unsigned p) {
    if (!parts[p].queue().Push(std::move(pending[p]))) stopped = true;
    pending[p] = Batch();
  };
  Status scan = log.ScanViews(from_seq, UINT64_MAX, [&](const RecordView& view) {
    if (IsScheduleEvent(view.type)) {  // ReadSchedules' part
      ++out.events;
      return !stopped;
    }
    const unsigned p = route(view.job_id);
    pending[p].Add(view);
    ++out.events;
    if (pending[p].entries.size() >= kBatchEvents) flush(p);
    return !stopped;
  });
  for (unsigned p = 0; p < partitions; ++p) {
    if (!pending[p].entries.empty()) flush(p);
    parts[p].queue().Close();
  }
  for (auto& t : threads) t.join();

  // A partition's failure comes before any scan failure: the scan stopped at its damaged record.
  const Partition* first_failed = nullptr;
  for (const Partition& part : parts) {
    if (!part.failure().ok() && (!first_failed || part.failed_seq() < first_failed->failed_seq())) {
      first_failed = &part;
    }
  }
  if (first_failed) return first_failed->failure();
  JOBSTORE_RETURN_IF_ERROR(scan);

  out.jobs.reserve(jobs.size());
  for (auto& job : jobs) {
    if (job) out.jobs.push_back(std::move(job));
  }
  const std::size_t from_snapshot = out.jobs.size();
  for (Partition& part : parts) {
    for (auto& job : part.created()) {
      if (job) out.jobs.push_back(std::move(job));
    }
    out.expired.insert(out.expired.end(), part.expired().begin(), part.expired().end());
  }
  std::sort(out.jobs.begin() + static_cast<std::ptrdiff_t>(from_snapshot), out.jobs.end(),
            [](const auto& a, const auto& b) { return a->created_seq < b->created_seq; });
  std::sort(out.expired.begin(), out.expired.end(),
            [](const auto& a, const auto& b) { return a.expired_seq < b.expired_seq; });
  return out;
}

StatusOr<std::vector<SchedulePtr>> ReadSchedules(const eventlog::EventLog& log) {
  std::vector<std::string> ids;
  JOBSTORE_RETURN_IF_ERROR(log.ScanJobIndex(
      [&](std::string_view log_id, std::uint64_t, std::uint64_t) {
        if (ids.empty() || ids.back() != log_id) ids.emplace_back(log_id);
        return true;
      },
      kScheduleLogPrefix));
  std::vector<SchedulePtr> out;
  for (const std::string& log_id : ids) {
    JOBSTORE_ASSIGN_OR_RETURN(auto history, log.ReadJob(log_id));
    std::optional<Schedule> schedule;
    for (const Event& e : history) JOBSTORE_RETURN_IF_ERROR(ApplySchedule(schedule, e));
    if (schedule) out.push_back(std::make_shared<const Schedule>(std::move(*schedule)));
  }
  return out;
}

}  // namespace jobstore
