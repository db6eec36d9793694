#include "metrics.h"

#include <cstdio>

namespace jobstore::http {

void RequestMetrics::Observe(const std::string& route, const std::string& method, int status,
                             std::chrono::duration<double> latency) {
  const double seconds = latency.count();
  MutexLock lock(&mu_);
  ++requests_[{route, method, status}];
  Histogram& h = latency_[route];
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++h.buckets[i];
  }
  ++h.count;
  h.sum += seconds;
}

void RequestMetrics::Render(std::string& out) const {
  MutexLock lock(&mu_);
  char line[512];
  out += "# HELP jobstore_http_requests_total HTTP requests by route, method and status.\n";
  out += "# TYPE jobstore_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    const auto& [route, method, status] = key;
    std::snprintf(line, sizeof line,
                  "jobstore_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} %llu\n",
                  route.c_str(), method.c_str(), status, static_cast<unsigned long long>(n));
    out += line;
  }
  out += "# HELP jobstore_http_request_duration_seconds Time from routing to response.\n";
  out += "# TYPE jobstore_http_request_duration_seconds histogram\n";
  for (const auto& [route, h] : latency_) {
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      std::snprintf(line, sizeof line,
                    "jobstore_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                    route.c_str(), kBuckets[i], static_cast<unsigned long long>(h.buckets[i]));
      out += line;
    }
    std::snprintf(line, sizeof line,
                  "jobstore_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
                  "jobstore_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                  "jobstore_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                  route.c_str(), static_cast<unsigned long long>(h.count), route.c_str(), h.sum,
                  route.c_str(), static_cast<unsigned long long>(h.count));
    out += line;
  }
}

}  // namespace jobstore::http
