// Request metrics for /metrics (Prometheus text format): requests by route, method and status,
// and a latency histogram by route. The store's own figures are read at scrape time.
#pragma once

#include <array>
#include <chrono>
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
  struct Histogram {
    std::array<std::uint64_t, kBuckets.size()> buckets{};
    std::uint64_t count = 0;
    double sum = 0;
  };
  mutable Mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, std::uint64_t> requests_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, Histogram> latency_ ABSL_GUARDED_BY(mu_);
};

}  // namespace jobstore::http
