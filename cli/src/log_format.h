// --log-format: how the server's log lines look on stderr.
//   text (default): 2026-12-03T15:04:05.123Z info jobstore serving http://...
//   json: one object a line, for log shippers:
//         {"time":"2026-12-03T15:04:05.123Z","level":"info","message":"jobstore serving ...",
//          "port":8000,"seq":1234,...}
// The fields a LogFields scope (core/log_fields.h) holds join the line: as members in json, as
// key=value after the message in text.
// The default logger and the "access" logger (--access-log: one line per request, written by
// http/src/access_log.cc with its fields) both write to stderr, each line in one write.
#pragma once

#include <string>

#include "jobstore/core/status.h"

namespace jobstore::cli {

// Sets up both loggers; kInvalidArgument for a format other than text or json.
Status ConfigureLogFormat(const std::string& format);

}  // namespace jobstore::cli
