// The state machine, as two pure functions (no I/O, no clock, no locks).
//
//   pending -> running <-> pending_hitl -> completed | failed | cancelled
//
// Decide() checks a command against the job's current state and returns the events that
// record it (or the error a client gets). Apply() folds one event into the job. The writer calls
// Decide then Apply; replay calls only Apply, so live state and rebuilt state agree.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "jobstore/core/command.h"
#include "jobstore/core/event.h"
#include "jobstore/core/status.h"

namespace jobstore {

// `job` is the current state, or nullptr when no live job has the command's id. `now` stamps the
// events. Returned events carry job_id, version (job->version + 1, + 2, ...), type, at and data;
// seq is assigned by the writer. A command that changes nothing worth recording (a heartbeat
// without progress) returns an empty list. A rejected command returns an error and no event.
//
// Errors: kNotFound (no job), kAlreadyExists (create on a live id), kVersionMismatch (If-Match),
// kForbidden (caller is not the owner), kInvalidTransition (status), kStaleRequest (HITL answer
// for a request that is not open), kInvalidArgument (a timer's command that is not due).
// A command with a forward_id stamps it into each event's data ("forward_id"; Job::forward_id).
StatusOr<std::vector<Event>> Decide(const Job* job, const Command& command, TimeMs now);

// Folds `event` into `job` (nullptr before job.created). Errors (kCorruption) when the event does
// not apply to that state: a wrong version, an event for a terminal job, a missing field. Live
// writes never see such an error because Decide produced the event; `inspect verify` reports it.
StatusOr<Job> Apply(const Job* job, const Event& event);
// Apply for a job held by shared_ptr (the store's versions): the next version (the caller's
// alone) is one copy of `job` changed in place, a created job built in place, without the moves
// of Job that Apply's value and make_shared take.
StatusOr<std::shared_ptr<Job>> ApplyShared(const std::shared_ptr<const Job>& job,
                                            const Event& event);

// The status a job is in after an event of `type` (with `data`) is applied to it in status
// `before`: the one table of where each event leaves a job, used by Apply and by the analytics
// projection. job.lease_expired records its outcome (requeued or failed) in its data; a
// lease_expired without one is kCorruption. Which statuses an event may follow is Apply's check.
StatusOr<JobStatus> StatusAfter(JobStatus before, EventType type, const Json& data);

// Apply without a copy: folds `event` into `job` (empty before job.created). On error `job` may
// be partly changed and must be discarded. Replay and tools use it.
Status ApplyInPlace(std::optional<Job>& job, const Event& event);
// The same for a job that exists (a job.created event is an error).
Status ApplyInPlace(Job& job, const Event& event);

// Decide's check of a create: kAlreadyExists when `job` (the live job with the id) exists.
Status CheckCreate(const Job* job, const std::string& job_id);

// Apply's stamp of a new job: the seq and time of its job.created (created_* and the version
// fields). Apply calls it; the store's writer calls it on a create it had Decide and Apply build
// ahead (in the caller's thread, at seq 0 and time 0), which then equals Apply's job exactly.
void StampCreated(Job& job, std::uint64_t seq, TimeMs at);

// What a command that Decide accepted without an event does to the job: such a command changes
// only soft state, which is not logged. Today that is a heartbeat without progress: it renews the
// lease (the given term, else the one in force) without an event and without a new version.
// Returns the job to keep, or nullopt when the command changes nothing. Lease deadlines are
// therefore soft state: after a restart every running job's lease starts a fresh term (see the
// background-work docs).
std::optional<Job> ApplyUnrecorded(const Job& job, const Command& command, TimeMs now);

// Whether `caller` (X-User-Id; nullopt when the request named none) may change `job`: its owner,
// anyone for a shared job (kSharedUserId), and any request without a user.
bool CallerMayActOn(const Job& job, const std::optional<std::string>& caller);

// The time at which the job's lease, HITL timeout or TTL falls due, if any (for the timers).
std::optional<TimeMs> LeaseDeadline(const Job& job);
std::optional<TimeMs> HitlDeadline(const Job& job);
std::optional<TimeMs> ExpiryDeadline(const Job& job);
std::optional<TimeMs> RunAtDeadline(const Job& job);  // a scheduled job's run_at

// The wait before the retry that follows failed attempt `attempt` (1-based) of a job under
// `policy` (see RetryPolicy). Pure: the same inputs give the same delay.
std::int64_t RetryDelayMs(const RetryPolicy& policy, std::string_view job_id,
                          std::uint32_t attempt);

}  // namespace jobstore
