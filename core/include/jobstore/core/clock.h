// Time in jobstore: milliseconds since the Unix epoch, UTC, as a plain integer.
//
// Everything time-dependent (TTLs, leases, HITL timeouts, event timestamps) takes a Clock so that
// tests advance a ManualClock instead of sleeping. Replay never reads a clock: every time it
// needs is inside the events.
#pragma once

#include <atomic>
#include <cstdint>

namespace jobstore {

using TimeMs = std::int64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock now. Thread-safe.
  virtual TimeMs NowMs() const = 0;
};

// The real wall clock (std::chrono::system_clock).
class SystemClock final : public Clock {
 public:
  TimeMs NowMs() const override;
  // A process-wide instance; never destroyed.
  static SystemClock* Default();
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimeMs start) : now_(start) {}
  TimeMs NowMs() const override { return now_.load(std::memory_order_acquire); }
  void Set(TimeMs t) { now_.store(t, std::memory_order_release); }
  void Advance(TimeMs delta) { now_.fetch_add(delta, std::memory_order_acq_rel); }

 private:
  std::atomic<TimeMs> now_;
};

}  // namespace jobstore
