#include "jobstore/store/internal/prepared_create.h"

#include "jobstore/core/decide.h"
#include "jobstore/eventlog/record.h"

namespace jobstore::internal {

std::optional<PreparedCreate> PrepareCreate(const Command& command) {
  if (!std::holds_alternative<CreateJob>(command.body)) return std::nullopt;
  // Decide and Apply themselves, for an id no job has: what the writer would run, unstamped.
  auto events = Decide(/*job=*/nullptr, command, /*now=*/0);
  if (!events.ok() || events->size() != 1) return std::nullopt;  // the writer decides it then
  auto job = ApplyShared(nullptr, events->front());
  if (!job.ok()) return std::nullopt;
  return PreparedCreate{std::move(job).value(),
                        eventlog::Serialize(std::move(events->front())).data_json};
}

}  // namespace jobstore::internal
