#include "jobstore/core/log_fields.h"
#include "jobstore/store/job_store.h"

#include <pthread.h>

#include <chrono>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "jobstore/core/decide.h"
#include "jobstore/core/schedule.h"
#include "jobstore/store/internal/ack_tree.h"
#include "jobstore/store/log_replay.h"
#include "jobstore/store/internal/prepared_create.h"

namespace jobstore {

namespace {
// Heartbeats without progress are not in the log, so a running job's lease may have been
// extended where no log shows it (before a restart, or on the writer before a failover): its
// lease starts a fresh term rather than expiring a worker that was alive.
void GiveFreshLeaseTerm(Job& job, TimeMs now) {
  job.lease_expires_at =
      std::max(job.lease_expires_at.value_or(0), now + job.lease_seconds * kMsPerSecond);
}
}  // namespace

struct JobStore::Request {
  std::vector<Command> commands;  // empty for a claim
  // Per command: its create prepared by the caller's thread (see prepared_create.h); empty
  // entries, or no entries at all, for commands that are not creates.
  std::vector<std::optional<internal::PreparedCreate>> prepared;
  std::optional<ClaimRequest> claim;  // alone; after one finish (all or none); or after
                                      // independent commands (SubmitEach), a result of its own
  std::optional<ReplicatedBatch> replicated;  // set: a batch another instance wrote
  bool refresh_leases = false;                // StartWriterTerm's work
  bool independent = false;  // each command stands alone (SubmitEach), else all or none
  std::uint64_t submitter = internal::SubmitterId();  // the thread that submitted it
  Results results;           // written by the writer before it acknowledges `ack`
  internal::AckSlot ack;
};

// The state of one group commit while the writer decides its requests: what the earlier
// requests of the batch changed (the overlay) on top of the projection, and the events so far.
class JobStore::Batch {
 public:
  Batch(const JobProjection& projection, const ScheduleBook& schedules, std::uint64_t next_seq,
        TimeMs now)
      : projection_(projection), schedules_(schedules), next_seq_(next_seq), now_(now) {}

  // Decides one request: one result per command when independent, else one for the whole.
  // Takes the request's prepared creates.
  Results Run(Request& request) {
    if (request.claim && request.commands.empty()) {
      Scope scope(*this);
      auto claimed = scope.Claim(*request.claim);
      if (claimed.ok()) scope.Commit();
      return {std::move(claimed)};
    }
    if (request.claim && request.independent) {  // finish each on its own, then claim
      Results results = RunEach(request);
      Scope scope(*this);
      auto claimed = scope.Claim(*request.claim);
      if (claimed.ok()) scope.Commit();
      results.push_back(std::move(claimed));
      return results;
    }
    if (request.claim) {  // finish a job, then claim the next one: all or none
      Scope scope(*this);
      auto finished = scope.Execute(request.commands.front(), Prepared(request, 0));
      if (!finished.ok()) return {std::move(finished)};
      auto claimed = scope.Claim(*request.claim);
      if (!claimed.ok()) return {claimed.status()};
      finished->next = std::move(claimed->job);
      scope.Commit();
      return {std::move(finished)};
    }
    if (request.independent) return RunEach(request);
    Scope scope(*this);
    Results outcomes;
    const bool many = request.commands.size() > 1;
    for (std::size_t i = 0; i < request.commands.size(); ++i) {
      auto outcome = scope.Execute(request.commands[i], Prepared(request, i));
      if (!outcome.ok()) {
        if (!many) return {outcome.status()};
        return {Status(outcome.status().code(),
                       "jobs[" + std::to_string(i) + "]: " + outcome.status().message())};
      }
      outcomes.push_back(std::move(outcome));
    }
    scope.Commit();
    return outcomes;
  }

  // Each command of the request on its own: a refused one changes nothing, the others apply.
  Results RunEach(Request& request) {
    Results results;
    for (std::size_t i = 0; i < request.commands.size(); ++i) {
      Scope scope(*this);
      auto outcome = scope.Execute(request.commands[i], Prepared(request, i));
      if (outcome.ok()) scope.Commit();
      results.push_back(std::move(outcome));
    }
    return results;
  }

  const std::vector<eventlog::SerializedEvent>& events() const { return events_; }
  std::vector<std::pair<std::string, JobPtr>> Changes() const {
    return {overlay_.begin(), overlay_.end()};
  }
  std::vector<std::pair<std::string, SchedulePtr>> ScheduleChanges() const {
    return {schedule_overlay_.begin(), schedule_overlay_.end()};
  }
  StoreChanges Summary() const {
    StoreChanges out;
    for (const auto& [id, job] : overlay_) {
      if (job) out.live.push_back(job);
    }
    out.expired = expired_;
    out.schedules_changed = !schedule_overlay_.empty();
    return out;
  }

 private:
  // One request's changes, merged into the batch only when the whole request succeeds.
  class Scope {
   public:
    explicit Scope(Batch& batch) : batch_(batch), next_seq_(batch.next_seq_) {}

    // What this scope or its batch changed `id` to (a null JobPtr: the job left); nullptr when
    // neither changed it.
    const JobPtr* Changed(const std::string& id) const {
      if (auto it = local_.find(id); it != local_.end()) return &it->second;
      if (auto it = batch_.overlay_.find(id); it != batch_.overlay_.end()) return &it->second;
      return nullptr;
    }

    JobPtr Current(const std::string& id) const {
      if (const JobPtr* changed = Changed(id)) return *changed;
      return batch_.projection_.Get(id);
    }

    JobPtr ByIdempotencyKey(const std::string& key) const {
      using Keys = std::unordered_map<std::string, std::string>;
      for (const Keys* keys : {&local_keys_, static_cast<const Keys*>(&batch_.keys_)}) {
        if (auto it = keys->find(key); it != keys->end()) return Current(it->second);
      }
      return batch_.projection_.FindByIdempotencyKey(key, batch_.now_);
    }

    // The job a forwarded request with this id made, if its current version still carries the
    // id: the request was applied already (a repeat after its answer was lost with a writer).
    JobPtr ByForwardId(const std::string& forward_id) const {
      using Ids = std::unordered_map<std::string, std::string>;
      std::string job_id;
      for (const Ids* ids : {&local_forward_ids_, static_cast<const Ids*>(&batch_.forward_ids_)}) {
        if (auto it = ids->find(forward_id); it != ids->end() && job_id.empty()) job_id = it->second;
      }
      if (job_id.empty()) {
        JobPtr made = batch_.projection_.FindByForwardId(forward_id);
        if (!made) return nullptr;
        job_id = made->job_id;
      }
      JobPtr now = Current(job_id);
      return now && now->forward_id && *now->forward_id == forward_id ? now : nullptr;
    }

    SchedulePtr CurrentSchedule(const std::string& id) const {
      if (auto it = local_schedules_.find(id); it != local_schedules_.end()) return it->second;
      if (auto it = batch_.schedule_overlay_.find(id); it != batch_.schedule_overlay_.end()) {
        return it->second;
      }
      return batch_.schedules_.Get(id);
    }

    StatusOr<Outcome> ExecuteSchedule(const Command& command) {
      SchedulePtr current = CurrentSchedule(command.job_id);
      JOBSTORE_ASSIGN_OR_RETURN(auto events,
                                DecideSchedule(current.get(), command, batch_.now_));
      std::optional<Schedule> schedule;
      if (current) schedule = *current;
      for (Event& e : events) {
        e.seq = next_seq_++;
        if (Status st = ApplySchedule(schedule, e); !st.ok()) {
          return Internal("an event DecideSchedule made does not apply: " + st.message());
        }
        local_events_.push_back(eventlog::Serialize(std::move(e)));
      }
      SchedulePtr next = schedule ? std::make_shared<const Schedule>(std::move(*schedule)) : nullptr;
      local_schedules_[command.job_id] = next;
      return Outcome{nullptr, false, next};
    }

    // `prepared`: the command's create as its caller's thread prepared it, or nullptr.
    StatusOr<Outcome> Execute(const Command& command, internal::PreparedCreate* prepared) {
      if (IsScheduleCommand(command.body)) return ExecuteSchedule(command);
      if (command.forward_id) {  // a repeat, by the same caller: answered, not applied again
        JobPtr made = ByForwardId(*command.forward_id);
        if (made && CallerMayActOn(*made, command.caller)) return Outcome{made, /*deduplicated=*/true};
      }
      const auto* create = std::get_if<CreateJob>(&command.body);
      if (create && create->idempotency_key) {
        if (JobPtr first = ByIdempotencyKey(*create->idempotency_key)) {
          if (first->idempotency_fingerprint && create->idempotency_fingerprint &&
              *first->idempotency_fingerprint != *create->idempotency_fingerprint) {
            return Status(StatusCode::kIdempotencyKeyReused,
                          "Idempotency-Key '" + *create->idempotency_key +
                              "' was used for job '" + first->job_id +
                              "' with a different request body; use a new key for a new job");
          }
          return Outcome{first, /*deduplicated=*/true};
        }
      }
      JobPtr current = Current(command.job_id);
      if (create && prepared) {
        auto made = ExecutePrepared(*create, current.get(), *prepared);
        if (made.ok() && command.forward_id) local_forward_ids_[*command.forward_id] = made->job->job_id;
        return made;
      }
      JOBSTORE_ASSIGN_OR_RETURN(auto events, Decide(current.get(), command, batch_.now_));
      if (events.empty()) {
        // Accepted without an event: only soft state may change (core owns which).
        auto changed = ApplyUnrecorded(*current, command, batch_.now_);
        if (!changed) return Outcome{current};
        auto job = std::make_shared<const Job>(std::move(*changed));
        local_[command.job_id] = job;
        return Outcome{job};
      }
      JobPtr job = current;
      for (Event& e : events) {
        e.seq = next_seq_++;
        auto next = ApplyShared(job, e);
        if (!next.ok()) {
          return Internal("an event Decide made does not apply: " + next.status().message());
        }
        job = std::move(next).value();
        if (e.type == EventType::kExpired) {
          local_[e.job_id] = nullptr;
          local_expired_.push_back(job);
        } else {
          local_[e.job_id] = job;
        }
        local_events_.push_back(eventlog::Serialize(std::move(e)));
      }
      if (create && create->idempotency_key) local_keys_[*create->idempotency_key] = job->job_id;
      if (command.forward_id) local_forward_ids_[*command.forward_id] = job->job_id;
      return Outcome{job};
    }

    // Execute's create when its Decide and Apply ran ahead: the check and the stamp are left.
    StatusOr<Outcome> ExecutePrepared(const CreateJob& create, const Job* current,
                                      internal::PreparedCreate& prepared) {
      JOBSTORE_RETURN_IF_ERROR(CheckCreate(current, prepared.job->job_id));
      const std::uint64_t seq = next_seq_++;
      StampCreated(*prepared.job, seq, batch_.now_);
      JobPtr job = std::move(prepared.job);
      local_[job->job_id] = job;
      local_events_.push_back(
          {seq, job->job_id, 1, EventType::kCreated, batch_.now_, std::move(prepared.data_json)});
      if (create.idempotency_key) local_keys_[*create.idempotency_key] = job->job_id;
      return Outcome{job};
    }

    StatusOr<Outcome> Claim(const ClaimRequest& claim) {
      Outcome out;
      auto forward_id = [&](std::size_t i) -> std::optional<std::string> {
        if (!claim.forward_id) return std::nullopt;
        return *claim.forward_id + "/" + std::to_string(i);
      };
      if (claim.forward_id) {  // a repeat: the jobs the first one took, as they are now
        for (std::size_t i = 0; i < std::max<std::size_t>(claim.max_jobs, 1); ++i) {
          JobPtr taken = ByForwardId(*forward_id(i));
          if (!taken) break;
          if (!out.job) out.job = taken;
          out.jobs.push_back(std::move(taken));
          out.deduplicated = true;
        }
        if (out.deduplicated) return out;
      }
      for (std::size_t i = 0; i < std::max<std::size_t>(claim.max_jobs, 1); ++i) {
        // Jobs this scope or batch took already are running in it, so they are skipped. Only
        // the overlays are read: NextClaimable holds the projection's shared lock, and taking it
        // again in the same thread (Current's projection_.Get) is undefined for std::shared_mutex.
        JobPtr candidate = batch_.projection_.NextClaimable(claim.types, [&](const Job& job) {
          const JobPtr* changed = Changed(job.job_id);
          const Job* now = changed ? changed->get() : &job;
          return now == nullptr || now->status != JobStatus::kPending;
        });
        if (!candidate) break;
        Command start{candidate->job_id, std::nullopt, std::nullopt,
                      StartJob{claim.worker, claim.lease_seconds}, forward_id(i)};
        JOBSTORE_ASSIGN_OR_RETURN(auto started, Execute(start, /*prepared=*/nullptr));
        if (!out.job) out.job = started.job;
        out.jobs.push_back(std::move(started.job));
      }
      return out;
    }

    void Commit() {
      for (auto& [id, job] : local_) batch_.overlay_[id] = std::move(job);
      for (auto& [key, id] : local_keys_) batch_.keys_[key] = std::move(id);
      for (auto& [fid, id] : local_forward_ids_) batch_.forward_ids_[fid] = std::move(id);
      for (auto& e : local_events_) batch_.events_.push_back(std::move(e));
      for (auto& j : local_expired_) batch_.expired_.push_back(std::move(j));
      for (auto& [id, s] : local_schedules_) batch_.schedule_overlay_[id] = std::move(s);
      batch_.next_seq_ = next_seq_;
    }

   private:
    Batch& batch_;
    std::uint64_t next_seq_;
    std::unordered_map<std::string, JobPtr> local_;
    std::unordered_map<std::string, std::string> local_keys_;
    std::unordered_map<std::string, std::string> local_forward_ids_;
    std::vector<eventlog::SerializedEvent> local_events_;
    std::vector<JobPtr> local_expired_;
    std::unordered_map<std::string, SchedulePtr> local_schedules_;
  };

  const JobProjection& projection_;
  const ScheduleBook& schedules_;
  std::unordered_map<std::string, SchedulePtr> schedule_overlay_;  // nullptr: deleted
  std::uint64_t next_seq_;
  const TimeMs now_;
  std::unordered_map<std::string, JobPtr> overlay_;    // nullptr: the job left (expired)
  std::unordered_map<std::string, std::string> keys_;  // idempotency keys created in the batch
  std::unordered_map<std::string, std::string> forward_ids_;  // forwarded requests applied in it
  std::vector<eventlog::SerializedEvent> events_;
  std::vector<JobPtr> expired_;

  static internal::PreparedCreate* Prepared(Request& request, std::size_t i) {
    if (i >= request.prepared.size() || !request.prepared[i]) return nullptr;
    return &*request.prepared[i];
  }
};

JobStore::JobStore(StoreOptions options, std::unique_ptr<eventlog::EventLog> log)
    : options_(std::move(options)),
      clock_(options_.clock ? options_.clock : SystemClock::Default()),
      log_(std::move(log)),
      appender_(options_.appender ? options_.appender : &local_appender_),
      recent_submitters_(kCommitDelayMemory * options_.commit_delay) {}

StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const StoreOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  JOBSTORE_ASSIGN_OR_RETURN(auto log, eventlog::EventLog::Open(options.data_dir, options.log));
  std::unique_ptr<JobStore> store(new JobStore(options, std::move(log)));
  store->recovery_.log_open_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  JOBSTORE_RETURN_IF_ERROR(store->Recover());
  store->writer_ = std::thread([s = store.get()] {
    pthread_setname_np(pthread_self(), "jobstore-writer");  // for top -H, perf, gdb
    s->WriterLoop();
  });
  return store;
}

JobStore::~JobStore() { (void)Close(); }  // Close() is where a caller learns the outcome

Status JobStore::Recover() {
  const auto start = std::chrono::steady_clock::now();
  SnapshotContents snapshot;
  if (options_.use_snapshots) {
    snapshot = LoadNewestSnapshot(options_.data_dir, log_->LastSeq(), &recovery_.warnings);
  }
  auto lap = [last = start]() mutable {
    const auto now = std::chrono::steady_clock::now();
    const double ms = std::chrono::duration<double, std::milli>(now - last).count();
    last = now;
    return ms;
  };
  recovery_.snapshot_ms = lap();
  const std::uint64_t from = std::max(log_->FirstSeq(), snapshot.seq + 1);
  JOBSTORE_ASSIGN_OR_RETURN(auto schedules, ReadSchedules(*log_));
  schedules_.Load(std::move(schedules));
  auto replayed = ReplayLog(*log_, from, std::move(snapshot.jobs));
  if (!replayed.ok()) {
    return Status(replayed.status().code(), "replay stopped: " + replayed.status().message());
  }
  {
    MutexLock lock(&retained_mu_);  // nothing else runs yet; the lock states the contract
    retained_.assign(snapshot.retained.begin(), snapshot.retained.end());
    if (options_.track_retained_history) {
      retained_.insert(retained_.end(), replayed->expired.begin(), replayed->expired.end());
    }
  }
  recovery_.log_ms = lap();
  const TimeMs now = clock_->NowMs();  // every running lease starts a fresh term
  std::vector<JobPtr> jobs;
  jobs.reserve(replayed->jobs.size());
  for (std::shared_ptr<Job>& job : replayed->jobs) {
    if (job->status == JobStatus::kRunning && job->lease_seconds > 0) GiveFreshLeaseTerm(*job, now);
    jobs.push_back(std::move(job));
  }
  JOBSTORE_RETURN_IF_ERROR(log_->Scan(log_->LastSeq(), log_->LastSeq(), [&](Event&& e) {
    last_event_at_ = e.at;
    return false;
  }));
  const std::size_t count = replayed->events;
  recovery_.jobs_loaded = jobs.size();
  projection_.Load(std::move(jobs), log_->LastSeq());
  recovery_.index_ms = lap();
  recovery_.snapshot_seq = snapshot.seq;
  recovery_.events_replayed = count;
  recovery_.replay_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return Status::Ok();
}

StatusOr<Outcome> JobStore::Submit(Command command) {
  auto request = std::make_shared<Request>();
  if (const auto* complete = std::get_if<CompleteJob>(&command.body)) request->claim = complete->next;
  if (const auto* fail = std::get_if<FailJob>(&command.body)) request->claim = fail->next;
  // A forwarded finish's next claim: its own ids, so that a repeat finds the job it took.
  if (request->claim && command.forward_id) request->claim->forward_id = *command.forward_id + "/next";
  request->commands.push_back(std::move(command));
  return std::move(Enqueue(std::move(request)).front());
}

StatusOr<std::vector<Outcome>> JobStore::SubmitAll(std::vector<Command> commands) {
  if (commands.empty()) return std::vector<Outcome>{};
  auto request = std::make_shared<Request>();
  request->commands = std::move(commands);
  Results results = Enqueue(std::move(request));
  std::vector<Outcome> outcomes;
  for (auto& r : results) {
    if (!r.ok()) return r.status();
    outcomes.push_back(std::move(r).value());
  }
  return outcomes;
}

std::vector<StatusOr<Outcome>> JobStore::SubmitEach(std::vector<Command> commands,
                                                    std::optional<ClaimRequest> then_claim) {
  if (commands.empty()) return {};
  auto request = std::make_shared<Request>();
  request->commands = std::move(commands);
  request->independent = true;
  request->claim = std::move(then_claim);
  return Enqueue(std::move(request));
}

StatusOr<Outcome> JobStore::Claim(const ClaimRequest& claim) {
  auto request = std::make_shared<Request>();
  request->claim = claim;
  return std::move(Enqueue(std::move(request)).front());
}

void JobStore::SetChangeListener(ChangeListener listener) {
  MutexLock lock(&listener_mu_);
  listener_ = std::move(listener);
}

JobStore::Results JobStore::Enqueue(std::shared_ptr<Request> request) {
  const std::size_t n =
      request->independent ? request->commands.size() + (request->claim ? 1 : 0) : 1;
  // In the caller's thread; requests without a create allocate nothing here.
  for (std::size_t i = 0; i < request->commands.size(); ++i) {
    auto prepared = internal::PrepareCreate(request->commands[i]);
    if (!prepared) continue;
    request->prepared.resize(request->commands.size());
    request->prepared[i] = std::move(prepared);
  }
  if (!Push(request)) return Results(n, Unavailable("the store is shutting down"));
  request->ack.Wait();
  return std::move(request->results);
}

bool JobStore::Push(const std::shared_ptr<Request>& request) {
  {
    MutexLock lock(&queue_mu_);
    if (closing_) return false;
    queue_.push_back(request);
    // The writer gathering company for a delayed group wakes once, when the group is whole.
    if (queue_.size() < wake_at_ && !IsAlone(*request)) return true;
  }
  queue_cv_.Signal();
  return true;
}

void JobStore::WriterLoop() {
  std::vector<std::shared_ptr<Request>> requests;
  for (;;) {
    {
      MutexLock lock(&queue_mu_);
      const bool backlog = !queue_.empty();  // writes queued while the last group was written
      while (!closing_ && queue_.empty()) queue_cv_.Wait(&queue_mu_);
      if (queue_.empty()) return;  // closing and drained
      if (backlog) AwaitCompany();
      std::size_t commands = 0;
      while (!queue_.empty() && commands < options_.max_batch_commands) {
        // A replicated batch (and a new writer's lease refresh) runs alone, in its place.
        if (IsAlone(*queue_.front()) && !requests.empty()) break;
        if (requests.size() == 1 && IsAlone(*requests.front())) break;
        commands += std::max<std::size_t>(1, queue_.front()->commands.size());
        requests.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      last_group_ = requests.size();
    }
    if (options_.commit_delay.count() > 0) {  // outside queue_mu_: Push need not wait for it
      const auto now = std::chrono::steady_clock::now();
      for (const auto& request : requests) recent_submitters_.Saw(request->submitter, now);
    }
    if (IsAlone(*requests.front())) {
      Request& r = *requests.front();
      Status applied = r.replicated ? CommitReplicated(*r.replicated) : RefreshLeases();
      r.results.push_back(applied.ok() ? StatusOr<Outcome>(Outcome{}) : StatusOr<Outcome>(applied));
      internal::AckTree::Acknowledge({std::shared_ptr<internal::AckSlot>(requests.front(), &r.ack)});
    } else {
      CommitBatch(requests);
    }
    requests.clear();
  }
}

void JobStore::CommitBatch(std::vector<std::shared_ptr<Request>>& requests) {
  // On a replicated log a new writer's clock may be behind the old one's: event times never go
  // back across a failover. (One instance takes its clock as it is; tests step it back.)
  const TimeMs now = options_.appender ? std::max(clock_->NowMs(), last_event_at_) : clock_->NowMs();
  Batch batch(projection_, schedules_, log_->LastSeq() + 1, now);
  std::vector<Results> results;
  results.reserve(requests.size());
  std::size_t commands = 0;
  for (const auto& request : requests) {
    results.push_back(batch.Run(*request));
    commands += std::max<std::size_t>(1, request->commands.size());
  }
  const auto append_started = std::chrono::steady_clock::now();
  Status written =
      batch.events().empty() ? Status::Ok() : appender_->Append(*log_, batch.events());
  if (!batch.events().empty()) {
    counters_.append_ns.fetch_add(
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::steady_clock::now() - append_started)
                                       .count()),
        std::memory_order_relaxed);
  }
  if (written.ok()) {
    if (!writable_.exchange(true, std::memory_order_acq_rel)) {
      spdlog::info("the event log takes writes again");
    }
    counters_.events_appended.fetch_add(batch.events().size(), std::memory_order_relaxed);
    counters_.batches.fetch_add(1, std::memory_order_relaxed);
    counters_.batch_commands.fetch_add(commands, std::memory_order_relaxed);
    if (!batch.events().empty()) last_event_at_ = std::max(last_event_at_, batch.events().back().at);
    Publish(batch.Changes(), batch.ScheduleChanges(), batch.Summary(), !batch.events().empty());
  } else {
    // Nothing of this batch is applied or acknowledged: each of its commands fails.
    // Logged once per outage (each refused write also answers its client with the message).
    if (writable_.exchange(false, std::memory_order_acq_rel)) {
      LogFields fields({{"seq", log_->LastSeq()}});
      spdlog::error("the event log refuses writes until the cause is fixed: {}", written.message());
    }
    counters_.write_errors.fetch_add(1, std::memory_order_relaxed);
    for (auto& request_results : results) {
      for (auto& r : request_results) {
        // kUnavailable: not written (503). The appender's kInternal: the outcome is unknown.
        if (r.ok()) {
          r = Status(written.code() == StatusCode::kInternal ? StatusCode::kInternal
                                                             : StatusCode::kUnavailable,
                     written.message());
        }
      }
    }
  }
  std::vector<std::shared_ptr<internal::AckSlot>> acks;
  acks.reserve(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    requests[i]->results = std::move(results[i]);
    acks.emplace_back(requests[i], &requests[i]->ack);  // keeps the request alive
  }
  internal::AckTree::Acknowledge(std::move(acks));
}

void JobStore::Publish(std::vector<std::pair<std::string, JobPtr>> changes,
                       std::vector<std::pair<std::string, SchedulePtr>> schedule_changes,
                       StoreChanges summary, bool any_events) {
  if (!schedule_changes.empty()) schedules_.Replace(schedule_changes);
  // A batch of schedule events only still moves the applied seq (the feed's waiters wake).
  if (changes.empty() && !any_events) return;
  projection_.Replace(changes, log_->LastSeq());
  if (!summary.expired.empty() && options_.track_retained_history) {
    MutexLock lock(&retained_mu_);
    for (const JobPtr& j : summary.expired) {
      retained_.push_back({j->job_id, j->created_seq, j->last_seq, j->updated_at});
    }
  }
  MutexLock lock(&listener_mu_);
  if (listener_) listener_(summary);
}

std::size_t JobStore::TEST_QueuedRequests() const {
  MutexLock lock(&queue_mu_);
  return queue_.size();
}

bool JobStore::IsAlone(const Request& r) { return r.replicated || r.refresh_leases; }

void JobStore::AwaitCompany() {
  if (options_.commit_delay.count() <= 0) return;
  // A crowd of writers lately: wait for as many (a few come back too late to be worth it).
  const std::size_t recent = recent_submitters_.Count(std::chrono::steady_clock::now());
  const std::size_t expected = std::min(
      kCommitDelayMaxGroup, std::max(last_group_, recent >= kCommitDelayCrowd ? recent : 0));
  if (expected < 2 || queue_.size() >= expected) return;
  if (IsAlone(*queue_.front()) || queue_.front()->commands.size() >= kCommitDelayBatch) return;
  wake_at_ = expected;
  // Real time: the delay decides when a group is written, never what it holds or decides.
  const auto until = std::chrono::steady_clock::now() + options_.commit_delay;
  while (!closing_ && queue_.size() < expected && !IsAlone(*queue_.back()) &&
         queue_cv_.WaitUntil(&queue_mu_, until)) {
  }
  wake_at_ = 1;
}

void JobStore::StartWriterTerm() {
  auto request = std::make_shared<Request>();
  request->refresh_leases = true;
  (void)Enqueue(std::move(request));
}

Status JobStore::RefreshLeases() {
  const TimeMs now = std::max(clock_->NowMs(), last_event_at_);
  std::vector<std::pair<std::string, JobPtr>> changes;
  StoreChanges summary;
  projection_.ForEach([&](const JobPtr& job) {
    if (job->status != JobStatus::kRunning || job->lease_seconds <= 0) return;
    auto fresh = std::make_shared<Job>(*job);
    GiveFreshLeaseTerm(*fresh, now);
    if (fresh->lease_expires_at == job->lease_expires_at) return;
    summary.live.push_back(fresh);
    changes.emplace_back(fresh->job_id, std::move(fresh));
  });
  if (!changes.empty()) Publish(std::move(changes), {}, std::move(summary), /*any_events=*/false);
  return Status::Ok();
}

Status JobStore::ApplyReplicated(ReplicatedBatch batch) {
  return ApplyReplicatedAsync(std::move(batch)).Wait();
}

JobStore::PendingApply JobStore::ApplyReplicatedAsync(ReplicatedBatch batch) {
  auto request = std::make_shared<Request>();
  request->replicated = std::move(batch);
  if (!Push(request)) return PendingApply(Unavailable("the store is shutting down"));
  return PendingApply(std::move(request));
}

Status JobStore::PendingApply::Wait() {
  if (!request_) return refused_;
  request_->ack.Wait();
  return request_->results.front().status();
}

Status JobStore::CommitReplicated(ReplicatedBatch& batch) {
  // The writer appended its own batches with their stream seq already (all of them, or the
  // first messages of a batch the tail joined).
  if (batch.source_seq <= log_->SourceSeq()) return Status::Ok();
  const std::uint64_t expected = log_->LastSeq() + 1;
  std::size_t held = 0;
  while (held < batch.events.size() && batch.events[held].seq < expected) ++held;
  batch.events.erase(batch.events.begin(), batch.events.begin() + static_cast<std::ptrdiff_t>(held));
  batch.records.erase(batch.records.begin(), batch.records.begin() + static_cast<std::ptrdiff_t>(held));
  if (!batch.events.empty() && batch.events.front().seq != expected) {
    return Corruption("the replicated log's batch at stream seq " +
                      std::to_string(batch.source_seq) + " starts at event seq " +
                      std::to_string(batch.events.front().seq) + ", this copy expects " +
                      std::to_string(expected) + ": the copy has diverged");
  }
  std::unordered_map<std::string, JobPtr> jobs;
  std::unordered_map<std::string, std::optional<Schedule>> schedules;
  StoreChanges summary;
  for (const Event& e : batch.events) {
    if (IsScheduleEvent(e.type)) {
      // The log names a schedule "schedule/<id>"; the book knows it by its id.
      const auto schedule_id = ScheduleIdOf(e.job_id);
      if (!schedule_id) {
        return Corruption("replicated event seq " + std::to_string(e.seq) + " is a schedule's " +
                          "but names no schedule ('" + e.job_id + "')");
      }
      const std::string id(*schedule_id);
      auto it = schedules.find(id);
      if (it == schedules.end()) {
        SchedulePtr current = schedules_.Get(id);
        it = schedules.emplace(id, current ? std::optional<Schedule>(*current) : std::nullopt)
                 .first;
      }
      if (Status st = ApplySchedule(it->second, e); !st.ok()) {
        return Corruption("replicated event seq " + std::to_string(e.seq) +
                          " does not apply: " + st.message());
      }
      continue;
    }
    auto it = jobs.find(e.job_id);
    if (it == jobs.end()) it = jobs.emplace(e.job_id, projection_.Get(e.job_id)).first;
    auto next = ApplyShared(it->second, e);
    if (!next.ok()) {
      return Corruption("replicated event seq " + std::to_string(e.seq) +
                        " does not apply: " + next.status().message());
    }
    JobPtr job = std::move(next).value();
    if (e.type == EventType::kExpired) {
      summary.expired.push_back(job);
      it->second = nullptr;
    } else {
      it->second = std::move(job);
    }
  }
  Status written = log_->AppendFromSource(batch.records, batch.source_seq);
  if (!written.ok()) {
    counters_.write_errors.fetch_add(1, std::memory_order_relaxed);
    return written;
  }
  counters_.events_appended.fetch_add(batch.records.size(), std::memory_order_relaxed);
  if (!batch.events.empty()) last_event_at_ = std::max(last_event_at_, batch.events.back().at);
  std::vector<std::pair<std::string, JobPtr>> changes(jobs.begin(), jobs.end());
  for (const auto& [id, job] : changes) {
    if (job) summary.live.push_back(job);
  }
  std::vector<std::pair<std::string, SchedulePtr>> schedule_changes;
  for (auto& [id, s] : schedules) {
    schedule_changes.emplace_back(id, s ? std::make_shared<const Schedule>(std::move(*s)) : nullptr);
  }
  summary.schedules_changed = !schedule_changes.empty();
  Publish(std::move(changes), std::move(schedule_changes), std::move(summary),
          !batch.events.empty());
  return Status::Ok();
}

Status JobStore::WriteSnapshot() {
  std::uint64_t seq = 0;
  std::vector<JobPtr> jobs = projection_.Capture(&seq);
  std::vector<RetainedHistory> retained = RetainedHistories();
  // Only histories that expired at or before the captured seq belong to this snapshot.
  std::erase_if(retained, [&](const RetainedHistory& r) { return r.expired_seq > seq; });
  return jobstore::WriteSnapshot(options_.data_dir, seq, jobs, retained);
}

std::vector<RetainedHistory> JobStore::RetainedHistories() const {
  MutexLock lock(&retained_mu_);
  return {retained_.begin(), retained_.end()};
}

StatusOr<std::uint64_t> JobStore::DeleteHistoryExpiredBefore(TimeMs cutoff, std::size_t max_jobs) {
  const std::optional<std::uint64_t> through = HistoryExpiredBefore(cutoff, max_jobs);
  if (!through) return std::uint64_t{0};
  return DeleteHistoryExpiredThrough(*through);
}

std::optional<std::uint64_t> JobStore::HistoryExpiredBefore(TimeMs cutoff,
                                                            std::size_t max_jobs) const {
  std::optional<std::uint64_t> through;
  MutexLock lock(&retained_mu_);
  std::size_t taken = 0;
  for (const auto& r : retained_) {
    if (r.expired_at > cutoff || taken == max_jobs) break;
    through = r.expired_seq;
    ++taken;
  }
  return through;
}

StatusOr<std::uint64_t> JobStore::DeleteHistoryExpiredThrough(std::uint64_t expired_seq) {
  MutexLock one_at_a_time(&retention_mu_);
  std::vector<RetainedHistory> due;
  {
    MutexLock lock(&retained_mu_);
    for (const auto& r : retained_) {
      if (r.expired_seq > expired_seq) break;
      due.push_back(r);
    }
  }
  if (due.empty()) return std::uint64_t{0};
  std::vector<std::pair<std::string, std::uint64_t>> doomed;
  for (const RetainedHistory& r : due) {
    JOBSTORE_ASSIGN_OR_RETURN(auto history, log_->ReadJob(r.job_id, r.created_seq));
    for (const Event& e : history) {
      if (e.seq > r.expired_seq) break;  // a later job that reused the id
      doomed.emplace_back(e.job_id, e.seq);
    }
  }
  JOBSTORE_RETURN_IF_ERROR(log_->DeleteEvents(doomed));
  {
    MutexLock lock(&retained_mu_);
    retained_.erase(retained_.begin(), retained_.begin() + static_cast<std::ptrdiff_t>(due.size()));
  }
  // The first retained seq is the oldest event still in the log (or the next one to come).
  std::uint64_t first = log_->LastSeq() + 1;
  JOBSTORE_RETURN_IF_ERROR(log_->Scan(log_->FirstSeq(), UINT64_MAX, [&](Event&& e) {
    first = e.seq;
    return false;
  }));
  if (first > log_->FirstSeq()) JOBSTORE_RETURN_IF_ERROR(log_->SetFirstSeq(first));
  JOBSTORE_RETURN_IF_ERROR(log_->CompactAll());
  return static_cast<std::uint64_t>(doomed.size());
}

Status JobStore::Close() {
  // One Close at a time: a second caller waits for the first, then finds nothing left to join.
  MutexLock one_at_a_time(&close_mu_);
  {
    MutexLock lock(&queue_mu_);
    if (closing_ && !writer_.joinable()) return Status::Ok();
    closing_ = true;
  }
  queue_cv_.SignalAll();
  if (writer_.joinable()) writer_.join();
  projection_.Shutdown();
  return log_->Close();
}

}  // namespace jobstore
