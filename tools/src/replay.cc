// replay: the analytics projection over the log up to a seq or a time, and report rendering.
#include <sstream>

#include "jobstore/tools/tools.h"

namespace jobstore::tools {
namespace {

std::string Cell(const Json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::string CsvCell(const Json& v) {
  std::string s = v.is_null() ? "" : Cell(v);
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string quoted = "\"";
  for (char c : s) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

}  // namespace

StatusOr<AnalyticsProjection> Replay(ToolLog& tl, const ReplayOptions& o) {
  eventlog::EventLog& log = tl.log();
  AnalyticsProjection analytics;
  const std::uint64_t to = o.until_seq.value_or(UINT64_MAX);
  Progress progress(log.FirstSeq(), std::min(to, log.LastSeq()));
  JOBSTORE_RETURN_IF_ERROR(log.ScanViews(log.FirstSeq(), to, [&](const eventlog::RecordView& v) {
    progress.Update(v.seq);
    // Filtered, not a stop: a clock stepped back on the server leaves `at` not quite monotonic.
    if (o.until_time && v.at > *o.until_time) return true;
    analytics.Apply(v);
    return true;
  }));
  return analytics;
}

std::string RenderReports(const std::vector<ReportTable>& tables, const std::string& format) {
  std::ostringstream out;
  if (format == "json") {
    Json doc = Json::object();
    for (const ReportTable& t : tables) {
      Json rows = Json::array();
      for (const auto& row : t.rows) {
        Json obj = Json::object();
        for (std::size_t i = 0; i < t.columns.size() && i < row.size(); ++i) obj[t.columns[i]] = row[i];
        rows.push_back(std::move(obj));
      }
      doc[t.name] = std::move(rows);
    }
    out << doc.dump(2) << "\n";
    return out.str();
  }
  for (std::size_t n = 0; n < tables.size(); ++n) {
    const ReportTable& t = tables[n];
    if (format == "csv") {
      if (n) out << "\n";
      out << "# " << t.name << "\n";
      for (std::size_t i = 0; i < t.columns.size(); ++i) out << (i ? "," : "") << t.columns[i];
      out << "\n";
      for (const auto& row : t.rows) {
        for (std::size_t i = 0; i < row.size(); ++i) out << (i ? "," : "") << CsvCell(row[i]);
        out << "\n";
      }
      continue;
    }
    std::vector<std::size_t> width(t.columns.size());
    for (std::size_t i = 0; i < t.columns.size(); ++i) width[i] = t.columns[i].size();
    for (const auto& row : t.rows) {
      for (std::size_t i = 0; i < row.size() && i < width.size(); ++i) {
        width[i] = std::max(width[i], Cell(row[i]).size());
      }
    }
    if (n) out << "\n";
    out << t.name << "\n";
    auto line = [&](const std::vector<std::string>& cells) {
      for (std::size_t i = 0; i < cells.size(); ++i) {
        std::string c = cells[i];
        out << (i ? "  " : "") << c << std::string(width[i] - c.size(), ' ');
      }
      out << "\n";
    };
    line(t.columns);
    std::vector<std::string> rule;
    for (std::size_t w : width) rule.push_back(std::string(w, '-'));
    line(rule);
    for (const auto& row : t.rows) {
      std::vector<std::string> cells;
      for (const Json& v : row) cells.push_back(Cell(v));
      line(cells);
    }
    if (t.rows.empty()) out << "(none)\n";
  }
  return out.str();
}

}  // namespace jobstore::tools
