#include "jobstore/replication/wait_while_unavailable.h"

#include <thread>

#include <spdlog/spdlog.h>

namespace jobstore::replication {

Status WaitWhileUnavailable(std::string_view what, std::chrono::steady_clock::time_point deadline,
                            const std::function<Status()>& attempt) {
  for (;;) {
    Status status = attempt();
    if (status.code() != StatusCode::kUnavailable || std::chrono::steady_clock::now() > deadline) {
      return status;
    }
    spdlog::info("replication: waiting for {}: {}", what, status.message());
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
}

}  // namespace jobstore::replication
