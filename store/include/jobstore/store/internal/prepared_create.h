// Internal (not the library's API): for its own sources, tests, benchmarks and fuzz targets.
// A create decided and applied ahead of the writer, in the caller's thread.
//
// What Decide and Apply make of a create does not depend on the store's state, only whether it
// is allowed does (no live job may have the id). So the caller's thread runs both, at seq 0 and
// time 0, and serializes the event's data; the writer checks the id (CheckCreate), stamps the
// job (StampCreated) and writes the serialized data. The writer, which every write waits for,
// then builds, copies, serializes and destroys no JSON for a create; the job and record it
// produces are byte for byte those of Decide + Apply at the stamp (tests/prepared_create_test.cc).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "jobstore/core/command.h"
#include "jobstore/core/job.h"

namespace jobstore::internal {

struct PreparedCreate {
  std::shared_ptr<Job> job;  // the new job, unstamped: seq 0, time 0
  std::string data_json;     // the job.created event's data, serialized as the log stores it
};

// The prepared form of `command` when it is a create; nullopt for any other command.
std::optional<PreparedCreate> PrepareCreate(const Command& command);

}  // namespace jobstore::internal
