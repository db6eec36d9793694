// inspect stats, dump and job.
#include <array>
#include <filesystem>
#include <iomanip>
#include <map>
#include <unordered_map>

#include "jobstore/core/decide.h"
#include "jobstore/core/json_codec.h"
#include "jobstore/core/schedule.h"
#include "jobstore/core/time_format.h"
#include "jobstore/store/snapshot.h"
#include "jobstore/tools/tools.h"

namespace jobstore::tools {
namespace {

// A one-line description of what an event changed, for people.
std::string Summary(const Event& e) {
  const Json& d = e.data;
  auto str = [&](const char* k) { return d.contains(k) && d[k].is_string() ? d[k].get<std::string>() : ""; };
  switch (e.type) {
    case EventType::kCreated: return "type=" + str("type") + " user=" + str("user_id");
    case EventType::kStarted:
      return "worker=" + (str("worker").empty() ? std::string("-") : str("worker")) +
             " attempt=" + d.value("attempt", Json(0)).dump() +
             " lease=" + d.value("lease_seconds", Json(0)).dump() + "s";
    case EventType::kHitlRequested: return str("request_id") + " " + str("type");
    case EventType::kHitlAnswered:
      return str("request_id") + (str("responded_by").empty() ? "" : " by " + str("responded_by"));
    case EventType::kFailed:
    case EventType::kHitlTimedOut:
      return d.contains("error") ? d["error"].value("code", "") + ": " + d["error"].value("message", "")
                                 : "";
    case EventType::kCancelled: return str("reason");
    case EventType::kLeaseExpired: return "-> " + str("status");
    default: {
      std::string s = d.dump(-1, ' ', false, Json::error_handler_t::replace);
      return s.size() > 100 ? s.substr(0, 97) + "..." : s;
    }
  }
}

void TableLine(std::ostream& out, const Event& e) {
  out << FormatRfc3339(e.at) << "  " << std::setw(8) << e.seq << "  " << std::left
      << std::setw(24) << e.job_id.substr(0, 24) << " v" << std::setw(4) << e.version
      << std::setw(20) << EventTypeName(e.type) << std::right << Summary(e) << "\n";
}

template <typename EventLike>
bool Matches(const DumpOptions& o, const EventLike& e) {
  if (o.job_id && e.job_id != *o.job_id) return false;
  if (o.type && e.type != *o.type) return false;
  if (o.since && e.at < *o.since) return false;
  if (o.until && e.at > *o.until) return false;
  return true;
}

// The JSON line of an event exactly as EventToJson(e).dump() writes it (keys sorted: at, data,
// job_id, seq, type, version), built without parsing the stored data: that text already is
// nlohmann's compact dump. The CLI test compares it byte for byte with the API's feed.
void AppendJsonLine(const eventlog::RecordView& v, std::string* out) {
  *out += "{\"at\":\"";
  *out += FormatRfc3339(v.at);
  *out += "\",\"data\":";
  *out += v.data_json;
  *out += ",\"job_id\":";
  *out += Json(std::string(v.job_id)).dump(-1, ' ', false, Json::error_handler_t::replace);
  *out += ",\"seq\":";
  *out += std::to_string(v.seq);
  *out += ",\"type\":\"";
  *out += EventTypeName(v.type);
  *out += "\",\"version\":";
  *out += std::to_string(v.version);
  *out += "}\n";
}

}  // namespace

Status PrintStats(ToolLog& tl, std::ostream& out) {
  eventlog::EventLog& log = tl.log();
  std::array<std::uint64_t, kMaxEventType + 1> by_type{};
  AnalyticsProjection jobs;  // the same fold `replay` uses, for the jobs by status
  std::optional<TimeMs> oldest, newest;
  Progress progress(log.FirstSeq(), log.LastSeq());
  JOBSTORE_RETURN_IF_ERROR(log.ScanViews(log.FirstSeq(), UINT64_MAX, [&](const eventlog::RecordView& v) {
    progress.Update(v.seq);
    ++by_type[static_cast<int>(v.type)];
    oldest = std::min(oldest.value_or(v.at), v.at);
    newest = std::max(newest.value_or(v.at), v.at);
    jobs.Apply(v);
    return true;
  }));
  const auto by_status = jobs.LiveByStatus();
  Json stats;
  stats["data_dir"] = tl.data_dir();
  stats["seq"] = {{"first_retained", log.FirstSeq()}, {"last", log.LastSeq()}};
  // A copy of a replicated log (--nats): the stream seq it reached (0: the embedded log).
  stats["replicated_stream_seq"] = log.SourceSeq();
  stats["events"] = jobs.events();
  Json types = Json::object();
  for (std::uint8_t t = 1; t <= kMaxEventType; ++t) {
    types[std::string(EventTypeName(static_cast<EventType>(t)))] = by_type[t];
  }
  stats["events_by_type"] = types;
  Json statuses = Json::object();
  for (int i = 0; i < kJobStatusCount; ++i) {
    statuses[std::string(JobStatusName(static_cast<JobStatus>(i)))] = by_status[i];
  }
  stats["live_jobs_by_status"] = statuses;
  stats["expired_jobs_with_history"] = jobs.ExpiredJobs();
  Json bytes = Json::object();
  for (const auto& [name, n] : log.SizesOnDisk()) bytes[name] = n;
  stats["bytes_by_column_family"] = bytes;
  stats["bytes_on_disk"] = log.TotalSizeOnDisk();
  stats["oldest_event_at"] = oldest ? Json(FormatRfc3339(*oldest)) : Json();
  stats["newest_event_at"] = newest ? Json(FormatRfc3339(*newest)) : Json();
  std::vector<std::string> warnings;
  SnapshotContents snapshot = LoadNewestSnapshot(tl.data_dir(), log.LastSeq(), &warnings);
  stats["snapshot_seq"] = snapshot.seq ? Json(snapshot.seq) : Json();
  out << stats.dump(2) << "\n";
  return Status::Ok();
}

Status Dump(ToolLog& tl, const DumpOptions& o, std::ostream& out) {
  eventlog::EventLog& log = tl.log();
  const std::uint64_t from = std::max(o.from_seq.value_or(0), log.FirstSeq());
  const std::uint64_t to = o.to_seq.value_or(UINT64_MAX);
  auto emit = [&](const Event& e) {
    if (!Matches(o, e)) return;
    if (o.table) {
      TableLine(out, e);
    } else {
      out << EventToJson(e).dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
    }
  };
  if (o.job_id) {  // one job: read through its index instead of the whole log
    JOBSTORE_ASSIGN_OR_RETURN(auto events, log.ReadJob(*o.job_id));
    for (const Event& e : events) {
      if (e.seq >= from && e.seq <= to) emit(e);
    }
    return Status::Ok();
  }
  if (o.table) {
    Progress progress(from, std::min(to, log.LastSeq()));
    return log.Scan(from, to, [&](Event&& e) {
      progress.Update(e.seq);
      emit(e);
      return true;
    });
  }
  Progress progress(from, std::min(to, log.LastSeq()));
  std::string buffer;
  Status st = log.ScanViews(from, to, [&](const eventlog::RecordView& v) {
    progress.Update(v.seq);
    if (!Matches(o, v)) return true;
    AppendJsonLine(v, &buffer);
    if (buffer.size() > (1 << 16)) {
      out << buffer;
      buffer.clear();
    }
    return true;
  });
  out << buffer;
  return st;
}

// A schedule's timeline ("schedule/<id>"): its events and the schedule they leave.
Status PrintSchedule(const std::vector<Event>& events, const std::string& log_id,
                     std::ostream& out) {
  std::optional<Schedule> state;
  out << "timeline of " << log_id << ":\n";
  for (const Event& e : events) {
    TableLine(out, e);
    if (Status applied = ApplySchedule(state, e); !applied.ok()) {
      out << "  !! " << applied.message() << "\n";
      return Corruption(applied.message());
    }
  }
  out << "\nrebuilt state:\n"
      << (state ? ScheduleToJson(*state, std::nullopt).dump(2) : std::string("(deleted)")) << "\n";
  return Status::Ok();
}

Status PrintJob(ToolLog& tl, const std::string& job_id, std::ostream& out) {
  JOBSTORE_ASSIGN_OR_RETURN(auto events, tl.log().ReadJob(job_id));
  if (events.empty()) return NotFound("no events of job '" + job_id + "' in the log");
  if (ScheduleIdOf(job_id)) return PrintSchedule(events, job_id, out);
  std::optional<Job> state;
  bool expired = false;
  out << "timeline of job " << job_id << ":\n";
  for (const Event& e : events) {
    if (e.type == EventType::kCreated && state) {
      out << "  (the id was used again after the job above expired)\n";
      state.reset();
    }
    TableLine(out, e);
    Status applied = ApplyInPlace(state, e);
    if (!applied.ok()) {
      out << "  !! " << applied.message() << "\n";
      return Corruption(applied.message());
    }
    expired = e.type == EventType::kExpired;
  }
  out << "\nrebuilt state" << (expired ? " (expired: no longer live)" : "") << ":\n"
      << JobToJson(*state).dump(2) << "\n";
  return Status::Ok();
}

}  // namespace jobstore::tools
