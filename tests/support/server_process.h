// The real `jobstore serve` in a child process on an ephemeral loopback port, with an HTTP
// client pointed at it. Its log lines are collected by a drain thread (so the pipe never fills).
//
// With JOBSTORE_TEST_INSTANCES=N in the environment (N > 1), a ServerProcess is N instances on
// one replicated log instead (three NATS servers shared by the test process, each instance's copy
// in <data_dir>/i<k>): every request goes to a random instance, and every GET carries
// `min_seq` = the highest X-Jobstore-Seq this object has seen (read-your-writes, as a client
// behind a load balancer would do). The HTTP and background end-to-end suites run this way too.
#pragma once

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "support/child_process.h"
#ifdef NATS_SERVER_BINARY
#include "support/nats_cluster.h"
#endif

namespace jobstore::testing {

struct Reply {
  int status = 0;  // 0: no answer (connection error)
  nlohmann::json body;
  httplib::Headers headers;
  std::string raw;
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

class ServerProcess {
 public:
  // Starts the server on `data_dir` with extra flags; waits until it serves. `prefix` runs it
  // under another command (e.g. {"prlimit", "--nofile=256:256", "--"}).
  ServerProcess(const std::string& data_dir, std::vector<std::string> extra = {},
                std::vector<std::string> prefix = {}) {
    const int instances = InstancesRequested();
    if (instances > 1 && prefix.empty() &&
        std::find(extra.begin(), extra.end(), "--nats") == extra.end()) {
      StartReplicas(data_dir, extra, instances);
      return;
    }
    std::vector<std::string> argv = prefix;
    for (const char* a : {JOBSTORE_BINARY, "serve", "--data-dir"}) argv.push_back(a);
    for (const std::string& a : {data_dir, std::string("--listen"), std::string("127.0.0.1:0")}) {
      argv.push_back(a);
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    child_ = std::make_unique<ChildProcess>(argv, /*merge_stderr=*/true);
    static const std::regex kServing(R"(serving http://127\.0\.0\.1:(\d+))");
    std::string line;
    while (child_->ReadLine(&line)) {
      AddLine(line);
      std::smatch m;
      if (std::regex_search(line, m, kServing)) {
        port_ = std::stoi(m[1]);
        break;
      }
    }
    drain_ = std::thread([this] {
      std::string l;
      while (child_->ReadLine(&l)) AddLine(l);
    });
  }

  ~ServerProcess() {
    if (child_) child_->Kill(SIGKILL);
    if (drain_.joinable()) drain_.join();
  }

  bool started() const {
    if (replicas_.empty()) return port_ > 0;
    return replicas_ready_;
  }
  // One process's pid and memory (with several instances: the first one's).
  pid_t pid() const { return replicas_.empty() ? child_->pid() : replicas_[0]->pid(); }
  // The server's resident memory in KiB (VmRSS of /proc/<pid>/status), 0 when unknown.
  long RssKiB() const {
    if (!replicas_.empty()) return replicas_[0]->RssKiB();
    std::ifstream status("/proc/" + std::to_string(pid()) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return 0;
  }
  // With several instances: a random one's.
  int port() const { return replicas_.empty() ? port_ : Pick().port(); }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port()); }

  // Sends SIGTERM and waits; returns the exit code (or -1 when killed by a signal). With several
  // instances: each in turn, the first non-zero code.
  int Terminate() {
    if (!replicas_.empty()) {
      int code = 0;
      for (auto& r : replicas_) {
        const int c = r->Terminate();
        if (code == 0) code = c;
      }
      return code;
    }
    int status = child_->Kill(SIGTERM);
    if (drain_.joinable()) drain_.join();
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  void Crash() {
    for (auto& r : replicas_) r->Crash();
    if (!child_) return;
    child_->Kill(SIGKILL);
    if (drain_.joinable()) drain_.join();
  }

  // The log's lines (with several instances: every instance's, one after the other).
  std::vector<std::string> Lines() const {
    if (!replicas_.empty()) {
      std::vector<std::string> all;
      for (const auto& r : replicas_) {
        auto lines = r->Lines();
        all.insert(all.end(), lines.begin(), lines.end());
      }
      return all;
    }
    std::lock_guard lock(mu_);
    return lines_;
  }

  // The server's log reaches the test through a pipe and the drain thread, later than the HTTP
  // answers the server sent after logging: waits (up to `timeout`) until a line contains
  // `needle`. False when none did.
  bool WaitForLine(const std::string& needle,
                   std::chrono::milliseconds timeout = std::chrono::seconds(10)) const {
    if (!replicas_.empty()) {
      const auto deadline = std::chrono::steady_clock::now() + timeout;
      do {
        for (const auto& r : replicas_) {
          if (r->WaitForLine(needle, std::chrono::milliseconds(0))) return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      } while (std::chrono::steady_clock::now() < deadline);
      return false;
    }
    std::unique_lock lock(mu_);
    return line_added_.wait_for(lock, timeout, [&] {
      for (const auto& line : lines_) {
        if (line.find(needle) != std::string::npos) return true;
      }
      return false;
    });
  }

  // Waits until the server counts at least `n` parked long-polls and streams (the
  // jobstore_waiters gauge), so that a test acts only once its waiter is really waiting; a
  // sleep instead passes even when the waiter never parked. False after `timeout`.
  // With several instances: the waiters of all of them together.
  bool WaitForWaiters(std::size_t n,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10)) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      std::size_t waiting = 0;
      if (replicas_.empty()) {
        waiting = Waiters();
      } else {
        for (const auto& r : replicas_) waiting += r->Waiters();
      }
      if (waiting >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  // A client of its own (with several instances: to a random one; it sends no min_seq).
  std::unique_ptr<httplib::Client> Client() const {
    if (!replicas_.empty()) return Pick().Client();
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_read_timeout(90, 0);
    c->set_connection_timeout(5, 0);
    c->set_keep_alive(true);
    c->set_tcp_nodelay(true);
    return c;
  }

  Reply Call(const std::string& method, const std::string& path, const std::string& body = "",
             httplib::Headers headers = {}) const {
    if (!replicas_.empty()) return CallAnyReplica(method, path, body, std::move(headers));
    // One keep-alive client per thread and server instance (a restarted server may get the
    // same port; its predecessor's connection must not be reused).
    thread_local std::map<std::uint64_t, std::unique_ptr<httplib::Client>> clients;
    std::unique_ptr<httplib::Client>& client = clients[instance_];
    if (!client) client = Client();
    httplib::Result r(nullptr, httplib::Error::Unknown);
    if (method == "GET") {
      r = client->Get(path, headers);
    } else if (method == "POST") {
      r = body.empty() ? client->Post(path, headers)
                       : client->Post(path, headers, body, "application/json");
    } else if (method == "PATCH") {
      r = client->Patch(path, headers, body, "application/json");
    } else if (method == "DELETE") {
      r = client->Delete(path, headers);
    }
    Reply reply;
    if (!r) {
      client.reset();
      return reply;
    }
    reply.status = r->status;
    reply.headers = r->headers;
    reply.raw = r->body;
    reply.body = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
    return reply;
  }
  Reply Get(const std::string& path, httplib::Headers h = {}) const { return Call("GET", path, "", std::move(h)); }
  Reply Post(const std::string& path, const nlohmann::json& body = nullptr,
             httplib::Headers h = {}) const {
    return Call("POST", path, body.is_null() ? "" : body.dump(), std::move(h));
  }
  Reply Patch(const std::string& path, const nlohmann::json& body, httplib::Headers h = {}) const {
    return Call("PATCH", path, body.dump(), std::move(h));
  }

  // How many instances a ServerProcess is (JOBSTORE_TEST_INSTANCES; 1 when unset).
  static int InstancesRequested() {
    const char* n = std::getenv("JOBSTORE_TEST_INSTANCES");
    return n ? std::atoi(n) : 1;
  }

 private:

  // This process's parked long-polls and streams (the jobstore_waiters gauge); 0 when unknown.
  std::size_t Waiters() const {
    auto m = Client()->Get("/metrics");
    if (!m) return 0;
    auto pos = m->body.find("\njobstore_waiters ");
    return pos == std::string::npos ? 0 : std::stoull(m->body.substr(pos + 18));
  }

  // Several instances on the NATS cluster this test process shares; started() is true once
  // each of them is ready (caught up) and one is the writer.
  void StartReplicas(const std::string& data_dir, const std::vector<std::string>& extra, int n) {
#ifdef NATS_SERVER_BINARY
    std::filesystem::create_directories(data_dir);
    for (int i = 0; i < n; ++i) {
      replicas_.push_back(std::make_unique<ServerProcess>(
          data_dir + "/i" + std::to_string(i), ClusterFlags(SharedNatsCluster(), extra)));
      if (!replicas_.back()->started()) {  // it exited before serving: say why
        std::fprintf(stderr, "--- instance %d did not start:\n", i);
        for (const std::string& l : replicas_.back()->Lines()) std::fprintf(stderr, "%s\n", l.c_str());
        return;
      }
    }
    // A fresh NATS cluster elects its JetStream leaders before the instances can be ready. Once,
    // beside the other suites, three instances were not ready within 30 s (why went unlogged:
    // now their last lines are printed below), so the bound is 60 s.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      int ready = 0, writers = 0;
      for (const auto& r : replicas_) {
        Reply z = r->Get("/readyz");
        if (z.status == 200) ++ready;
        if (z.status == 200 && z.body.value("role", "") == "writer") ++writers;
      }
      if (ready == n && writers == 1) {
        replicas_ready_ = true;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // Not ready: say why, for the failure this leads to.
    for (std::size_t i = 0; i < replicas_.size(); ++i) {
      std::fprintf(stderr, "--- instance %zu: /readyz %s\n", i, replicas_[i]->Get("/readyz").raw.c_str());
      const auto lines = replicas_[i]->Lines();
      for (std::size_t k = lines.size() > 15 ? lines.size() - 15 : 0; k < lines.size(); ++k) {
        std::fprintf(stderr, "%s\n", lines[k].c_str());
      }
    }
#else
    (void)data_dir, (void)extra, (void)n;
    std::fprintf(stderr, "JOBSTORE_TEST_INSTANCES needs a test binary built with NATS_SERVER_BINARY\n");
    std::abort();
#endif
  }

  ServerProcess& Pick() const {
    std::lock_guard lock(mu_);
    return *replicas_[rng_() % replicas_.size()];
  }

  Reply CallAnyReplica(const std::string& method, const std::string& path, const std::string& body,
                       httplib::Headers headers) const {
    std::string target = path;
    const std::uint64_t seen = session_seq_.load();
    if (method == "GET" && seen > 0 && path.find("min_seq=") == std::string::npos) {
      target += (path.find('?') == std::string::npos ? "?min_seq=" : "&min_seq=") +
                std::to_string(seen);
    }
    Reply r = Pick().Call(method, target, body, std::move(headers));
    const std::string seq = r.Header("X-Jobstore-Seq");
    if (!seq.empty()) {
      const std::uint64_t got = std::stoull(seq);
      std::uint64_t prev = session_seq_.load();
      while (got > prev && !session_seq_.compare_exchange_weak(prev, got)) {
      }
    }
    return r;
  }

  void AddLine(const std::string& l) {
    {
      std::lock_guard lock(mu_);
      lines_.push_back(l);
    }
    line_added_.notify_all();
  }

  static std::uint64_t NextInstance() {
    static std::atomic<std::uint64_t> next{1};
    return next++;
  }

  const std::uint64_t instance_ = NextInstance();
  std::unique_ptr<ChildProcess> child_;
  int port_ = 0;
  std::thread drain_;
  mutable std::mutex mu_;
  mutable std::condition_variable line_added_;
  std::vector<std::string> lines_;
  // With several instances: each one, the routing's randomness, the highest seq seen.
  std::vector<std::unique_ptr<ServerProcess>> replicas_;
  bool replicas_ready_ = false;
  mutable std::mt19937 rng_{20261203};
  mutable std::atomic<std::uint64_t> session_seq_{0};
};

}  // namespace jobstore::testing
