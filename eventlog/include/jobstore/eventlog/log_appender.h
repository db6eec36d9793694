// Where the store's group commits become durable: the seam between the one write path and the
// log that is the truth.
//
// The store decides a batch, hands its events to Append, and applies them to its projection only
// when Append returned OK. Two implementations:
//   - LocalAppender (here): the embedded RocksDB log is the truth (the default).
//   - replication::JetStreamAppender (replication/): a replicated NATS JetStream stream is the
//     truth; Append publishes the batch there, fenced to this instance's writer epoch, and then
//     appends it to the local RocksDB copy.
// Every implementation passes the same conformance tests (tests/log_appender_conformance_test.cc).
//
// Contract of Append, for every implementation:
//   - `events` carry seqs local.LastSeq()+1, +2, ... without a gap; on OK they are durable (per the
//     implementation's promise) and in `local`, readable by seq and by job.
//   - kUnavailable means nothing was written anywhere: the client may be told 503 and retry.
//   - Any other error is final for this appender (a gap, a fence, a local copy that refuses the
//     write): the store stops acknowledging writes through it.
//   - Called by one thread at a time (the store's writer).
#pragma once

#include <vector>

#include "jobstore/core/status.h"
#include "jobstore/eventlog/event_log.h"
#include "jobstore/eventlog/record.h"

namespace jobstore::eventlog {

class LogAppender {
 public:
  virtual ~LogAppender() = default;
  virtual Status Append(EventLog& local, const std::vector<SerializedEvent>& events) = 0;
};

// The embedded log: the local RocksDB write is the durable write.
class LocalAppender final : public LogAppender {
 public:
  Status Append(EventLog& local, const std::vector<SerializedEvent>& events) override {
    return local.Append(events);
  }
};

}  // namespace jobstore::eventlog
