// The HTTP ceiling: a bare cpp-httplib server tuned as jobstore's is (TCP_NODELAY, a large pool,
// long keep-alive, backlog 4096), answering fixed job-sized JSON without storing anything.
//   bare_httplib_server PORT [--durable FILE]
// With --durable, each POST's body is first made durable the cheapest way a group commit can:
// the connection thread queues it, one writer thread appends everything queued with one write()
// and one fdatasync() and wakes the waiting threads. Nothing is parsed, decided or indexed: it is
// the ceiling of any durable server built on cpp-httplib's thread per connection.
#include <fcntl.h>
#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

class GroupCommitFile {
 public:
  explicit GroupCommitFile(const char* path)
      : fd_(::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) {
    if (fd_ < 0) {
      std::perror(path);
      std::exit(1);
    }
    writer_ = std::thread([this] { Run(); });
  }

  // Blocks until `body` is written and fdatasync'ed.
  void Append(const std::string& body) {
    auto p = std::make_shared<Pending>(&body);  // shared: the writer notifies after the store
    {
      std::lock_guard lock(mu_);
      queue_.push_back(p);
    }
    cv_.notify_one();
    p->done.wait(false);
  }

 private:
  struct Pending {
    explicit Pending(const std::string* b) : body(b) {}
    const std::string* body;
    std::atomic<bool> done{false};
  };

  void Run() {
    std::vector<std::shared_ptr<Pending>> batch;
    std::string bytes;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return !queue_.empty(); });
        batch.assign(queue_.begin(), queue_.end());
        queue_.clear();
      }
      bytes.clear();
      for (const auto& p : batch) bytes += *p->body + "\n";
      if (::write(fd_, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size()) ||
          ::fdatasync(fd_) != 0) {
        std::perror("bare_httplib_server: write");
        std::exit(1);
      }
      for (const auto& p : batch) {
        p->done.store(true);
        p->done.notify_one();
      }
    }
  }

  int fd_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Pending>> queue_;
  std::thread writer_;
};

}  // namespace

int main(int argc, char** argv) {
  const bool durable = argc == 4 && std::strcmp(argv[2], "--durable") == 0;
  if (argc != 2 && !durable) {
    std::fprintf(stderr, "usage: bare_httplib_server PORT [--durable FILE]\n");
    return 2;
  }
  std::unique_ptr<GroupCommitFile> log;
  if (durable) log = std::make_unique<GroupCommitFile>(argv[3]);
  const std::string job =
      R"({"job_id":"0f6c9c3e-7c4e-4f57-9f3e-2a9d7b1f4a10","type":"default","status":"pending",)"
      R"("user_id":"default","description":"","input":{},"data":{},"labels":{},"progress":null,)"
      R"("hitl":null,"result":null,"error":null,"worker":null,"lease_expires_at":null,"attempt":0,)"
      R"("max_attempts":3,"version":1,"created_at":"2026-11-28T12:00:00.123Z",)"
      R"("updated_at":"2026-11-28T12:00:00.123Z","started_at":null,"finished_at":null,"ttl_seconds":3600})";
  httplib::Server server;
  int listen_fd = -1;
  server.new_task_queue = [] { return new httplib::ThreadPool(64); };
  server.set_tcp_nodelay(true);
  server.set_keep_alive_max_count(100000);
  server.set_socket_options([&](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    listen_fd = sock;
  });
  server.Post("/api/v1/jobs", [&](const httplib::Request& req, httplib::Response& res) {
    if (log) log->Append(req.body);
    res.status = 201;
    res.set_content(job, "application/json; charset=utf-8");
  });
  server.Get(R"(/api/v1/jobs/([^/]+))", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(job, "application/json; charset=utf-8");
  });
  if (!server.bind_to_port("127.0.0.1", std::stoi(argv[1]))) return 1;
  ::listen(listen_fd, 4096);
  std::printf("bare httplib serving on 127.0.0.1:%s\n", argv[1]);
  std::fflush(stdout);
  server.listen_after_bind();
}
