// The real `jobstore serve` in a child process on an ephemeral loopback port, with an HTTP
// client pointed at it. Its log lines are collected by a drain thread (so the pipe never fills).
#pragma once

#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "support/child_process.h"

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
    child_->Kill(SIGKILL);
    if (drain_.joinable()) drain_.join();
  }

  bool started() const { return port_ > 0; }
  pid_t pid() const { return child_->pid(); }
  // The server's resident memory in KiB (VmRSS of /proc/<pid>/status), 0 when unknown.
  long RssKiB() const {
    std::ifstream status("/proc/" + std::to_string(pid()) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return 0;
  }
  int port() const { return port_; }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Sends SIGTERM and waits; returns the exit code (or -1 when killed by a signal).
  int Terminate() {
    int status = child_->Kill(SIGTERM);
    if (drain_.joinable()) drain_.join();
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  void Crash() {
    child_->Kill(SIGKILL);
    if (drain_.joinable()) drain_.join();
  }

  std::vector<std::string> Lines() const {
    std::lock_guard lock(mu_);
    return lines_;
  }

  // The server's log reaches the test through a pipe and the drain thread, later than the HTTP
  // answers the server sent after logging: waits (up to `timeout`) until a line contains
  // `needle`. False when none did.
  bool WaitForLine(const std::string& needle,
                   std::chrono::milliseconds timeout = std::chrono::seconds(10)) const {
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
  bool WaitForWaiters(std::size_t n,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10)) const {
    auto c = Client();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto m = c->Get("/metrics");
      if (m) {
        auto pos = m->body.find("\njobstore_waiters ");
        if (pos != std::string::npos && std::stoull(m->body.substr(pos + 18)) >= n) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  std::unique_ptr<httplib::Client> Client() const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_read_timeout(90, 0);
    c->set_connection_timeout(5, 0);
    c->set_keep_alive(true);
    c->set_tcp_nodelay(true);
    return c;
  }

  Reply Call(const std::string& method, const std::string& path, const std::string& body = "",
             httplib::Headers headers = {}) const {
    // One keep-alive client per thread and server instance (a restarted server may get the
    // same port; its predecessor's connection must not be reused).
    thread_local std::unique_ptr<httplib::Client> client;
    thread_local std::uint64_t client_for = 0;
    if (!client || client_for != instance_) {
      client = Client();
      client_for = instance_;
    }
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

 private:
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
};

}  // namespace jobstore::testing
