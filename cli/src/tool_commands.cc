#include "tool_commands.h"

#include <iostream>
#include <memory>

#include "flags.h"
#include "jobstore/core/time_format.h"
#include "jobstore/tools/tools.h"

namespace jobstore::cli {
namespace {

// Prints an error as one line and gives the runtime-failure exit code.
int Fail(const Status& st) {
  std::cerr << "jobstore: " << st.message() << "\n";
  return kExitFailure;
}
int UsageError(const std::string& message) {
  std::cerr << "jobstore: " << message << "\n";
  return kExitUsage;
}

// "--until 1042" (a seq) or "--until 2026-11-28T12:00:00Z" (a time).
bool ParseSeqOrTime(const std::string& text, std::optional<std::uint64_t>* seq,
                    std::optional<TimeMs>* time) {
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos && text.size() < 20) {
    *seq = std::stoull(text);
    return true;
  }
  auto t = ParseRfc3339(text);
  if (!t.ok()) return false;
  *time = *t;
  return true;
}

template <typename Fn>
int WithLog(const std::string& data_dir, Fn fn) {
  auto tl = tools::ToolLog::Open(data_dir);
  if (!tl.ok()) return Fail(tl.status());
  return fn(**tl);
}

struct DumpFlags {
  std::optional<std::uint64_t> from_seq, to_seq;
  std::string job, type, since, until, format = "jsonl";
};

int RunDump(const std::string& data_dir, const DumpFlags& f) {
  tools::DumpOptions o;
  o.from_seq = f.from_seq;
  o.to_seq = f.to_seq;
  if (!f.job.empty()) o.job_id = f.job;
  if (!f.type.empty()) {
    o.type = ParseEventType(f.type);
    if (!o.type) return UsageError("--type: unknown event type '" + f.type + "'");
  }
  for (auto [text, out, name] : {std::tuple{&f.since, &o.since, "--since"},
                                 std::tuple{&f.until, &o.until, "--until"}}) {
    if (text->empty()) continue;
    auto t = ParseRfc3339(*text);
    if (!t.ok()) return UsageError(std::string(name) + ": " + t.status().message());
    *out = *t;
  }
  o.table = f.format == "table";
  return WithLog(data_dir, [&](tools::ToolLog& tl) {
    Status st = tools::Dump(tl, o, std::cout);
    return st.ok() ? kExitOk : Fail(st);
  });
}

int RunVerify(const std::string& data_dir) {
  return WithLog(data_dir, [&](tools::ToolLog& tl) {
    auto problems = tools::Verify(tl, std::cout);
    if (!problems.ok()) return Fail(problems.status());
    for (const tools::Problem& p : *problems) {
      std::cout << "problem at seq " << p.seq << (p.job_id.empty() ? "" : " job '" + p.job_id + "'")
                << ": " << p.what << "\n";
    }
    return problems->empty() ? kExitOk : kExitFailure;
  });
}

}  // namespace

void AddInspectCommand(CLI::App& app, std::function<int()>& run) {
  auto data_dir = std::make_shared<std::string>();
  CLI::App* inspect = app.add_subcommand("inspect", "Look inside a data directory (read-only, also while serve runs)");
  inspect->require_subcommand(1);
  AddFlag(*inspect, "--data-dir", *data_dir, "The data directory to read")->required();

  inspect->add_subcommand("stats", "Seq range, events by type, jobs by status, bytes per column family")
      ->callback([data_dir, &run] {
        run = [data_dir] {
          return WithLog(*data_dir, [](tools::ToolLog& tl) {
            Status st = tools::PrintStats(tl, std::cout);
            return st.ok() ? kExitOk : Fail(st);
          });
        };
      });

  auto dump = std::make_shared<DumpFlags>();
  CLI::App* d = inspect->add_subcommand("dump", "Print events (JSON lines as GET /api/v1/events, or a table)");
  d->add_option("--from-seq", dump->from_seq, "First seq to print");
  d->add_option("--to-seq", dump->to_seq, "Last seq to print");
  d->add_option("--job", dump->job, "Only this job's events");
  d->add_option("--type", dump->type, "Only events of this type (job.created, ...)");
  d->add_option("--since", dump->since, "Only events at or after this RFC 3339 time");
  d->add_option("--until", dump->until, "Only events at or before this RFC 3339 time");
  d->add_option("--format", dump->format, "jsonl or table")
      ->check(CLI::IsMember({"jsonl", "table"}))->capture_default_str();
  d->callback([data_dir, dump, &run] { run = [data_dir, dump] { return RunDump(*data_dir, *dump); }; });

  auto job_id = std::make_shared<std::string>();
  CLI::App* job = inspect->add_subcommand("job", "A job's timeline and its rebuilt state");
  job->add_option("ID", *job_id, "The job id")->required();
  job->callback([data_dir, job_id, &run] {
    run = [data_dir, job_id] {
      return WithLog(*data_dir, [&](tools::ToolLog& tl) {
        Status st = tools::PrintJob(tl, *job_id, std::cout);
        return st.ok() ? kExitOk : Fail(st);
      });
    };
  });

  inspect->add_subcommand("verify", "Check the whole log; exit 1 naming each problem's seq")
      ->callback([data_dir, &run] { run = [data_dir] { return RunVerify(*data_dir); }; });
}

void AddReplayCommand(CLI::App& app, std::function<int()>& run) {
  struct Flags {
    std::string data_dir, until, report = "summary", format = "table", stalled_after = "1h";
  };
  auto f = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("replay", "Rebuild history (up to a seq or a time) and report on it");
  AddFlag(*cmd, "--data-dir", f->data_dir, "The data directory to read")->required();
  cmd->add_option("--until", f->until, "Replay up to this seq or RFC 3339 time (time travel)");
  cmd->add_option("--report", f->report,
                  "summary, durations, hitl, retries, throughput, stalled or all")
      ->check(CLI::IsMember({"summary", "durations", "hitl", "retries", "throughput", "stalled",
                             "all"}))
      ->capture_default_str();
  cmd->add_option("--format", f->format, "table, json or csv")
      ->check(CLI::IsMember({"table", "json", "csv"}))->capture_default_str();
  cmd->add_option("--stalled-after", f->stalled_after,
                  "A live job with no event for longer than this is stalled")->capture_default_str();
  cmd->callback([f, &run] {
    run = [f] {
      tools::ReplayOptions o;
      if (!f->until.empty() && !ParseSeqOrTime(f->until, &o.until_seq, &o.until_time)) {
        return UsageError("--until wants a seq or an RFC 3339 time, not '" + f->until + "'");
      }
      auto stalled_ms = ParseDurationMs(f->stalled_after);
      if (!stalled_ms.ok()) return UsageError("--stalled-after: " + stalled_ms.status().message());
      return WithLog(f->data_dir, [&](tools::ToolLog& tl) {
        auto a = tools::Replay(tl, o);
        if (!a.ok()) return Fail(a.status());
        // "Now" for stalled jobs: the --until time when given, else the wall clock.
        const TimeMs now = o.until_time.value_or(SystemClock::Default()->NowMs());
        std::vector<ReportTable> tables;
        auto add = [&](const std::vector<ReportTable>& more) {
          tables.insert(tables.end(), more.begin(), more.end());
        };
        const std::string& r = f->report;
        if (r == "summary" || r == "all") add(a->Summary());
        if (r == "durations" || r == "all") add(a->Durations());
        if (r == "hitl" || r == "all") add(a->Hitl());
        if (r == "retries" || r == "all") add(a->Retries());
        if (r == "throughput" || r == "all") add(a->Throughput());
        if (r == "stalled" || r == "all") add(a->Stalled(now, *stalled_ms));
        std::cout << tools::RenderReports(tables, f->format);
        return kExitOk;
      });
    };
  });
}

void AddBackupCommand(CLI::App& app, std::function<int()>& run) {
  auto from = std::make_shared<std::string>();
  auto to = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("backup", "Copy a (live) data directory consistently");
  AddFlag(*cmd, "--data-dir", *from, "The data directory to copy")->required();
  cmd->add_option("--to", *to, "Where the copy goes (must not exist)")->required();
  cmd->callback([from, to, &run] {
    run = [from, to] {
      auto info = tools::Backup(*from, *to);
      if (!info.ok()) return Fail(info.status());
      std::cout << "backup of '" << *from << "' written to '" << *to << "': events up to seq "
                << info->last_seq;
      if (info->snapshot_seq) std::cout << ", snapshot at seq " << info->snapshot_seq;
      // With --nats: where an instance started on this copy follows the stream from.
      if (info->stream_seq) std::cout << ", stream seq " << info->stream_seq;
      std::cout << "\n";
      return kExitOk;
    };
  });
}

}  // namespace jobstore::cli
