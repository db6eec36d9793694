// The server as a process: auth, readiness, restart, crash, shutdown, concurrency, and the
// OpenAPI document checked against the router.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "jobstore/http/api_server.h"
#include "jobstore/store/job_store.h"
#include "support/log_checks.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

namespace jobstore {
namespace {

using nlohmann::json;
using testing::Reply;
using testing::ServerProcess;
using testing::TempDir;

TEST(OpenApi, DocumentsExactlyTheRoutesTheRouterServes) {
  http::ApiServer server(http::ServerOptions{});
  std::set<std::pair<std::string, std::string>> routed;
  for (auto [method, path] : server.Routes()) routed.emplace(method, path);
  json doc = json::parse(http::OpenApiDocument());
  std::set<std::pair<std::string, std::string>> documented;
  for (const auto& [path, ops] : doc["paths"].items()) {
    for (const auto& [method, op] : ops.items()) {
      std::string upper = method;
      for (char& c : upper) c = static_cast<char>(std::toupper(c));
      documented.emplace(upper, path);
      EXPECT_TRUE(op.contains("responses")) << method << " " << path;
    }
  }
  for (const auto& r : routed) EXPECT_TRUE(documented.count(r)) << "undocumented: " << r.first << " " << r.second;
  for (const auto& d : documented) EXPECT_TRUE(routed.count(d)) << "documented, not routed: " << d.first << " " << d.second;
  EXPECT_GE(routed.size(), 23u);
}

TEST(Readiness, ApiAnswers503UntilTheStoreIsReady) {
  TempDir dir;
  http::ServerOptions options;
  options.port = 0;
  http::ApiServer server(options);
  ASSERT_TRUE(server.Bind().ok());
  std::thread serving([&] { server.Run(); });
  httplib::Client client("127.0.0.1", server.port());
  EXPECT_EQ(client.Get("/healthz")->status, 200);
  EXPECT_EQ(client.Get("/readyz")->status, 503);
  auto early = client.Post("/api/v1/jobs");
  EXPECT_EQ(early->status, 503);
  EXPECT_NE(early->body.find("unavailable"), std::string::npos);
  StoreOptions so;
  so.data_dir = dir.Sub("data");
  auto store = JobStore::Open(so);
  ASSERT_TRUE(store.ok());
  server.SetStore(store->get());
  EXPECT_EQ(client.Get("/readyz")->status, 200);
  EXPECT_EQ(client.Post("/api/v1/jobs")->status, 201);
  server.Stop();
  serving.join();
}

class ServerTest : public ::testing::Test {
 protected:
  TempDir dir_;
};

TEST_F(ServerTest, BearerTokenGuardsTheApiButNotOpsRoutes) {
  std::ofstream(dir_.Sub("token")) << "s3cret-token\n";
  ServerProcess s(dir_.Sub("data"), {"--token-file", dir_.Sub("token")});
  ASSERT_TRUE(s.started());
  Reply none = s.Post("/api/v1/jobs");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.body["error"]["code"], "unauthenticated");
  EXPECT_EQ(s.Post("/api/v1/jobs", nullptr, {{"Authorization", "Bearer wrong"}}).status, 401);
  EXPECT_EQ(s.Get("/api/v1/jobs", {{"Authorization", "Bearer s3cret-token"}}).status, 200);
  EXPECT_EQ(s.Post("/api/v1/jobs", nullptr, {{"Authorization", "Bearer s3cret-token"}}).status, 201);
  EXPECT_EQ(s.Get("/healthz").status, 200);
  EXPECT_EQ(s.Get("/readyz").status, 200);
  EXPECT_EQ(s.Get("/metrics").status, 200);
  for (const auto& line : s.Lines()) EXPECT_EQ(line.find("s3cret-token"), std::string::npos);
}

TEST_F(ServerTest, StartupLineNamesDataDirSeqRangeJobsAndReplayTime) {
  ServerProcess s(dir_.Sub("data"));
  ASSERT_TRUE(s.started());
  bool found = false;
  for (const auto& line : s.Lines()) {
    if (line.find("serving") != std::string::npos) {
      found = line.find(dir_.Sub("data")) != std::string::npos &&
              line.find("jobs loaded") != std::string::npos &&
              line.find("seq ") != std::string::npos && line.find(" ms") != std::string::npos;
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(ServerTest, RestartKeepsEveryJobAndTheWholeFeed) {
  json jobs_before, feed_before;
  {
    ServerProcess s(dir_.Sub("data"));
    ASSERT_TRUE(s.started());
    for (int i = 0; i < 20; ++i) {
      std::string id = s.Post("/api/v1/jobs", {{"labels", {{"n", std::to_string(i)}}}}).body["job_id"];
      if (i % 2) s.Post("/api/v1/jobs/" + id + "/start", {{"worker", "w"}});
      if (i % 4 == 1) s.Post("/api/v1/jobs/" + id + "/hitl", {{"prompt", {{"q", i}}}});
      if (i % 4 == 3) s.Post("/api/v1/jobs/" + id + "/complete", {{"result", i}});
    }
    jobs_before = s.Get("/api/v1/jobs?limit=1000").body;
    feed_before = s.Get("/api/v1/events?limit=1000").body;
    EXPECT_EQ(s.Terminate(), 0);  // SIGTERM: a clean exit
  }
  ServerProcess s(dir_.Sub("data"));
  ASSERT_TRUE(s.started());
  EXPECT_EQ(s.Get("/api/v1/jobs?limit=1000").body, jobs_before);
  EXPECT_EQ(s.Get("/api/v1/events?limit=1000").body, feed_before);
}

TEST_F(ServerTest, SigkillDuringSixteenWritersLosesNoAcknowledgedWrite) {
  std::mutex mu;
  std::set<std::string> acked;
  {
    ServerProcess s(dir_.Sub("data"));
    ASSERT_TRUE(s.started());
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int t = 0; t < 16; ++t) {
      writers.emplace_back([&, t] {
        for (int i = 0; !stop.load(); ++i) {
          std::string id = "w" + std::to_string(t) + "-" + std::to_string(i);
          Reply r = s.Post("/api/v1/jobs", {{"job_id", id}});
          if (r.status == 201) {
            Reply st = s.Post("/api/v1/jobs/" + id + "/start");
            std::lock_guard lock(mu);
            acked.insert(id + (st.status == 200 ? ":started" : ""));
          } else if (r.status == 0) {
            return;  // the server is gone
          }
        }
      });
    }
    while (true) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      std::lock_guard lock(mu);
      if (acked.size() >= 500) break;
    }
    s.Crash();  // SIGKILL while the writers are mid-flight
    stop = true;
    for (auto& w : writers) w.join();
  }
  ServerProcess s(dir_.Sub("data"));
  ASSERT_TRUE(s.started());
  for (const auto& entry : acked) {
    std::string id = entry.substr(0, entry.find(':'));
    Reply r = s.Get("/api/v1/jobs/" + id);
    ASSERT_EQ(r.status, 200) << id;
    if (entry.find(":started") != std::string::npos) {
      EXPECT_EQ(r.body["status"], "running") << id;
    }
  }
  testing::ExpectGaplessFeed(s);
}

TEST_F(ServerTest, TwoHundredLongPollsDoNotStarveOtherClients) {
  ServerProcess s(dir_.Sub("data"));
  ASSERT_TRUE(s.started());
  std::vector<std::string> ids;
  json batch = json::array();
  for (int i = 0; i < 200; ++i) batch.push_back({{"job_id", "lp-" + std::to_string(i)}});
  ASSERT_EQ(s.Post("/api/v1/jobs/batch", {{"jobs", batch}}).status, 201);
  std::atomic<int> woken{0};
  std::vector<std::thread> pollers;
  for (int i = 0; i < 200; ++i) {
    pollers.emplace_back([&, i] {
      auto client = s.Client();
      auto r = client->Get("/api/v1/jobs/lp-" + std::to_string(i) + "?wait=50&after_version=1");
      if (r && r->status == 200 && json::parse(r->body)["version"] == 2) woken++;
    });
  }
  // Wait until all 200 are parked in the server.
  auto parked = [&] {
    Reply m = s.Get("/metrics");
    return m.raw.find("jobstore_waiters 200") != std::string::npos;
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!parked() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(parked());
  // Creates and gets still answer at once: a starved server would hold them until the polls end.
  double slowest_ms = 0;
  for (int i = 0; i < 50; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    Reply c = s.Post("/api/v1/jobs");
    ASSERT_EQ(c.status, 201);
    ASSERT_EQ(s.Get("/api/v1/jobs/" + c.body["job_id"].get<std::string>()).status, 200);
    slowest_ms = std::max(slowest_ms, std::chrono::duration<double, std::milli>(
                                          std::chrono::steady_clock::now() - t0).count());
  }
  std::printf("slowest create+get with 200 long-polls open: %.1f ms\n", slowest_ms);
  EXPECT_LT(slowest_ms, 2000);  // generous for a loaded CI machine; polls run for 50 s
  for (int i = 0; i < 200; ++i) s.Post("/api/v1/jobs/lp-" + std::to_string(i) + "/start");
  for (auto& p : pollers) p.join();
  EXPECT_EQ(woken.load(), 200);
}

TEST_F(ServerTest, SigtermReleasesLongPollsAndExitsCleanly) {
  ServerProcess s(dir_.Sub("data"));
  ASSERT_TRUE(s.started());
  std::string id = s.Post("/api/v1/jobs").body["job_id"];
  Reply waited;
  std::thread poller([&] { waited = s.Get("/api/v1/jobs/" + id + "?wait=60"); });
  std::thread streamer([&] {
    auto c = s.Client();
    c->Get("/api/v1/events/stream?after=1", [](const char*, std::size_t) { return true; });
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(s.Terminate(), 0);
  poller.join();
  streamer.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));
  EXPECT_EQ(waited.status, 200);
  bool clean = false;
  for (const auto& line : s.Lines()) clean = clean || line.find("stopped cleanly") != std::string::npos;
  EXPECT_TRUE(clean);
}

// A client that goes away before its (large) answer is written must cost only that connection
// (a write to the closed socket raises SIGPIPE unless it is ignored).
TEST_F(ServerTest, ClientsThatHangUpMidResponseDoNotKillTheServer) {
  ServerProcess s(dir_.Sub("data"), {"--max-body-bytes", "20000000"});
  ASSERT_TRUE(s.started());
  json batch = json::array();  // 8 MB of jobs: more than a loopback socket buffers
  for (int i = 0; i < 1000; ++i) batch.push_back({{"input", {{"text", std::string(8000, 'x')}}}});
  ASSERT_EQ(s.Post("/api/v1/jobs/batch", {{"jobs", batch}}).status, 201);
  const std::string request = "GET /api/v1/jobs?limit=1000 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  for (int i = 0; i < 30; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(s.port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
    ::close(fd);  // the server's first write draws an RST; its next one raises SIGPIPE
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(s.Get("/healthz").status, 200);
  EXPECT_EQ(s.Get("/api/v1/jobs?limit=1").status, 200);
}

TEST_F(ServerTest, ServesHttpsWithACertificateAndKey) {
  const std::string cert = dir_.Sub("cert.pem"), key = dir_.Sub("key.pem");
  const std::string make_cert =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      "-addext subjectAltName=IP:127.0.0.1 -keyout " + key + " -out " + cert + " 2>/dev/null";
  ASSERT_EQ(std::system(make_cert.c_str()), 0) << "openssl could not make a certificate";
  testing::ChildProcess server({JOBSTORE_BINARY, "serve", "--data-dir", dir_.Sub("data"),
                                "--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key},
                               true);
  static const std::regex kServing(R"(serving https://127\.0\.0\.1:(\d+))");
  std::string line;
  int port = 0;
  while (port == 0 && server.ReadLine(&line)) {
    std::smatch m;
    if (std::regex_search(line, m, kServing)) port = std::stoi(m[1]);
  }
  ASSERT_GT(port, 0);
  httplib::SSLClient tls("127.0.0.1", port);
  tls.set_ca_cert_path(cert.c_str());
  tls.enable_server_certificate_verification(true);
  auto created = tls.Post("/api/v1/jobs");
  ASSERT_TRUE(created) << httplib::to_string(created.error());
  EXPECT_EQ(created->status, 201);
  EXPECT_EQ(tls.Get("/healthz")->status, 200);
  httplib::Client plain("127.0.0.1", port);
  auto refused = plain.Get("/healthz");
  EXPECT_TRUE(!refused || refused->status != 200);  // plain HTTP gets no answer from a TLS port
  testing::ChildProcess bad({JOBSTORE_BINARY, "serve", "--data-dir", dir_.Sub("data2"), "--listen",
                             "127.0.0.1:0", "--tls-cert", dir_.Sub("missing.pem"), "--tls-key", key},
                            true);
  int status = bad.Wait();
  EXPECT_EQ(WEXITSTATUS(status), 1);
}

TEST_F(ServerTest, SecondServerOnTheSameDirectoryFailsWithExitCode1) {
  ServerProcess first(dir_.Sub("data"));
  ASSERT_TRUE(first.started());
  testing::ChildProcess second({JOBSTORE_BINARY, "serve", "--data-dir", dir_.Sub("data"),
                                "--listen", "127.0.0.1:0"}, true);
  int status = second.Wait();
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
}

}  // namespace
}  // namespace jobstore
