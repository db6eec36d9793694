// Fuzzes RFC 7396 merge patches as PATCH /jobs/{id} applies them to a job's data and labels.
// Input: the job's current data (JSON), a NUL byte, then the PATCH body (JSON).
//
// Invariants: the patch is applied through the same parse + Decide + Apply path as the server;
// the patched data equals nlohmann's merge_patch of the same documents; merge patches are
// idempotent (applying the patch again changes nothing); members the patch sets to null are gone;
// the labels that come out still pass validation.
#include <optional>
#include <string>

#include "fuzz_check.h"
#include "jobstore/core/decide.h"
#include "jobstore/core/validation.h"
#include "jobstore/http/request_parsing.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace jobstore;
  fuzz::FuzzInput in(data, size);
  http::ParseLimits limits;
  auto current = http::ParseJsonBody(in.Until('\0'), true, limits.fields);
  auto body = http::ParseJsonBody(in.Rest(), true, limits.fields);
  if (!current.ok() || !body.ok()) return 0;

  CreateJob create;
  create.job_id = "fuzz-job";
  auto created = Decide(nullptr, Command{"fuzz-job", {}, {}, create}, 1000);
  FUZZ_CHECK(created.ok());
  std::optional<Job> job;
  FUZZ_CHECK(ApplyInPlace(job, created->front()).ok());
  job->data = *current;

  auto update = http::ParseUpdate(*body, limits);
  if (!update.ok()) return 0;
  auto events = Decide(&*job, Command{"fuzz-job", {}, {}, *update}, 2000);
  if (!events.ok()) return 0;
  std::optional<Job> patched = job;
  for (const Event& e : *events) FUZZ_CHECK(ApplyInPlace(patched, e).ok());

  if (update->data_patch) {
    Json expected = *current;
    expected.merge_patch(*update->data_patch);
    FUZZ_CHECK(patched->data == expected);
    Json twice = expected;
    twice.merge_patch(*update->data_patch);
    FUZZ_CHECK(twice == expected);
    if (update->data_patch->is_object()) {
      for (const auto& [key, value] : update->data_patch->items()) {
        if (value.is_null()) FUZZ_CHECK(!patched->data.contains(key));
      }
    }
  } else {
    FUZZ_CHECK(patched->data == *current);
  }
  FUZZ_CHECK(ValidateLabels(patched->labels, limits.fields, /*allow_null=*/false).ok());
  return 0;
}
