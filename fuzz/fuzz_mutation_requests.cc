// Fuzzes what a client controls on every mutation: the JSON body of each route (create, update,
// start, heartbeat, hitl, answer, complete, fail, cancel, claim) and the headers and query
// parameters. Input: one selector byte, then the body (or the header/query text).
//
// Beyond "no crash, no sanitizer report", a parsed command must keep the state machine's
// promises against jobs in every live status: every event Decide() returns applies cleanly, an
// event survives its record encoding unchanged, and the job survives its snapshot encoding. A
// create prepared ahead of the store's writer and stamped by it is the job and record that
// Decide + Apply make.
#include <array>
#include <optional>
#include <string>

#include "fuzz_check.h"
#include "jobstore/core/decide.h"
#include "jobstore/store/job_state_codec.h"
#include "jobstore/core/json_codec.h"
#include "jobstore/eventlog/record.h"
#include "jobstore/http/request_parsing.h"
#include "jobstore/store/internal/prepared_create.h"

namespace jobstore::fuzz {
namespace {

constexpr TimeMs kNow = 1'800'000'000'000;

Job Must(const Job* job, CommandBody body) {
  Command c{"fuzz-job", std::nullopt, std::nullopt, std::move(body)};
  auto events = Decide(job, c, kNow);
  FUZZ_CHECK(events.ok());
  std::optional<Job> out = job ? std::optional<Job>(*job) : std::nullopt;
  for (const Event& e : *events) FUZZ_CHECK(ApplyInPlace(out, e).ok());
  return *out;
}

// A job in each live status: pending, running (with a lease), pending_hitl.
const std::array<Job, 3>& Fixtures() {
  static const std::array<Job, 3> jobs = [] {
    CreateJob create;
    create.job_id = "fuzz-job";
    create.labels = {{"team", "fuzz"}};
    Job pending = Must(nullptr, create);
    Job running = Must(&pending, StartJob{"w1", 30});
    RequestHitl hitl;
    hitl.prompt = {{"question", "ok?"}};
    Job waiting = Must(&running, hitl);
    return std::array<Job, 3>{pending, running, waiting};
  }();
  return jobs;
}

// The state machine's promises for one accepted command against one job.
void CheckDecideApply(const Job* job, const CommandBody& body, std::optional<std::string> caller) {
  Command c{"fuzz-job", std::nullopt, std::move(caller), body};
  auto events = Decide(job, c, kNow);
  if (!events.ok()) return;
  std::optional<Job> state = job ? std::optional<Job>(*job) : std::nullopt;
  std::uint64_t seq = 100;
  for (Event e : *events) {
    e.seq = ++seq;
    FUZZ_CHECK(e.version == (state ? state->version : 0) + 1);
    FUZZ_CHECK(ApplyInPlace(state, e).ok());
    auto decoded = eventlog::DecodeRecord(e.seq, eventlog::EncodeRecord(e));
    FUZZ_CHECK(decoded.ok());
    FUZZ_CHECK(*decoded == e);
    (void)EventToJson(e).dump();
  }
  if (!state) return;
  std::string state_bytes;
  EncodeJobState(*state, &state_bytes);
  auto restored = DecodeJobState(state_bytes);
  FUZZ_CHECK(restored.ok());
  FUZZ_CHECK(*restored == *state);
  // The API text written straight from the job (job_json_text.cc) is JobToJson's dump.
  FUZZ_CHECK(JobJsonText(*state) ==
             JobToJson(*state).dump(-1, ' ', false, Json::error_handler_t::replace));
}

// The store's prepared create (prepared_create.h) against Decide + Apply at the stamp.
void CheckPreparedCreate(const CreateJob& create) {
  Command c{"fuzz-job", std::nullopt, std::nullopt, create};
  auto events = Decide(nullptr, c, kNow);
  FUZZ_CHECK(events.ok() && events->size() == 1);
  Event e = events->front();
  e.seq = 101;
  auto expected = Apply(nullptr, e);
  FUZZ_CHECK(expected.ok());
  auto prepared = internal::PrepareCreate(c);
  FUZZ_CHECK(prepared.has_value());
  StampCreated(*prepared->job, e.seq, kNow);
  FUZZ_CHECK(*prepared->job == *expected);
  const eventlog::SerializedEvent written{e.seq, e.job_id, 1, EventType::kCreated, kNow,
                                          prepared->data_json};
  FUZZ_CHECK(eventlog::EncodeRecord(written) == eventlog::EncodeRecord(e));
}

template <typename T>
void CheckAgainstFixtures(const StatusOr<T>& parsed) {
  if (!parsed.ok()) {
    FUZZ_CHECK(!parsed.status().message().empty());
    return;
  }
  for (const Job& job : Fixtures()) CheckDecideApply(&job, *parsed, std::nullopt);
  CheckDecideApply(&Fixtures()[0], *parsed, std::string("someone-else"));
}

http::QueryParams SplitQuery(std::string_view text) {
  http::QueryParams q;
  while (!text.empty()) {
    auto amp = text.find('&');
    std::string_view pair = text.substr(0, amp);
    auto eq = pair.find('=');
    q.emplace(std::string(pair.substr(0, eq)),
              eq == std::string_view::npos ? "" : std::string(pair.substr(eq + 1)));
    text.remove_prefix(amp == std::string_view::npos ? text.size() : amp + 1);
  }
  return q;
}

void FuzzHeadersAndQuery(std::uint8_t which, std::string_view text, const http::ParseLimits& limits) {
  switch (which % 5) {
    case 0: {
      auto v = http::ParseIfMatch(text);
      if (v.ok() && v->has_value()) {
        FUZZ_CHECK(http::ParseIfMatch(std::to_string(**v)).ok());
      }
      break;
    }
    case 1:
      (void)http::ValidateHeaderToken("X-User-Id", text);
      break;
    case 2: {
      auto q = http::ParseListQuery(SplitQuery(text), limits);
      if (q.ok()) FUZZ_CHECK(q->limit >= 1 && q->limit <= limits.max_list_limit);
      break;
    }
    case 3: {
      auto params = SplitQuery(text);
      auto wait = http::ParseWait(params, limits);
      if (wait.ok() && wait->has_value()) {
        FUZZ_CHECK(**wait >= 0 && **wait <= limits.max_wait_seconds);
      }
      (void)http::ParseUintParam(params, "after");
      break;
    }
    case 4: {
      auto before = http::DecodeCursor(text);
      if (before.ok()) {
        auto again = http::DecodeCursor(http::EncodeCursor(*before));
        FUZZ_CHECK(again.ok() && *again == *before);
      }
      break;
    }
  }
}

}  // namespace
}  // namespace jobstore::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace jobstore;
  using namespace jobstore::fuzz;
  FuzzInput in(data, size);
  std::uint8_t route = in.Byte();
  http::ParseLimits limits;
  if (route >= 10) {
    FuzzHeadersAndQuery(route - 10, in.Rest(), limits);
    return 0;
  }
  auto body = http::ParseJsonBody(in.Rest(), /*empty_ok=*/true, limits.fields);
  if (!body.ok()) return 0;
  FUZZ_CHECK(JsonDepth(*body) <= limits.fields.max_json_depth);
  switch (route) {
    case 0: {
      auto create = http::ParseCreate(*body, "generated-id", limits, 1'795'867'200'000);
      if (create.ok()) {
        FUZZ_CHECK(ValidateJobId(create->job_id).ok());
        CheckDecideApply(nullptr, *create, std::nullopt);
        CheckPreparedCreate(*create);
      }
      break;
    }
    case 1: CheckAgainstFixtures(http::ParseUpdate(*body, limits)); break;
    case 2: CheckAgainstFixtures(http::ParseStart(*body, limits)); break;
    case 3: CheckAgainstFixtures(http::ParseHeartbeat(*body, limits)); break;
    case 4: CheckAgainstFixtures(http::ParseRequestHitl(*body, limits)); break;
    case 5: CheckAgainstFixtures(http::ParseAnswerHitl(*body, limits)); break;
    case 6: CheckAgainstFixtures(http::ParseComplete(*body, limits)); break;
    case 7: CheckAgainstFixtures(http::ParseFail(*body, limits)); break;
    case 8: CheckAgainstFixtures(http::ParseCancel(*body, limits)); break;
    case 9: {
      auto claim = http::ParseClaim(*body, limits);
      if (claim.ok()) FUZZ_CHECK(!claim->worker.empty() && claim->lease_seconds >= 1);
      break;
    }
  }
  return 0;
}
