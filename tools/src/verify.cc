// inspect verify: every check a storage engineer would run on the log, each problem named by its
// seq and job.
#include <algorithm>
#include <functional>
#include <unordered_map>
#include <unordered_set>

#include "jobstore/core/decide.h"
#include "jobstore/core/json_codec.h"
#include "jobstore/core/schedule.h"
#include "jobstore/store/snapshot.h"
#include "jobstore/tools/tools.h"

namespace jobstore::tools {
namespace {

// What the log says about one seq, to check the job index against.
struct Seen {
  std::uint64_t seq;
  std::uint64_t version;
  std::size_t job_hash;
  bool indexed = false;
};

// A snapshot state and a replayed state agree when all but the soft lease deadline match (a
// restart gives running leases a fresh term, which is not an event).
bool SameState(Job a, Job b) {
  a.lease_expires_at.reset();
  b.lease_expires_at.reset();
  return a == b;
}

class Verifier {
 public:
  Verifier(ToolLog& log, std::ostream& out) : tl_(log), out_(out) {}

  StatusOr<std::vector<Problem>> Run() {
    eventlog::EventLog& log = tl_.log();
    std::vector<std::string> warnings;
    snapshot_ = LoadNewestSnapshot(tl_.data_dir(), log.LastSeq(), &warnings);
    for (const auto& w : warnings) Add(0, "", w);
    const bool gapless = log.FirstSeq() == 1;  // no history retention has deleted anything
    if (!gapless) out_ << "note: history retention has deleted events; gaps are not checked\n";
    Progress progress(log.FirstSeq(), log.LastSeq());
    std::uint64_t previous = log.FirstSeq() - 1;
    JOBSTORE_RETURN_IF_ERROR(log.ScanRecords(log.FirstSeq(), UINT64_MAX,
                                             [&](std::uint64_t seq, StatusOr<Event>&& event) {
      progress.Update(seq);
      if (seq <= previous) Add(seq, "", "seq does not increase (after " + std::to_string(previous) + ")");
      if (gapless && seq > previous + 1) {
        Add(seq, "", "seqs " + std::to_string(previous + 1) + ".." + std::to_string(seq - 1) + " are missing");
      }
      previous = std::max(previous, seq);
      if (snapshot_.seq && !snapshot_checked_ && seq > snapshot_.seq) CheckSnapshot();
      if (!event.ok()) {
        Add(seq, "", event.status().message());
        return true;
      }
      Check(*event);
      return true;
    }));
    if (snapshot_.seq && !snapshot_checked_) CheckSnapshot();
    JOBSTORE_RETURN_IF_ERROR(CheckIndex());
    std::sort(problems_.begin(), problems_.end(),
              [](const Problem& a, const Problem& b) { return a.seq < b.seq; });
    out_ << "checked " << events_ << " events of " << jobs_seen_ << " jobs, seq "
         << log.FirstSeq() << ".." << log.LastSeq()
         << (snapshot_.seq ? ", snapshot at seq " + std::to_string(snapshot_.seq) : std::string())
         << ": " << (problems_.empty() ? "clean" : std::to_string(problems_.size()) + " problem(s)")
         << "\n";
    return problems_;
  }

 private:
  void Add(std::uint64_t seq, const std::string& job, std::string what) {
    problems_.push_back({seq, job, std::move(what)});
  }

  void Check(const Event& e) {
    ++events_;
    seen_.push_back({e.seq, e.version, std::hash<std::string>{}(e.job_id)});
    if (IsScheduleEvent(e.type) || ScheduleIdOf(e.job_id)) {
      CheckSchedule(e);
      return;
    }
    auto [it, fresh] = states_.try_emplace(e.job_id);
    if (e.type == EventType::kCreated) {
      ++jobs_seen_;
      if (it->second && it->second->version > 0 && !broken_.count(e.job_id)) {
        Add(e.seq, e.job_id, "job.created for a job that is still live");
      }
      it->second.reset();
      broken_.erase(e.job_id);
    }
    if (broken_.count(e.job_id)) return;  // reported once; later events would only echo it
    Status applied = ApplyInPlace(it->second, e);
    if (!applied.ok()) {
      Add(e.seq, e.job_id, applied.message());
      broken_.insert(e.job_id);
      return;
    }
    if (e.type == EventType::kExpired) states_.erase(it);
  }

  // A schedule's events fold with ApplySchedule (core/schedule.h), under their own ids.
  void CheckSchedule(const Event& e) {
    if (broken_.count(e.job_id)) return;
    Status applied = ApplySchedule(schedule_states_[e.job_id], e);
    if (!applied.ok()) {
      Add(e.seq, e.job_id, applied.message());
      broken_.insert(e.job_id);
    }
  }

  void CheckSnapshot() {
    snapshot_checked_ = true;
    std::size_t live = 0;
    for (const auto& [id, state] : states_) live += state.has_value();
    if (live != snapshot_.jobs.size()) {
      Add(snapshot_.seq, "", "snapshot holds " + std::to_string(snapshot_.jobs.size()) +
                                 " jobs, the log " + std::to_string(live) + " at its seq");
    }
    for (const auto& job : snapshot_.jobs) {
      auto it = states_.find(job->job_id);
      if (it == states_.end() || !it->second || !SameState(*it->second, *job)) {
        Add(snapshot_.seq, job->job_id, "snapshot disagrees with the log's replay");
      }
    }
  }

  Status CheckIndex() {
    std::sort(seen_.begin(), seen_.end(), [](const Seen& a, const Seen& b) { return a.seq < b.seq; });
    JOBSTORE_RETURN_IF_ERROR(tl_.log().ScanJobIndex(
        [&](std::string_view job_id, std::uint64_t seq, std::uint64_t version) {
          auto it = std::lower_bound(seen_.begin(), seen_.end(), seq,
                                     [](const Seen& s, std::uint64_t q) { return s.seq < q; });
          std::string id(job_id);
          if (it == seen_.end() || it->seq != seq) {
            Add(seq, id, "job_index names seq " + std::to_string(seq) + ", which is not in the log");
          } else if (it->job_hash != std::hash<std::string>{}(id) || it->version != version) {
            Add(seq, id, "job_index entry disagrees with the event (job or version)");
            it->indexed = true;
          } else {
            it->indexed = true;
          }
          return true;
        }));
    for (const Seen& s : seen_) {
      if (!s.indexed) Add(s.seq, "", "event is missing from job_index");
    }
    return Status::Ok();
  }

  ToolLog& tl_;
  std::ostream& out_;
  SnapshotContents snapshot_;
  bool snapshot_checked_ = false;
  std::unordered_map<std::string, std::optional<Job>> states_;
  std::unordered_map<std::string, std::optional<Schedule>> schedule_states_;
  std::unordered_set<std::string> broken_;
  std::vector<Seen> seen_;
  std::vector<Problem> problems_;
  std::uint64_t events_ = 0, jobs_seen_ = 0;
};

}  // namespace

StatusOr<std::vector<Problem>> Verify(ToolLog& log, std::ostream& out) {
  return Verifier(log, out).Run();
}

}  // namespace jobstore::tools
