// Forwarded writes (several instances), the HTTP side, in one process: a follower's API whose
// cluster hooks name a scripted writer on a loopback socket. What the scripted writer does to
// each attempt (no answer, a not-the-writer 503, an answer) decides what the client must see:
// a write an earlier attempt may have left with a dead writer is never answered 503 (the client
// would retry it into a second job); a refusal alone is retried briefly, then passed on.
// The cluster suite (cluster_test.cc) shows the same with real instances and SIGKILL.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include "jobstore/http/api_server.h"
#include "jobstore/store/job_store.h"
#include "support/temp_dir.h"

namespace jobstore {
namespace {

using testing::TempDir;
using Clock = std::chrono::steady_clock;

// A writer that answers each request it reads as its script says (the last step repeats):
// kDrop closes the connection without an answer, kRefuse answers 503 with X-Jobstore-Not-Writer,
// kCreate answers 201 with a job.
class ScriptedWriter {
 public:
  enum Step { kDrop, kRefuse, kCreate };

  explicit ScriptedWriter(std::vector<Step> script) : script_(std::move(script)) {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(listen(listener_, 16), 0);
    socklen_t len = sizeof addr;
    getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedWriter() {
    shutdown(listener_, SHUT_RDWR);
    close(listener_);
    thread_.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Each request's head, in arrival order.
  std::vector<std::string> heads() {
    std::lock_guard lock(mu_);
    return heads_;
  }

 private:
  void Serve() {
    for (std::size_t n = 0;; ++n) {
      const int fd = accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      const std::string head = ReadRequest(fd);
      {
        std::lock_guard lock(mu_);
        heads_.push_back(head);
      }
      const Step step = script_[std::min(n, script_.size() - 1)];
      std::string answer;
      if (step == kRefuse) {
        const std::string body = R"({"error":{"code":"unavailable","message":"not the writer"}})";
        answer = "HTTP/1.1 503 Service Unavailable\r\nX-Jobstore-Not-Writer: b\r\n"
                 "Content-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                 std::to_string(body.size()) + "\r\n\r\n" + body;
      } else if (step == kCreate) {
        const std::string body = R"({"job_id":"made-once","status":"pending"})";
        answer = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                 "Connection: close\r\nContent-Length: " +
                 std::to_string(body.size()) + "\r\n\r\n" + body;
      }
      if (!answer.empty()) (void)!write(fd, answer.data(), answer.size());
      close(fd);
    }
  }
  // Reads the head and a Content-Length body; returns the head.
  static std::string ReadRequest(int fd) {
    std::string data;
    char buf[4096];
    std::size_t want = std::string::npos;
    while (data.size() < want) {
      const ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) break;
      data.append(buf, static_cast<std::size_t>(n));
      const auto end = data.find("\r\n\r\n");
      if (end != std::string::npos && want == std::string::npos) {
        std::size_t length = 0;
        const auto at = data.find("Content-Length: ");
        if (at != std::string::npos && at < end) length = std::stoul(data.substr(at + 16));
        want = end + 4 + length;
      }
    }
    return data.substr(0, data.find("\r\n\r\n"));
  }

  const std::vector<Step> script_;
  int listener_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> heads_;
};

std::string HeaderIn(const std::string& head, const std::string& name) {
  const auto at = head.find("\r\n" + name + ": ");
  if (at == std::string::npos) return "";
  const auto from = at + 4 + name.size();
  return head.substr(from, head.find("\r\n", from) - from);
}

// A follower's API: not the writer; the lease names `writer_address` (empty: none known).
class Follower {
 public:
  Follower(const TempDir& dir, std::function<std::string()> writer_address,
           std::function<bool()> is_writer = [] { return false; }) {
    StoreOptions so;
    so.data_dir = dir.Sub("data");
    auto store = JobStore::Open(so);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    http::ServerOptions options;
    options.port = 0;
    server_ = std::make_unique<http::ApiServer>(options);
    EXPECT_TRUE(server_->Bind().ok());
    http::ClusterHooks hooks;
    hooks.instance = "follower-a";
    hooks.is_writer = std::move(is_writer);
    hooks.writer_address = std::move(writer_address);
    hooks.ready = [] { return Status::Ok(); };
    hooks.render_metrics = [](std::string&) {};
    server_->SetCluster(std::move(hooks));
    server_->SetStore(store_.get());
    serving_ = std::thread([this] { server_->Run(); });
  }
  ~Follower() {
    server_->Stop();
    serving_.join();
  }
  int port() const { return server_->port(); }
  JobStore& store() { return *store_; }

 private:
  std::unique_ptr<JobStore> store_;
  std::unique_ptr<http::ApiServer> server_;
  std::thread serving_;
};

TEST(WriteForwarding, AWriteADeadWriterMayHaveTakenIsSentAgainPastRefusalsUntilAWriterAnswers) {
  // The first writer reads the write and dies without an answer; the next refuses while its
  // epoch opens (not the writer yet), then answers. Before, the client got that first 503.
  using S = ScriptedWriter;
  ScriptedWriter writer({S::kDrop, S::kRefuse, S::kRefuse, S::kRefuse, S::kRefuse, S::kCreate});
  TempDir dir;
  Follower follower(dir, [&] { return writer.address(); });
  httplib::Client client("127.0.0.1", follower.port());
  client.set_read_timeout(30, 0);
  auto r = client.Post("/api/v1/jobs", R"({"type":"t"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201) << r->body;
  EXPECT_NE(r->body.find("made-once"), std::string::npos) << r->body;
  const auto heads = writer.heads();
  ASSERT_EQ(heads.size(), 6u);
  const std::string id = HeaderIn(heads[0], "X-Jobstore-Request-Id");
  EXPECT_FALSE(id.empty());
  for (const auto& h : heads) {
    EXPECT_EQ(HeaderIn(h, "X-Jobstore-Request-Id"), id) << "every attempt under one request id";
    EXPECT_EQ(HeaderIn(h, "X-Jobstore-Forwarded"), "follower-a");
  }
  EXPECT_EQ(follower.store().log().LastSeq(), 0u) << "the follower applied nothing itself";
}

TEST(WriteForwarding, ARefusalAloneIsSentAgainForAFewSecondsThenAnswered503) {
  ScriptedWriter writer({ScriptedWriter::kRefuse});
  TempDir dir;
  Follower follower(dir, [&] { return writer.address(); });
  httplib::Client client("127.0.0.1", follower.port());
  client.set_read_timeout(30, 0);
  const auto start = Clock::now();
  auto r = client.Post("/api/v1/jobs", R"({"type":"t"})", "application/json");
  const double took = std::chrono::duration<double>(Clock::now() - start).count();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  EXPECT_NE(r->body.find("unavailable"), std::string::npos) << r->body;
  EXPECT_GE(writer.heads().size(), 3u) << "sent again while the writer changes";
  EXPECT_GE(took, 2.9);
  EXPECT_LT(took, 8.0) << "a refusal with nothing taken is passed on within a bound";
}

TEST(WriteForwarding, AForwardedWriteOnANonWriterIsRefusedWithTheHeaderOrServedOnceItsEpochOpens) {
  TempDir dir;
  std::atomic<bool> writing{false};
  std::string named = "127.0.0.1:1";  // the lease names another instance
  std::mutex mu;
  Follower follower(
      dir,
      [&] {
        std::lock_guard lock(mu);
        return named;
      },
      [&] { return writing.load(); });
  httplib::Client client("127.0.0.1", follower.port());
  client.set_read_timeout(30, 0);
  const httplib::Headers forwarded = {{"X-Jobstore-Forwarded", "follower-b"},
                                      {"X-Jobstore-Request-Id", "follower-b-1"}};
  auto refused = client.Post("/api/v1/jobs", forwarded, R"({"type":"t"})", "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503) << refused->body;
  EXPECT_EQ(refused->get_header_value("X-Jobstore-Not-Writer"), "follower-a");
  EXPECT_EQ(follower.store().log().LastSeq(), 0u);

  {
    std::lock_guard lock(mu);
    named.clear();  // the lease is this instance's own; its epoch opens 300 ms later
  }
  std::thread opens([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    writing = true;
  });
  auto served = client.Post("/api/v1/jobs", forwarded, R"({"type":"t"})", "application/json");
  opens.join();
  ASSERT_TRUE(served);
  EXPECT_EQ(served->status, 201) << served->body;
  EXPECT_EQ(follower.store().log().LastSeq(), 1u);
  auto again = client.Post("/api/v1/jobs", forwarded, R"({"type":"t"})", "application/json");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200) << "the same request id is answered from the first: " << again->body;
  EXPECT_EQ(follower.store().log().LastSeq(), 1u);
}

}  // namespace
}  // namespace jobstore
