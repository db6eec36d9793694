#include "jobstore/store/job_store.h"

#include <chrono>
#include <future>
#include <unordered_map>

#include "jobstore/core/decide.h"

namespace jobstore {

struct JobStore::Request {
  std::vector<Command> commands;     // empty for a claim
  std::optional<ClaimRequest> claim;
  std::promise<StatusOr<std::vector<Outcome>>> done;
};

// The state of one group commit while the writer decides its requests: what the earlier
// requests of the batch changed (the overlay) on top of the projection, and the events so far.
class JobStore::Batch {
 public:
  Batch(const JobProjection& projection, std::uint64_t next_seq, TimeMs now)
      : projection_(projection), next_seq_(next_seq), now_(now) {}

  // Decides one request. On success its changes and events join the batch; on failure the
  // batch is as it was.
  StatusOr<std::vector<Outcome>> Run(const Request& request) {
    Scope scope(*this);
    std::vector<Outcome> outcomes;
    if (request.claim) {
      auto claimed = scope.Claim(*request.claim);
      if (!claimed.ok()) return claimed.status();
      outcomes.push_back(std::move(claimed).value());
    } else {
      const bool many = request.commands.size() > 1;
      for (std::size_t i = 0; i < request.commands.size(); ++i) {
        auto outcome = scope.Execute(request.commands[i]);
        if (!outcome.ok()) {
          if (!many) return outcome.status();
          return Status(outcome.status().code(),
                        "jobs[" + std::to_string(i) + "]: " + outcome.status().message());
        }
        outcomes.push_back(std::move(outcome).value());
      }
    }
    scope.Commit();
    return outcomes;
  }

  const std::vector<Event>& events() const { return events_; }
  std::vector<std::pair<std::string, JobPtr>> Changes() const {
    return {overlay_.begin(), overlay_.end()};
  }

 private:
  // One request's changes, merged into the batch only when the whole request succeeds.
  class Scope {
   public:
    explicit Scope(Batch& batch) : batch_(batch), next_seq_(batch.next_seq_) {}

    JobPtr Current(const std::string& id) const {
      if (auto it = local_.find(id); it != local_.end()) return it->second;
      if (auto it = batch_.overlay_.find(id); it != batch_.overlay_.end()) return it->second;
      return batch_.projection_.Get(id);
    }

    JobPtr ByIdempotencyKey(const std::string& key) const {
      using Keys = std::unordered_map<std::string, std::string>;
      for (const Keys* keys : {&local_keys_, static_cast<const Keys*>(&batch_.keys_)}) {
        if (auto it = keys->find(key); it != keys->end()) return Current(it->second);
      }
      return batch_.projection_.FindByIdempotencyKey(key);
    }

    StatusOr<Outcome> Execute(const Command& command) {
      const auto* create = std::get_if<CreateJob>(&command.body);
      if (create && create->idempotency_key) {
        if (JobPtr first = ByIdempotencyKey(*create->idempotency_key)) {
          return Outcome{first, /*deduplicated=*/true};
        }
      }
      JobPtr current = Current(command.job_id);
      auto events = Decide(current.get(), command, batch_.now_);
      if (!events.ok()) return events.status();
      if (const auto* hb = std::get_if<Heartbeat>(&command.body); hb && events->empty()) {
        auto extended = std::make_shared<const Job>(ExtendLease(*current, hb->lease_seconds,
                                                                batch_.now_));
        local_[command.job_id] = extended;
        return Outcome{extended};
      }
      JobPtr job = current;
      for (Event& e : *events) {
        e.seq = next_seq_++;
        auto next = Apply(job.get(), e);
        if (!next.ok()) return Internal("an event Decide made does not apply: " +
                                        next.status().message());
        job = std::make_shared<const Job>(std::move(next).value());
        local_[e.job_id] = e.type == EventType::kExpired ? nullptr : job;
        local_events_.push_back(std::move(e));
      }
      if (create && create->idempotency_key) local_keys_[*create->idempotency_key] = job->job_id;
      return Outcome{job};
    }

    StatusOr<Outcome> Claim(const ClaimRequest& claim) {
      JobPtr candidate = batch_.projection_.OldestPending(claim.types, [&](const Job& job) {
        JobPtr now = Current(job.job_id);
        return !now || now->status != JobStatus::kPending;
      });
      if (!candidate) return Outcome{};
      Command start{candidate->job_id, std::nullopt, std::nullopt,
                    StartJob{claim.worker, claim.lease_seconds}};
      return Execute(start);
    }

    void Commit() {
      for (auto& [id, job] : local_) batch_.overlay_[id] = std::move(job);
      for (auto& [key, id] : local_keys_) batch_.keys_[key] = std::move(id);
      for (auto& e : local_events_) batch_.events_.push_back(std::move(e));
      batch_.next_seq_ = next_seq_;
    }

   private:
    Batch& batch_;
    std::uint64_t next_seq_;
    std::unordered_map<std::string, JobPtr> local_;
    std::unordered_map<std::string, std::string> local_keys_;
    std::vector<Event> local_events_;
  };

  const JobProjection& projection_;
  std::uint64_t next_seq_;
  const TimeMs now_;
  std::unordered_map<std::string, JobPtr> overlay_;  // nullptr: the job left (expired)
  std::unordered_map<std::string, std::string> keys_;  // idempotency keys created in the batch
  std::vector<Event> events_;
};

JobStore::JobStore(StoreOptions options, std::unique_ptr<eventlog::EventLog> log)
    : options_(std::move(options)),
      clock_(options_.clock ? options_.clock : SystemClock::Default()),
      log_(std::move(log)) {}

StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const StoreOptions& options) {
  auto log = eventlog::EventLog::Open(options.data_dir, options.log);
  if (!log.ok()) return log.status();
  std::unique_ptr<JobStore> store(new JobStore(options, std::move(log).value()));
  JOBSTORE_RETURN_IF_ERROR(store->Replay());
  store->writer_ = std::thread([s = store.get()] { s->WriterLoop(); });
  return store;
}

JobStore::~JobStore() { Close(); }

Status JobStore::Replay() {
  const auto start = std::chrono::steady_clock::now();
  std::unordered_map<std::string, std::optional<Job>> live;
  Status failure;
  std::uint64_t count = 0;
  Status scan = log_->Scan(log_->FirstSeq(), UINT64_MAX, [&](Event&& e) {
    ++count;
    std::optional<Job>& job = live[e.job_id];
    Status applied = ApplyInPlace(job, e);
    if (!applied.ok()) {
      failure = applied;
      return false;
    }
    if (e.type == EventType::kExpired) live.erase(e.job_id);
    return true;
  });
  JOBSTORE_RETURN_IF_ERROR(scan);
  if (!failure.ok()) return Status(failure.code(), "replay stopped: " + failure.message());
  std::vector<std::pair<std::string, JobPtr>> jobs;
  jobs.reserve(live.size());
  for (auto& [id, job] : live) {
    if (job) jobs.emplace_back(id, std::make_shared<const Job>(std::move(*job)));
  }
  projection_.Replace(jobs, log_->LastSeq());
  recovery_.events_replayed = count;
  recovery_.jobs_loaded = jobs.size();
  recovery_.replay_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return Status::Ok();
}

StatusOr<Outcome> JobStore::Submit(Command command) {
  auto request = std::make_shared<Request>();
  request->commands.push_back(std::move(command));
  auto outcomes = Enqueue(std::move(request));
  if (!outcomes.ok()) return outcomes.status();
  return std::move(outcomes->front());
}

StatusOr<std::vector<Outcome>> JobStore::SubmitAll(std::vector<Command> commands) {
  if (commands.empty()) return std::vector<Outcome>{};
  auto request = std::make_shared<Request>();
  request->commands = std::move(commands);
  return Enqueue(std::move(request));
}

StatusOr<Outcome> JobStore::Claim(const ClaimRequest& claim) {
  auto request = std::make_shared<Request>();
  request->claim = claim;
  auto outcomes = Enqueue(std::move(request));
  if (!outcomes.ok()) return outcomes.status();
  return std::move(outcomes->front());
}

StatusOr<std::vector<Outcome>> JobStore::Enqueue(std::shared_ptr<Request> request) {
  auto future = request->done.get_future();
  {
    std::lock_guard lock(queue_mu_);
    if (closing_) return Unavailable("the store is shutting down");
    queue_.push_back(std::move(request));
  }
  queue_cv_.notify_one();
  return future.get();
}

void JobStore::WriterLoop() {
  std::vector<std::shared_ptr<Request>> requests;
  for (;;) {
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [&] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;  // closing and drained
      std::size_t commands = 0;
      while (!queue_.empty() && commands < options_.max_batch_commands) {
        commands += std::max<std::size_t>(1, queue_.front()->commands.size());
        requests.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    CommitBatch(requests);
    requests.clear();
  }
}

void JobStore::CommitBatch(std::vector<std::shared_ptr<Request>>& requests) {
  Batch batch(projection_, log_->LastSeq() + 1, clock_->NowMs());
  std::vector<StatusOr<std::vector<Outcome>>> results;
  results.reserve(requests.size());
  std::size_t commands = 0;
  for (const auto& request : requests) {
    results.push_back(batch.Run(*request));
    commands += std::max<std::size_t>(1, request->commands.size());
  }
  Status written = log_->Append(batch.events());
  if (written.ok()) {
    writable_.store(true, std::memory_order_release);
    counters_.events_appended.fetch_add(batch.events().size(), std::memory_order_relaxed);
    counters_.batches.fetch_add(1, std::memory_order_relaxed);
    counters_.batch_commands.fetch_add(commands, std::memory_order_relaxed);
    auto changes = batch.Changes();
    if (!changes.empty()) projection_.Replace(changes, log_->LastSeq());
  } else {
    // Nothing of this batch is applied or acknowledged: each of its commands fails as a whole.
    writable_.store(false, std::memory_order_release);
    counters_.write_errors.fetch_add(1, std::memory_order_relaxed);
    for (auto& result : results) {
      if (result.ok()) result = Status(StatusCode::kUnavailable, written.message());
    }
  }
  for (std::size_t i = 0; i < requests.size(); ++i) {
    requests[i]->done.set_value(std::move(results[i]));
  }
}

void JobStore::Close() {
  {
    std::lock_guard lock(queue_mu_);
    if (closing_ && !writer_.joinable()) return;
    closing_ = true;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  projection_.Shutdown();
}

}  // namespace jobstore
