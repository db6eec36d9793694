// --access-log: one line per answered request on the "access" logger (cli/src/log_format.h sets
// it up; without it, the default logger). Written: method, path (without its query string,
// which may carry secrets), status, duration, bytes of the answer's body, the client's address
// and the matched route. Never the Authorization header, cookies or any body.
//   text: access GET /api/v1/jobs/abc 200 0.412 ms 345 B from 127.0.0.1:51234 (get_job)
//   json: {"time":...,"level":"info","message":"request","method":"GET","path":"/api/v1/jobs/abc",
//          "status":200,"duration_ms":0.412,"bytes":345,"remote":"127.0.0.1:51234","route":"get_job"}
#pragma once

#include <chrono>
#include <string_view>

#include <httplib.h>

namespace jobstore::http {

void LogAccess(const httplib::Request& req, const httplib::Response& res, std::string_view route,
               std::chrono::steady_clock::duration took, bool json);

}  // namespace jobstore::http
