// A closed-loop HTTP load driver: C keep-alive connections, each sending its next request as soon
// as the last one is answered, for S seconds. Prints one JSON line of figures.
//   http_load --port P --mode create|get|lifecycle [--connections 32] [--seconds 5]
// Modes: create = POST /api/v1/jobs; get = GET one existing job; lifecycle = create, start,
// hitl, answer, complete per job (reported as jobs/s; latency is per request).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace {

struct Args {
  int port = 8000;
  std::string mode = "create";
  int connections = 32;
  double seconds = 5;
};

bool Parse(int argc, char** argv, Args* a) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--port") a->port = std::stoi(v);
    else if (k == "--mode") a->mode = v;
    else if (k == "--connections") a->connections = std::stoi(v);
    else if (k == "--seconds") a->seconds = std::stod(v);
    else return false;
  }
  return a->mode == "create" || a->mode == "get" || a->mode == "lifecycle";
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * v.size()));
  std::nth_element(v.begin(), v.begin() + i, v.end());
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!Parse(argc, argv, &args)) {
    std::fprintf(stderr, "usage: http_load --port P --mode create|get|lifecycle "
                         "[--connections N] [--seconds S]\n");
    return 2;
  }
  std::string get_id = "x";
  if (args.mode == "get") {
    httplib::Client c("127.0.0.1", args.port);
    auto r = c.Post("/api/v1/jobs", "{}", "application/json");
    if (!r) return 1;
    auto body = nlohmann::json::parse(r->body, nullptr, false);
    if (body.is_object() && body.contains("job_id")) get_id = body["job_id"];
  }
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> errors{0}, units{0};
  std::vector<std::vector<double>> latencies(args.connections);
  std::vector<std::thread> threads;
  for (int t = 0; t < args.connections; ++t) {
    threads.emplace_back([&, t] {
      httplib::Client c("127.0.0.1", args.port);
      c.set_keep_alive(true);
      c.set_tcp_nodelay(true);
      auto& lat = latencies[t];
      auto timed = [&](auto&& call) {
        auto t0 = std::chrono::steady_clock::now();
        auto r = call();
        lat.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        if (!r || r->status >= 300) {
          errors++;
          return std::string();
        }
        return r->body;
      };
      int n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        if (args.mode == "create") {
          timed([&] { return c.Post("/api/v1/jobs", "{}", "application/json"); });
        } else if (args.mode == "get") {
          timed([&] { return c.Get("/api/v1/jobs/" + get_id); });
        } else {
          std::string id = "lc-" + std::to_string(t) + "-" + std::to_string(n++);
          std::string path = "/api/v1/jobs/" + id;
          timed([&] { return c.Post("/api/v1/jobs", "{\"job_id\":\"" + id + "\"}", "application/json"); });
          timed([&] { return c.Post(path + "/start", "{}", "application/json"); });
          timed([&] { return c.Post(path + "/hitl", "{\"prompt\":{\"q\":1}}", "application/json"); });
          timed([&] { return c.Post(path + "/hitl/response", "{\"request_id\":\"h-1\",\"response\":1}", "application/json"); });
          timed([&] { return c.Post(path + "/complete", "{}", "application/json"); });
        }
        units++;
      }
    });
  }
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(args.seconds));
  stop = true;
  for (auto& th : threads) th.join();
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  const std::size_t requests = all.size();
  double p50 = Percentile(all, 0.50), p99 = Percentile(all, 0.99);
  std::printf("{\"mode\":\"%s\",\"connections\":%d,\"seconds\":%.2f,\"requests\":%zu,"
              "\"per_second\":%.0f,\"requests_per_second\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
              "\"errors\":%llu}\n",
              args.mode.c_str(), args.connections, elapsed, requests, units.load() / elapsed,
              requests / elapsed, p50, p99, static_cast<unsigned long long>(errors.load()));
  return 0;
}
