// At most one long-poll answer that a change woke is rendered at a time.
//
// One change can wake thousands of long-polls of the same job at once (a herd). Each woken
// connection thread renders its answer; were they all runnable together, the kernel would share
// the two cores between thousands of them and the few threads that serve writes, and a create
// beside the wake would wait ~100 ms for the CPU (bench/RESULTS.md, "herd"). In turns, the woken
// answers are rendered one after another while the writes go on beside them (the projection
// already lets its woken waiters out one at a time: JobProjection's wait queue).
//
// A turn covers rendering only: it ends when the route handler returns, before the server writes
// the answer, so a client that does not read never holds up the others.
#pragma once

#include "jobstore/core/mutex.h"

namespace jobstore::http {

// Holds the one turn for its scope (blocks until it is free).
class WokenAnswerTurn {
 public:
  WokenAnswerTurn();
  ~WokenAnswerTurn();
  WokenAnswerTurn(const WokenAnswerTurn&) = delete;
  WokenAnswerTurn& operator=(const WokenAnswerTurn&) = delete;
};

}  // namespace jobstore::http
