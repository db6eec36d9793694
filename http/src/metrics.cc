#include "metrics.h"

#include <algorithm>
#include <cstdio>

namespace jobstore::http {

void RequestMetrics::Observe(const std::string& route, const std::string& method, int status,
                             std::chrono::duration<double> latency) {
  const double seconds = latency.count();
  CountOf(route, method, status).n.fetch_add(1, std::memory_order_relaxed);
  const Histogram& h = HistogramOf(route);
  const std::size_t bucket = static_cast<std::size_t>(
      std::lower_bound(kBuckets.begin(), kBuckets.end(), seconds) - kBuckets.begin());
  h.buckets[bucket].fetch_add(1, std::memory_order_relaxed);  // the first bound >= seconds
  h.count.fetch_add(1, std::memory_order_relaxed);
  h.sum_ns.fetch_add(static_cast<std::uint64_t>(std::max(seconds, 0.0) * 1e9),
                     std::memory_order_relaxed);
}

const RequestMetrics::Count& RequestMetrics::CountOf(const std::string& route,
                                                     const std::string& method, int status) {
  {
    ReaderLock lock(&mu_);
    if (auto it = requests_.find(std::tie(route, method, status)); it != requests_.end()) {
      return it->second;
    }
  }
  WriterLock lock(&mu_);
  return requests_.try_emplace(RequestKey(route, method, status)).first->second;  // nodes stay put
}

const RequestMetrics::Histogram& RequestMetrics::HistogramOf(const std::string& route) {
  {
    ReaderLock lock(&mu_);
    if (auto it = latency_.find(route); it != latency_.end()) return it->second;
  }
  WriterLock lock(&mu_);
  return latency_.try_emplace(route).first->second;
}

void RequestMetrics::Render(std::string& out) const {
  ReaderLock lock(&mu_);
  char line[512];
  out += "# HELP jobstore_http_requests_total HTTP requests by route, method and status.\n";
  out += "# TYPE jobstore_http_requests_total counter\n";
  for (const auto& [key, requests] : requests_) {
    const auto& [route, method, status] = key;
    const auto n = static_cast<unsigned long long>(requests.n.load(std::memory_order_relaxed));
    std::snprintf(line, sizeof line,
                  "jobstore_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} %llu\n",
                  route.c_str(), method.c_str(), status, n);
    out += line;
  }
  out += "# HELP jobstore_http_request_duration_seconds Time from routing to response.\n";
  out += "# TYPE jobstore_http_request_duration_seconds histogram\n";
  for (const auto& [route, h] : latency_) {
    // Prometheus wants the buckets cumulative: each the sum of those up to it. Read while
    // requests are counted, a bucket may already hold an observation the count does not, so the
    // count is at least the sum of every bucket.
    unsigned long long cumulative = 0;
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += h.buckets[i].load(std::memory_order_relaxed);
      std::snprintf(line, sizeof line,
                    "jobstore_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                    route.c_str(), kBuckets[i], cumulative);
      out += line;
    }
    cumulative += h.buckets[kBuckets.size()].load(std::memory_order_relaxed);  // beyond them all
    const auto count =
        std::max<unsigned long long>(cumulative, h.count.load(std::memory_order_relaxed));
    const double sum = static_cast<double>(h.sum_ns.load(std::memory_order_relaxed)) / 1e9;
    std::snprintf(line, sizeof line,
                  "jobstore_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
                  "jobstore_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                  "jobstore_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                  route.c_str(), count, route.c_str(), sum, route.c_str(), count);
    out += line;
  }
}

}  // namespace jobstore::http
