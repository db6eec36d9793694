// Three real `nats-server` processes on loopback as one JetStream cluster, each in its own temp
// directory and stopped by its PID; and `jobstore serve --nats` instances on it.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.h"
#include "support/raw_socket.h"
#include "support/temp_dir.h"

namespace jobstore::testing {

// A port nothing listens on now and not handed out before in this process, below the kernel's
// ephemeral range (ip_local_port_range), so that no server of another test started on port 0 can
// be given it before nats-server binds it. Nothing holds the port until nats-server binds it, so
// without the record of ports handed out one cluster drew the same port twice (n0's route port
// was n2's client port: n2 exited with "bind: address already in use", and the cluster lacked a
// JetStream peer: "no suitable peers for placement", in CI).
inline int FreePort() {
  static std::mutex mu;
  static std::mt19937 rng{std::random_device{}()};
  static std::set<int> handed_out;
  std::lock_guard<std::mutex> lock(mu);
  int low = 32768;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> low;
  const int first = 10000, last = std::max(first + 1000, low) - 1;
  for (;;) {
    const int port = std::uniform_int_distribution<int>(first, last)(rng);
    if (handed_out.contains(port)) continue;
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    const int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    const sockaddr_in addr = LoopbackAddress(port);
    const bool free = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (free) {
      handed_out.insert(port);
      return port;
    }
  }
}

inline bool PortAccepts(int port) { return RawSocket(port).connected(); }

class NatsCluster;
inline std::string JetStreamApi(const NatsCluster& nats, const std::string& api,
                                const std::string& body);

class NatsCluster {
 public:
  explicit NatsCluster(int servers = 3) {
    for (int i = 0; i < servers; ++i) {
      client_ports_.push_back(FreePort());
      route_ports_.push_back(FreePort());
    }
    for (int i = 0; i < servers; ++i) {
      const std::string conf = dir_.path() + "/nats" + std::to_string(i) + ".conf";
      std::ofstream out(conf);
      out << "server_name: n" << i << "\nhost: 127.0.0.1\nport: " << client_ports_[i]
          << "\njetstream { store_dir: \"" << dir_.path() << "/js" << i << "\" }\n";
      if (servers > 1) {
        out << "cluster {\n  name: jobstore_test\n  listen: 127.0.0.1:" << route_ports_[i]
            << "\n  routes: [";
        for (int j = 0; j < servers; ++j) {
          out << (j ? ", " : "") << "nats-route://127.0.0.1:" << route_ports_[j];
        }
        out << "]\n}\n";
      }
      out.close();  // written before the server reads it
      confs_.push_back(conf);
      current_.push_back(nullptr);
      Start(i);
    }
    WaitUntilStreamsCanBePlaced();
  }

  // (Re)starts server i on its own ports and store; waits until it accepts connections.
  void Start(int i) {
    all_.push_back(std::make_unique<ChildProcess>(
        std::vector<std::string>{NATS_SERVER_BINARY, "-c", confs_[i]}, /*merge_stderr=*/true));
    current_[i] = all_.back().get();
    drains_.emplace_back([this, i, c = current_[i]] {
      std::string line;
      while (c->ReadLine(&line)) {
        std::lock_guard<std::mutex> lock(lines_mu_);
        if (lines_.size() < 2000) lines_.push_back("n" + std::to_string(i) + ": " + line);
      }
    });
    for (int t = 0; t < 200 && !PortAccepts(client_ports_[i]); ++t) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
  }
  void Kill(int i) { current_[i]->Kill(SIGKILL); }
  // Stops server i without ending it (SIGSTOP): its sockets stay open and nothing answers, as
  // from a server that is overloaded or swapping. Continue(i) lets it go on. kill() returns before
  // the process has stopped (each thread stops when it next runs in the kernel; on a busy machine
  // a nats-server thread already running answered a request sent right after, in CI), so this
  // returns only once every thread of the server is stopped.
  void Pause(int i) {
    const pid_t pid = current_[i]->pid();
    ::kill(pid, SIGSTOP);
    for (int t = 0; !EveryThreadStopped(pid); ++t) {
      if (t == 2000) {
        std::fprintf(stderr, "NatsCluster::Pause: server %d (pid %d) has not stopped in 10 s\n", i,
                     static_cast<int>(pid));
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  void Continue(int i) { ::kill(current_[i]->pid(), SIGCONT); }
  int size() const { return static_cast<int>(current_.size()); }

  // Whether every thread of process pid is in the stopped state ('T' in /proc/pid/task/*/stat).
  static bool EveryThreadStopped(pid_t pid) {
    const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
    std::error_code ec;
    bool any = false;
    for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
      std::ifstream stat(task.path() / "stat");
      std::string line;
      std::getline(stat, line);
      const auto close = line.rfind(')');  // the name in parentheses may hold spaces
      if (close == std::string::npos || close + 2 >= line.size()) continue;  // the thread ended
      if (line[close + 2] != 'T') return false;
      any = true;
    }
    return any && !ec;
  }

  ~NatsCluster() {
    for (auto& s : all_) s->Kill(SIGKILL);
    for (auto& t : drains_) t.join();
  }

  int client_port(std::size_t i) const { return client_ports_.at(i); }

  std::string urls() const {
    std::string out;
    for (std::size_t i = 0; i < client_ports_.size(); ++i) {
      out += (i ? "," : "") + std::string("nats://127.0.0.1:") + std::to_string(client_ports_[i]);
    }
    return out;
  }

  // What the servers have printed so far (the first 2,000 lines), each prefixed with its name.
  std::vector<std::string> Lines() const {
    std::lock_guard<std::mutex> lock(lines_mu_);
    return lines_;
  }

 private:
  // Blocks until JetStream can place a stream with one replica per server, by creating and
  // deleting a probe stream, so that a test's instances never spend their own 30 s wait on a
  // cluster still forming. If it cannot within 60 s (a server that could not start), the
  // servers' lines go to stderr so the failing test says why.
  void WaitUntilStreamsCanBePlaced() {
    const std::string config = "{\"name\":\"PROBE\",\"subjects\":[\"probe\"],\"num_replicas\":" +
                               std::to_string(size()) + "}";
    std::string answer;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      answer = JetStreamApi(*this, "STREAM.CREATE.PROBE", config);
      if (answer.find("\"config\"") != std::string::npos && answer.find("\"error\"") == std::string::npos) {
        JetStreamApi(*this, "STREAM.DELETE.PROBE", "");
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    std::fprintf(stderr, "--- the NATS cluster could not place a stream in 60 s: %s\n", answer.c_str());
    for (const std::string& line : Lines()) std::fprintf(stderr, "%s\n", line.c_str());
  }

  TempDir dir_;
  std::vector<int> client_ports_, route_ports_;
  std::vector<std::string> confs_;
  std::vector<std::unique_ptr<ChildProcess>> all_;  // every process started (drains read them)
  std::vector<ChildProcess*> current_;               // server i's current process
  std::vector<std::thread> drains_;
  mutable std::mutex lines_mu_;
  std::vector<std::string> lines_;  // guarded by lines_mu_
};

// One request to JetStream's API (`$JS.API.<api>`), spoken in NATS's text protocol on a plain
// socket to the first server that accepts connections. Returns JetStream's answer (JSON), or ""
// when none came within 10 s.
inline std::string JetStreamApi(const NatsCluster& nats, const std::string& api,
                                const std::string& body) {
  int port = nats.client_port(0);
  for (int i = 0; i < nats.size(); ++i) {
    if (PortAccepts(nats.client_port(i))) {
      port = nats.client_port(i);
      break;
    }
  }
  RawSocket s(port);
  if (!s.connected()) return "";
  s.Send("CONNECT {\"verbose\":false,\"protocol\":1}\r\nSUB _INBOX.api 1\r\n"
         "PUB $JS.API." + api + " _INBOX.api " + std::to_string(body.size()) + "\r\n" + body +
         "\r\nPING\r\n");
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    bool closed = false;
    got += s.ReadUntilClosed(std::chrono::milliseconds(200), &closed);
    const auto msg = got.find("MSG _INBOX.api");
    if (msg != std::string::npos) {
      const auto start = got.find("\r\n", msg);
      const auto end = start == std::string::npos ? std::string::npos : got.find("\r\n", start + 2);
      if (end != std::string::npos) return got.substr(start + 2, end - start - 2);
    }
    if (closed) break;
  }
  return "";
}

// Removes the stream's messages before `keep_from`: what --stream-max-age does to old messages,
// without waiting for it. Returns JetStream's answer.
inline std::string PurgeStreamBefore(const NatsCluster& nats, const std::string& stream,
                                     std::uint64_t keep_from) {
  return JetStreamApi(nats, "STREAM.PURGE." + stream, "{\"seq\":" + std::to_string(keep_from) + "}");
}

// The index of the server that leads the stream's replicas now (its server_name is "n<index>"),
// or -1 when JetStream names none (an election under way) or did not answer.
inline int StreamLeader(const NatsCluster& nats, const std::string& stream) {
  const std::string info = JetStreamApi(nats, "STREAM.INFO." + stream, "");
  const std::string key = "\"leader\":\"n";
  const auto at = info.find(key);
  if (at == std::string::npos) return -1;
  const std::size_t digit = at + key.size();
  if (digit >= info.size() || info[digit] < '0' || info[digit] > '9') return -1;
  const int leader = info[digit] - '0';
  return leader < nats.size() ? leader : -1;
}

// The flags of one `jobstore serve` in the cluster (lease short, so failovers are quick).
inline std::vector<std::string> ClusterFlags(const NatsCluster& nats, std::vector<std::string> extra = {}) {
  std::vector<std::string> flags = {"--nats", nats.urls(), "--writer-lease", "2s"};
  flags.insert(flags.end(), extra.begin(), extra.end());
  return flags;
}

// The NATS cluster of this test process, started on first use and stopped at its exit (ctest
// runs each test in a process of its own, so each test gets a fresh one; instances restarted
// by a test find the stream they left).
inline NatsCluster& SharedNatsCluster() {
  static NatsCluster cluster;
  return cluster;
}

}  // namespace jobstore::testing
