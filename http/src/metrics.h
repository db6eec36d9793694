// Request metrics for /metrics (Prometheus text format): requests by route, method and status,
// and a latency histogram by route. The store's own figures are read at scrape time.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>

#include "jobstore/core/mutex.h"

namespace jobstore::http {

class RequestMetrics {
 public:
  // Latency bucket bounds in seconds (cumulative, as Prometheus wants).
  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1,    5};

  void Observe(const std::string& route, const std::string& method, int status,
               std::chrono::duration<double> latency);
  // Appends the request families to `out`.
  void Render(std::string& out) const;

 private:
  // Observe() takes mu_ shared and counts with atomics: thousands of connection threads answering
  // at once (a woken herd) never queue behind one another or behind a preempted holder, as they
  // did on one exclusive mutex. A key seen for the first time is added under mu_ exclusive.
  struct Count {
    mutable std::atomic<std::uint64_t> n{0};
  };
  // Each observation counts in its one bucket (the last: beyond every bound); Render() adds them
  // up, so a request costs one atomic add there, not one per bound above its latency.
  struct Histogram {
    mutable std::array<std::atomic<std::uint64_t>, kBuckets.size() + 1> buckets{};
    mutable std::atomic<std::uint64_t> count{0};
    mutable std::atomic<std::uint64_t> sum_ns{0};
  };
  using RequestKey = std::tuple<std::string, std::string, int>;
  const Count& CountOf(const std::string& route, const std::string& method, int status);
  const Histogram& HistogramOf(const std::string& route);

  mutable SharedMutex mu_;
  // Transparent comparators: a request's key is looked up without copying its strings.
  std::map<RequestKey, Count, std::less<>> requests_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Histogram, std::less<>> latency_ ABSL_GUARDED_BY(mu_);
};

}  // namespace jobstore::http
