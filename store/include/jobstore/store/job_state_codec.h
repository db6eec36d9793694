// The complete state of a job as compact bytes: what a projection snapshot stores per job.
//
//   state   := status:u8 | flags:u8 | job_id | type | user_id | description
//              | input | data | labels | progress | result
//              | hitl_rounds | attempt | max_attempts | version | lease_seconds | ttl_seconds
//              | created_at | updated_at | created_seq | last_seq
//              | [worker] | [lease_expires_at] | [started_at] | [finished_at] | [idempotency_key]
//              | [idempotency_fingerprint] | [hitl] | [error]
//                                                (each [part] present when its flag bit is set)
//              | [ext_flags:u8 | [priority] | [run_at] | [retry] | [errors] | [forward_id]]
//                (present only when one of its parts is: a state of the first format ends
//                 before it, and decodes unchanged)
//   retry   := backoff:u8 | initial_ms | max_ms | jitter (millionths)
//   errors  := count | (attempt | code | message | at)*
//   hitl    := flags:u8 | request_id | type | prompt | response | requested_at
//              | [expires_at] | [responded_at] | [responded_by] | [key]
//   error   := code | message
//   string  := len:varint | bytes          integer := varint (signed ones zigzag-coded)
//   JSON    := len:varint | CBOR (RFC 8949, nlohmann's encoding)
//
// Decoding does no more than the bytes say, so a million jobs load in a fraction of the time
// a JSON state tree took (bench/RESULTS.md, start with a snapshot). The snapshot file's CRC
// guards the bytes; DecodeJobState still checks every length, so damaged bytes are an error,
// never a crash. DecodeJobState(EncodeJobState(j)) == j.
#pragma once

#include <string>
#include <string_view>

#include "jobstore/core/job.h"
#include "jobstore/core/status.h"

namespace jobstore {

// Appends the state of `job` to `out`.
void EncodeJobState(const Job& job, std::string* out);
// kInvalidArgument when the bytes are short, too long, or not a job's state.
StatusOr<Job> DecodeJobState(std::string_view bytes);

}  // namespace jobstore
