// The HTTP ceiling: a bare cpp-httplib server tuned as jobstore's is (TCP_NODELAY, a large pool,
// long keep-alive, backlog 4096), answering fixed job-sized JSON without storing anything.
//   bare_httplib_server PORT [--durable FILE]
// With --durable, each POST's body is first made durable the cheapest way a group commit can
// (plain_group_commit.h: one write() and one fdatasync() per batch, nothing parsed, decided or
// indexed): the ceiling of any durable server built on cpp-httplib's thread per connection.
#include <sys/socket.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include <httplib.h>

#include "plain_group_commit.h"

int main(int argc, char** argv) {
  const bool durable = argc == 4 && std::strcmp(argv[2], "--durable") == 0;
  if (argc != 2 && !durable) {
    std::fprintf(stderr, "usage: bare_httplib_server PORT [--durable FILE]\n");
    return 2;
  }
  std::unique_ptr<jobstore::bench::PlainGroupCommit> log;
  if (durable) log = std::make_unique<jobstore::bench::PlainGroupCommit>(argv[3]);
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
    if (log) log->Append(req.body + "\n");
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
