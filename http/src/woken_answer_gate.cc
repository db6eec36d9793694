#include "woken_answer_gate.h"

namespace jobstore::http {
namespace {

struct Gate {
  Mutex mu;
  CondVar freed;
  bool taken ABSL_GUARDED_BY(mu) = false;
};

Gate& TheGate() {
  static Gate* gate = new Gate;  // never destroyed: connection threads may outlive statics
  return *gate;
}

}  // namespace

WokenAnswerTurn::WokenAnswerTurn() {
  Gate& gate = TheGate();
  MutexLock lock(&gate.mu);
  while (gate.taken) gate.freed.Wait(&gate.mu);
  gate.taken = true;
}

WokenAnswerTurn::~WokenAnswerTurn() {
  Gate& gate = TheGate();
  MutexLock lock(&gate.mu);
  gate.taken = false;
  gate.freed.Signal();
}

}  // namespace jobstore::http
