// The HTTP load driver: keep-alive connections against a running server. Prints one JSON line.
//
//   http_load --port P --mode MODE [--connections 32] [--seconds 5] [--count N] [--ttl S]
//
// Closed-loop modes (each connection sends its next request as soon as the last is answered, for
// --seconds): create = POST /api/v1/jobs; get = GET one existing job; lifecycle = create, start,
// hitl, answer, complete per job (jobs/s; latency per request); worker = claim then complete
// (2 requests per job) and worker-next = complete with "next" (1 request per job), both from a
// queue of --count jobs made first. They also report the p99 of each
// second ("p99_ms_by_second"), so a disturbance that lasts a few seconds is not averaged away.
//
// hitl-wake: --count jobs (1000) each get a HITL request and one waiting worker connection
// (GET .../hitl/response?wait=60); one operator connection then answers them one by one, 2 ms
// apart. Latency = from just before the answer POST is sent to the waiting GET's return.
//
// herd: the cost of many waiters to writers. Creates on --connections run for --seconds three
// times: alone; while --count long-polls wait on one job that is cancelled a third of the way
// in (the creates' p99 over the second after the cancel, the cancel's own latency, and the time
// until every waiter has its answer); and beside --count feed readers waiting on
// /events?job_id=<a job that never changes>. The waiters are plain sockets read by one thread
// (socket_waiters.h): they stand for clients on other machines.
//
// fill-expiring: creates --count jobs (in batches of 1000) with ttl_seconds = --ttl and cancels
// each, so that all of them expire --ttl seconds later (the compaction benchmark's load).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "socket_waiters.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  int port = 8000;
  std::string mode = "create";
  int connections = 32;
  double seconds = 5;
  int count = 1000;
  int ttl = 30;
};

bool Parse(int argc, char** argv, Args* a) {
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--port") a->port = std::stoi(v);
    else if (k == "--mode") a->mode = v;
    else if (k == "--connections") a->connections = std::stoi(v);
    else if (k == "--seconds") a->seconds = std::stod(v);
    else if (k == "--count") a->count = std::stoi(v);
    else if (k == "--ttl") a->ttl = std::stoi(v);
    else return false;
  }
  return a->mode == "create" || a->mode == "get" || a->mode == "lifecycle" ||
         a->mode == "worker" || a->mode == "worker-next" ||
         a->mode == "hitl-wake" || a->mode == "fill-expiring" || a->mode == "herd";
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * v.size()));
  std::nth_element(v.begin(), v.begin() + i, v.end());
  return v[i];
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::unique_ptr<httplib::Client> Connect(int port) {
  auto c = std::make_unique<httplib::Client>("127.0.0.1", port);
  c->set_keep_alive(true);
  c->set_tcp_nodelay(true);
  c->set_read_timeout(120, 0);
  return c;
}

bool Ok(const httplib::Result& r) { return r && r->status < 300; }

struct Sample {
  double at_s;  // since the start
  double ms;
};

// Creates `count` jobs through /jobs/batch with `extra` merged into each body; returns their ids.
std::vector<std::string> CreateMany(httplib::Client& c, int count, const nlohmann::json& extra) {
  std::vector<std::string> ids;
  while (static_cast<int>(ids.size()) < count) {
    nlohmann::json jobs = nlohmann::json::array();
    for (int i = 0; i < 1000 && static_cast<int>(ids.size()) + i < count; ++i) jobs.push_back(extra);
    auto r = c.Post("/api/v1/jobs/batch", nlohmann::json{{"jobs", jobs}}.dump(), "application/json");
    if (!Ok(r)) return {};
    const nlohmann::json created = nlohmann::json::parse(r->body);
    for (const auto& j : created.at("jobs")) ids.push_back(j.at("job_id"));
  }
  return ids;
}

int ClosedLoop(const Args& args) {
  std::string get_id = "x";
  if (args.mode == "worker" || args.mode == "worker-next") {  // a queue to work through
    if (CreateMany(*Connect(args.port), args.count, nlohmann::json{{"type", "bench"}}).empty()) {
      return 1;
    }
  }
  if (args.mode == "get") {
    auto r = Connect(args.port)->Post("/api/v1/jobs", "{}", "application/json");
    if (!Ok(r)) return 1;
    get_id = nlohmann::json::parse(r->body)["job_id"];
  }
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> errors{0}, units{0};
  std::vector<std::vector<Sample>> samples(args.connections);
  std::vector<std::thread> threads;
  const auto t0 = Clock::now();
  for (int t = 0; t < args.connections; ++t) {
    threads.emplace_back([&, t] {
      auto c = Connect(args.port);
      auto& mine = samples[t];
      std::string claimed;  // worker-next: the job the last complete claimed
      auto timed = [&](auto&& call) {
        auto start = Clock::now();
        auto r = call();
        auto end = Clock::now();
        mine.push_back({std::chrono::duration<double>(end - t0).count(), Ms(end - start)});
        if (!Ok(r)) errors++;
        return r;
      };
      for (int n = 0; !stop.load(std::memory_order_relaxed); ++n) {
        if (args.mode == "create") {
          timed([&] { return c->Post("/api/v1/jobs", "{}", "application/json"); });
        } else if (args.mode == "get") {
          timed([&] { return c->Get("/api/v1/jobs/" + get_id); });
        } else if (args.mode == "worker" || args.mode == "worker-next") {
          // A worker's loop: claim, complete (2 requests per job), or complete with "next" (1).
          static const std::string kClaim = R"({"worker":"w","types":["bench"]})";
          if (claimed.empty() || args.mode == "worker") {
            auto r = timed([&] { return c->Post("/api/v1/jobs/claim", kClaim, "application/json"); });
            if (!r || r->status != 200) break;  // the queue ran dry
            claimed = nlohmann::json::parse(r->body)["job_id"];
          }
          const std::string path = "/api/v1/jobs/" + claimed + "/complete";
          if (args.mode == "worker") {
            timed([&] { return c->Post(path, "{}", "application/json"); });
            claimed.clear();
          } else {
            auto r = timed(
                [&] { return c->Post(path, R"({"next":)" + kClaim + "}", "application/json"); });
            if (!r || r->status != 200) break;
            const auto next = nlohmann::json::parse(r->body)["next"];
            claimed = next.is_null() ? std::string() : next["job_id"].get<std::string>();
          }
        } else {
          std::string id = "lc-" + std::to_string(t) + "-" + std::to_string(n);
          std::string path = "/api/v1/jobs/" + id;
          timed([&] { return c->Post("/api/v1/jobs", "{\"job_id\":\"" + id + "\"}", "application/json"); });
          timed([&] { return c->Post(path + "/start", "{}", "application/json"); });
          timed([&] { return c->Post(path + "/hitl", "{\"prompt\":{\"q\":1}}", "application/json"); });
          timed([&] { return c->Post(path + "/hitl/response", "{\"request_id\":\"h-1\",\"response\":1}", "application/json"); });
          timed([&] { return c->Post(path + "/complete", "{}", "application/json"); });
        }
        units++;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(args.seconds));
  stop = true;
  for (auto& th : threads) th.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<double> all;
  std::map<int, std::vector<double>> by_second;
  for (auto& s : samples) {
    for (const Sample& x : s) {
      all.push_back(x.ms);
      by_second[static_cast<int>(x.at_s)].push_back(x.ms);
    }
  }
  std::string series;
  for (auto& [second, v] : by_second) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%.2f", series.empty() ? "" : ",", Percentile(v, 0.99));
    series += buf;
  }
  std::printf("{\"mode\":\"%s\",\"connections\":%d,\"seconds\":%.2f,\"requests\":%zu,"
              "\"per_second\":%.0f,\"requests_per_second\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
              "\"p99_ms_by_second\":[%s],\"errors\":%llu}\n",
              args.mode.c_str(), args.connections, elapsed, all.size(), units.load() / elapsed,
              all.size() / elapsed, Percentile(all, 0.50), Percentile(all, 0.99), series.c_str(),
              static_cast<unsigned long long>(errors.load()));
  return 0;
}

// Runs fn(i) for i in [0, n) on `connections` threads, each with its own keep-alive client.
template <typename Fn>
void Parallel(int port, int connections, int n, Fn fn) {
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < connections; ++t) {
    threads.emplace_back([&] {
      auto c = Connect(port);
      for (int i = next++; i < n; i = next++) fn(*c, i);
    });
  }
  for (auto& th : threads) th.join();
}

int HitlWake(const Args& args) {
  auto setup = Connect(args.port);
  auto ids = CreateMany(*setup, args.count, nlohmann::json::object());
  if (ids.empty()) return 1;
  std::atomic<int> failures{0};
  Parallel(args.port, args.connections, args.count, [&](httplib::Client& c, int i) {
    std::string path = "/api/v1/jobs/" + ids[i];
    if (!Ok(c.Post(path + "/start", "{}", "application/json")) ||
        !Ok(c.Post(path + "/hitl", "{\"prompt\":{\"q\":1}}", "application/json"))) {
      failures++;
    }
  });
  if (failures) return 1;
  std::vector<Clock::time_point> answered(args.count), woke(args.count);
  std::vector<std::thread> waiters;
  std::atomic<int> parked{0}, wrong{0};
  for (int i = 0; i < args.count; ++i) {
    waiters.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", args.port);
      c.set_read_timeout(120, 0);
      parked++;
      auto r = c.Get("/api/v1/jobs/" + ids[i] + "/hitl/response?wait=60");
      woke[i] = Clock::now();
      if (!r || r->status != 200) wrong++;
    });
  }
  // Every waiter's request is in the server when its waiter gauge shows all of them.
  for (int tries = 0; tries < 600; ++tries) {
    auto m = setup->Get("/metrics");
    if (Ok(m)) {
      auto pos = m->body.find("\njobstore_waiters ");
      if (pos != std::string::npos && std::stoi(m->body.substr(pos + 18)) >= args.count) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (int i = 0; i < args.count; ++i) {
    answered[i] = Clock::now();
    if (!Ok(setup->Post("/api/v1/jobs/" + ids[i] + "/hitl/response",
                        "{\"request_id\":\"h-1\",\"response\":{\"ok\":true}}", "application/json"))) {
      wrong++;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (auto& w : waiters) w.join();
  std::vector<double> lat;
  for (int i = 0; i < args.count; ++i) lat.push_back(Ms(woke[i] - answered[i]));
  std::printf("{\"mode\":\"hitl-wake\",\"waiters\":%d,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
              "\"max_ms\":%.3f,\"errors\":%d}\n",
              args.count, Percentile(lat, 0.5), Percentile(lat, 0.99), Percentile(lat, 1.0),
              wrong.load());
  return 0;
}

// Creates on `connections` keep-alive connections for `seconds`; `at_s(t)` runs once on the
// calling thread `t` seconds in (negative: never). Returns each create's (start, latency).
std::vector<Sample> CreatesFor(int port, int connections, double seconds, double at_s,
                               const std::function<void()>& at) {
  std::atomic<bool> stop{false};
  std::vector<std::vector<Sample>> samples(connections);
  std::vector<std::thread> threads;
  const auto t0 = Clock::now();
  for (int t = 0; t < connections; ++t) {
    threads.emplace_back([&, t] {
      auto c = Connect(port);
      while (!stop.load(std::memory_order_relaxed)) {
        auto start = Clock::now();
        auto r = c->Post("/api/v1/jobs", "{}", "application/json");
        if (Ok(r)) {
          samples[t].push_back({std::chrono::duration<double>(start - t0).count(), Ms(Clock::now() - start)});
        }
      }
    });
  }
  if (at_s >= 0) {
    std::this_thread::sleep_for(std::chrono::duration<double>(at_s));
    at();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds - at_s));
  } else {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  }
  stop = true;
  for (auto& th : threads) th.join();
  std::vector<Sample> all;
  for (auto& s : samples) all.insert(all.end(), s.begin(), s.end());
  return all;
}

double P99Between(const std::vector<Sample>& s, double from_s, double to_s) {
  std::vector<double> v;
  for (const Sample& x : s) {
    if (x.at_s >= from_s && x.at_s < to_s) v.push_back(x.ms);
  }
  return Percentile(v, 0.99);
}

// Parks `count` waiters on `path` (bench/socket_waiters.h); returns once the server's waiter gauge
// counts them all (or after 2 minutes), with *parked set to the gauge.
std::unique_ptr<SocketWaiters> Park(int port, int count, const std::string& path, int* parked) {
  auto waiters = std::make_unique<SocketWaiters>(port, count, path);
  auto m = Connect(port);
  for (int tries = 0; tries < 1200; ++tries) {
    auto r = m->Get("/metrics");
    if (Ok(r)) {
      auto pos = r->body.find("\njobstore_waiters ");
      if (pos != std::string::npos) *parked = std::stoi(r->body.substr(pos + 18));
      if (*parked >= count) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return waiters;
}

int Herd(const Args& args) {
  auto setup = Connect(args.port);
  const double third = args.seconds / 3;
  auto alone = CreatesFor(args.port, args.connections, args.seconds, -1, {});

  if (!Ok(setup->Post("/api/v1/jobs", "{\"job_id\":\"herd\"}", "application/json"))) return 1;
  int parked = 0, feed_parked = 0;
  auto waiters = Park(args.port, args.count, "/api/v1/jobs/herd?wait=60&after_version=1", &parked);
  double cancel_ms = 0, wake_all_ms = 0;
  Clock::time_point cancelled;
  std::thread watch;
  auto during = CreatesFor(args.port, args.connections, args.seconds, third, [&] {
    cancelled = Clock::now();
    setup->Post("/api/v1/jobs/herd/cancel", "{}", "application/json");
    cancel_ms = Ms(Clock::now() - cancelled);
    watch = std::thread([&] {
      while (waiters->returned() < args.count) std::this_thread::sleep_for(std::chrono::microseconds(200));
      wake_all_ms = Ms(Clock::now() - cancelled);
    });
  });
  watch.join();
  waiters.reset();

  // From the head, as a resuming reader would (a reader from 0 would first scan the whole log).
  auto page = setup->Get("/api/v1/events?limit=1");
  if (!Ok(page)) return 1;
  const std::string head = std::to_string(nlohmann::json::parse(page->body)["head"].get<std::uint64_t>());
  auto feed = Park(args.port, args.count, "/api/v1/events?job_id=never-changes&wait=60&after=" + head,
                   &feed_parked);
  auto beside_feed = CreatesFor(args.port, args.connections, args.seconds, -1, {});
  const double rate_alone = alone.size() / args.seconds;
  const double rate_feed = beside_feed.size() / args.seconds;
  std::printf("{\"mode\":\"herd\",\"waiters\":%d,\"parked\":%d,\"feed_parked\":%d,"
              "\"connections\":%d,"
              "\"create_p99_ms_alone\":%.3f,\"create_p99_ms_second_after_wake\":%.3f,"
              "\"cancel_ms\":%.3f,\"wake_all_ms\":%.1f,"
              "\"creates_per_second_alone\":%.0f,\"creates_per_second_beside_feed_waiters\":%.0f,"
              "\"create_p99_ms_beside_feed_waiters\":%.3f}\n",
              args.count, parked, feed_parked, args.connections, Percentile([&] {
                std::vector<double> v;
                for (auto& x : alone) v.push_back(x.ms);
                return v;
              }(), 0.99),
              P99Between(during, third, third + 1), cancel_ms, wake_all_ms, rate_alone, rate_feed,
              P99Between(beside_feed, 0, args.seconds + 1));
  std::fflush(stdout);
  std::_Exit(0);  // the feed waiters are still parked (60 s); the process leaves them
}

int FillExpiring(const Args& args) {
  auto t0 = Clock::now();
  auto setup = Connect(args.port);
  auto ids = CreateMany(*setup, args.count, {{"ttl_seconds", args.ttl}});
  if (ids.empty()) return 1;
  std::atomic<int> failures{0};
  Parallel(args.port, args.connections, args.count, [&](httplib::Client& c, int i) {
    if (!Ok(c.Post("/api/v1/jobs/" + ids[i] + "/cancel", "{\"reason\":\"bench\"}", "application/json"))) {
      failures++;
    }
  });
  std::printf("{\"mode\":\"fill-expiring\",\"jobs\":%d,\"ttl_seconds\":%d,\"seconds\":%.2f,"
              "\"errors\":%d}\n",
              args.count, args.ttl, std::chrono::duration<double>(Clock::now() - t0).count(),
              failures.load());
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!Parse(argc, argv, &args)) {
    std::fprintf(stderr, "usage: http_load --port P --mode create|get|lifecycle|worker|"
                         "worker-next|hitl-wake|"
                         "fill-expiring|herd [--connections N] [--seconds S] [--count N] [--ttl S]\n");
    return 2;
  }
  if (args.mode == "hitl-wake") return HitlWake(args);
  if (args.mode == "fill-expiring") return FillExpiring(args);
  if (args.mode == "herd") return Herd(args);
  return ClosedLoop(args);
}
