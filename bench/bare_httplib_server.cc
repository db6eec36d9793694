// The HTTP ceiling: a bare cpp-httplib server tuned as jobstore's is (TCP_NODELAY, a large pool,
// long keep-alive, backlog 4096), answering fixed job-sized JSON without storing anything.
//   bare_httplib_server PORT [--durable FILE]
// With --durable, each POST's body is first made durable the cheapest way a group commit can
// (plain_group_commit.h: one write() and one fdatasync() per batch, nothing parsed, decided or
// indexed): the ceiling of any durable server built on cpp-httplib's thread per connection.
//
// Besides creates it answers what jobstore's Node Worker sends (bench/peers, the worker ceiling):
// POST /jobs/batch adds its entries to a count of pending jobs; POST /jobs/claim and the `next`
// of POST /jobs/finish take from that count and answer fixed running jobs with fresh ids; each
// finish entry counts as completed (GET /stats). Nothing else of a job is kept: the bodies are
// only scanned for what the answer must echo (job ids, entry and max_jobs counts).
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include <httplib.h>

#include "plain_group_commit.h"

namespace {

// What a worker's requests take from and add to: counts only.
struct BareQueue {
  std::atomic<std::int64_t> pending{0};
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> next_id{0};

  // Takes up to `want` pending jobs; returns how many it took.
  std::int64_t Take(std::int64_t want) {
    want = std::max<std::int64_t>(want, 0);
    std::int64_t have = pending.load();
    while (have > 0 && !pending.compare_exchange_weak(have, have - std::min(want, have))) {
    }
    return have > 0 ? std::min(want, have) : 0;
  }

  // `n` running jobs, each with a fresh id, as a JSON array's elements.
  std::string RunningJobs(std::int64_t n) {
    std::string out;
    for (std::int64_t i = 0; i < n; ++i) {
      out += i ? "," : "";
      out += R"({"job_id":"bare-)" + std::to_string(next_id.fetch_add(1)) +
             R"(","type":"bench","status":"running","user_id":"default","description":"",)"
             R"("input":{"n":0},"data":{},"labels":{},"progress":null,"hitl":null,"result":null,)"
             R"("error":null,"worker":"w","lease_expires_at":"2026-11-28T12:01:00.123Z",)"
             R"("lease_seconds":60,"attempt":1,"max_attempts":3,"version":2,)"
             R"("created_at":"2026-11-28T12:00:00.123Z","updated_at":"2026-11-28T12:00:00.123Z",)"
             R"("started_at":"2026-11-28T12:00:00.123Z","finished_at":null,"ttl_seconds":3600})";
    }
    return out;
  }
};

std::size_t Count(std::string_view text, std::string_view what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string_view::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The integer after `"key":` in `text` (after position `from`), or `fallback`.
std::int64_t IntAfter(std::string_view text, std::string_view key, std::int64_t fallback,
                      std::size_t from = 0) {
  const std::size_t at = text.find(key, from);
  if (at == std::string_view::npos) return fallback;
  return std::strtoll(std::string(text.substr(at + key.size(), 20)).c_str(), nullptr, 10);
}

}  // namespace

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
  BareQueue queue;
  constexpr const char* kJson = "application/json; charset=utf-8";
  server.Post("/api/v1/jobs/batch", [&](const httplib::Request& req, httplib::Response& res) {
    if (log) log->Append(req.body + "\n");
    const auto n = static_cast<std::int64_t>(Count(req.body, "\"type\":"));
    std::string text = "{\"jobs\":[";
    for (std::int64_t i = 0; i < n; ++i) {
      text += (i ? "," : "") + std::string(R"({"job_id":"bare-new","version":1})");
    }
    queue.pending += n;
    res.status = 201;
    res.set_content(text + "]}", kJson);
  });
  server.Post("/api/v1/jobs/claim", [&](const httplib::Request& req, httplib::Response& res) {
    const std::int64_t taken = queue.Take(IntAfter(req.body, "\"max_jobs\":", 1));
    if (taken == 0) {  // none: a long-poll waits (at most a second here), then 204
      const double wait = req.has_param("wait") ? std::atof(req.get_param_value("wait").c_str()) : 0;
      std::this_thread::sleep_for(std::chrono::duration<double>(std::min(wait, 1.0)));
      res.status = 204;
      return;
    }
    if (log) log->Append(req.body + "\n");
    res.set_content("{\"jobs\":[" + queue.RunningJobs(taken) + "]}", kJson);
  });
  server.Post("/api/v1/jobs/finish", [&](const httplib::Request& req, httplib::Response& res) {
    if (log) log->Append(req.body + "\n");
    std::string_view body = req.body;
    std::string text = "{\"results\":[";
    std::size_t entries = 0;
    const std::string_view id_key = "\"job_id\":\"";
    for (std::size_t at = body.find(id_key); at != std::string_view::npos;
         at = body.find(id_key, at + 1)) {
      const std::size_t start = at + id_key.size();
      const std::string_view id = body.substr(start, body.find('"', start) - start);
      text += (entries++ ? "," : "") + std::string(R"({"job_id":")") + std::string(id) +
              R"(","status":200,"version":3})";
    }
    queue.completed += entries;
    text += "]";
    const std::size_t next = body.find("\"next\":");
    if (next != std::string_view::npos) {
      const std::int64_t taken = queue.Take(IntAfter(body, "\"max_jobs\":", 1, next));
      text += ",\"next\":[" + queue.RunningJobs(taken) + "]";
    }
    res.set_content(text + "}", kJson);
  });
  server.Get("/api/v1/stats", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"jobs":{"completed":)" + std::to_string(queue.completed.load()) +
                        R"(},"log":{"sync":")" + (log ? "always" : "none") + R"("}})",
                    kJson);
  });
  if (!server.bind_to_port("127.0.0.1", std::stoi(argv[1]))) return 1;
  ::listen(listen_fd, 4096);
  std::printf("bare httplib serving on 127.0.0.1:%s\n", argv[1]);
  std::fflush(stdout);
  server.listen_after_bind();
}
