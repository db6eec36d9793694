// Connection limits against the real server: clients that stall, trickle or pile up must not
// hold it. --client-timeout bounds how long one connection may wait for a client;
// --max-connections bounds the threads; connections beyond it wait until one frees.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <thread>
#include <vector>

#include "support/raw_socket.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

namespace jobstore {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::RawSocket;
using testing::Reply;
using testing::ServerProcess;
using testing::TempDir;

// The most a TCP send buffer may grow to on this machine (tcp_wmem's third field), 4 MB when
// it cannot be read.
std::size_t SendBufferMaximum() {
  std::ifstream in("/proc/sys/net/ipv4/tcp_wmem");
  std::size_t minimum = 0, initial = 0, maximum = 0;
  if (in >> minimum >> initial >> maximum && maximum > 0) return maximum;
  return 4u << 20;
}

double MsSince(steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(steady_clock::now() - t).count();
}

TEST(SlowClients, AClientThatStopsMidRequestIsDroppedAfterTheClientTimeout) {
  TempDir dir;
  ServerProcess s(dir.Sub("data"), {"--client-timeout", "500ms"});
  ASSERT_TRUE(s.started());
  RawSocket half(s.port());
  ASSERT_TRUE(half.connected());
  ASSERT_TRUE(half.Send("POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le"));
  auto start = steady_clock::now();
  bool closed = false;
  half.ReadUntilClosed(milliseconds(5000), &closed);
  double waited = MsSince(start);
  EXPECT_TRUE(closed);
  EXPECT_GE(waited, 400);
  EXPECT_LT(waited, 2500);
  EXPECT_EQ(s.Get("/api/v1/stats").body["log"]["last_seq"], 0);  // nothing was written
}

TEST(SlowClients, AClientThatNeverReadsIsDroppedAfterTheClientTimeout) {
  TempDir dir;
  ServerProcess s(dir.Sub("data"), {"--client-timeout", "500ms"});
  ASSERT_TRUE(s.started());
  std::vector<nlohmann::json> batch;
  for (int i = 0; i < 300; ++i) batch.push_back({{"input", {{"text", std::string(3000, 'x')}}}});
  ASSERT_EQ(s.Post("/api/v1/jobs/batch", {{"jobs", batch}}).status, 201);
  // Ask for ~1 MB many times over and read none of it: the socket buffers fill, the server's
  // write waits, and the client timeout ends it. The client's receive buffer is fixed small and
  // more answers are asked for than the server's largest send buffer (tcp_wmem's maximum) holds,
  // so the buffers fill on any machine (a CI machine once took all 20 answers of 18 MB unread).
  const std::size_t answer_bytes = 300 * 3000;
  const std::size_t asked = SendBufferMaximum() / answer_bytes + 12;
  RawSocket greedy(s.port(), 64 * 1024);
  std::string request = "GET /api/v1/jobs?limit=300 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  for (std::size_t i = 0; i < asked; ++i) greedy.Send(request);
  auto start = steady_clock::now();
  Reply other = s.Get("/api/v1/jobs?limit=1");
  // Another client is answered; how soon is printed, not asserted (this also runs under TSan on
  // a busy machine). That the stuck writer is dropped by the client timeout is asserted below.
  EXPECT_EQ(other.status, 200);
  const double other_ms = MsSince(start);
  std::printf("[ measured ] another client answered after %.1f ms beside the stuck writer\n",
              other_ms);
  // The server runs the next pipelined request only once the last answer is written, so when its
  // count of list answers has stood still for 2 s, its write has waited far beyond the 500 ms
  // client timeout (an answer takes well under a second to build, even under a sanitizer). A
  // fixed sleep raced the slow build of the answers under TSan: the reading began first.
  const std::string counter = "jobstore_http_requests_total{route=\"/api/v1/jobs\",method=\"GET\",status=\"200\"} ";
  auto list_answers = [&] {
    const std::string text = s.Get("/metrics").raw;
    const auto pos = text.find(counter);
    return pos == std::string::npos ? std::string() : text.substr(pos + counter.size(), text.find('\n', pos) - pos - counter.size());
  };
  std::string last = list_answers();
  auto still_since = steady_clock::now();
  for (auto give_up = steady_clock::now() + std::chrono::seconds(60);
       steady_clock::now() - still_since < milliseconds(2000) && steady_clock::now() < give_up;) {
    std::this_thread::sleep_for(milliseconds(100));
    if (std::string now = list_answers(); now != last) {
      last = now;
      still_since = steady_clock::now();
    }
  }
  bool closed = false;
  std::string got = greedy.ReadUntilClosed(milliseconds(3000), &closed);
  EXPECT_TRUE(closed);
  // Dropped mid-way: fewer answers than were asked for ever arrived.
  std::size_t answers = 0;
  for (auto pos = got.find("HTTP/1.1 200"); pos != std::string::npos; pos = got.find("HTTP/1.1 200", pos + 1)) {
    ++answers;
  }
  std::printf("[ measured ] the non-reading client got %zu of %zu answers (%zu bytes) before the drop\n",
              answers, asked, got.size());
  EXPECT_LT(answers, asked);
}

TEST(SlowClients, HundredSlowlorisConnectionsDoNotDelayOtherClients) {
  TempDir dir;
  ServerProcess s(dir.Sub("data"), {"--client-timeout", "1s"});
  ASSERT_TRUE(s.started());
  std::vector<std::unique_ptr<RawSocket>> loris;
  for (int i = 0; i < 100; ++i) {
    loris.push_back(std::make_unique<RawSocket>(s.port()));
    ASSERT_TRUE(loris.back()->connected());
    loris.back()->Send("POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  }
  std::atomic<bool> stop{false};
  std::thread trickle([&] {  // one header byte per connection every 300 ms: never timed out
    while (!stop) {
      for (auto& c : loris) c->Send("X");
      std::this_thread::sleep_for(milliseconds(300));
    }
  });
  double slowest = 0;
  for (int i = 0; i < 50; ++i) {
    auto start = steady_clock::now();
    Reply created = s.Post("/api/v1/jobs");
    ASSERT_EQ(created.status, 201);
    ASSERT_EQ(s.Get("/api/v1/jobs/" + created.body["job_id"].get<std::string>()).status, 200);
    slowest = std::max(slowest, MsSince(start));
    std::this_thread::sleep_for(milliseconds(20));
  }
  stop = true;
  trickle.join();
  // Behaviour, not a figure (this also runs under TSan on a busy machine): every request was
  // answered while all 100 slow connections were still held open by their trickle, which a
  // server that waited for them would never do. The figure is printed for the record.
  std::printf("[ measured ] slowest create+get beside 100 slowloris connections: %.1f ms\n", slowest);
  for (auto& c : loris) {
    bool closed = false;
    c->ReadUntilClosed(milliseconds(1), &closed);
    EXPECT_FALSE(closed);  // still open: the requests above ran beside them, not after them
  }
}

TEST(SlowClients, ConnectionsBeyondMaxConnectionsWaitUntilASilentOneIsDropped) {
  TempDir dir;
  ServerProcess s(dir.Sub("data"), {"--client-timeout", "1s", "--max-connections", "4"});
  ASSERT_TRUE(s.started());
  std::vector<std::unique_ptr<RawSocket>> silent;
  for (int i = 0; i < 4; ++i) {
    silent.push_back(std::make_unique<RawSocket>(s.port()));
    ASSERT_TRUE(silent.back()->connected());
  }
  std::this_thread::sleep_for(milliseconds(100));  // all four are now on the server's threads
  auto start = steady_clock::now();
  auto client = s.Client();
  auto r = client->Get("/healthz");
  double waited = MsSince(start);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  std::printf("[ measured ] the fifth connection was served after %.0f ms\n", waited);
  // It waited for a thread (the cap holds), and only until the silent ones timed out.
  EXPECT_GE(waited, 700);
  EXPECT_LT(waited, 3000);
}

}  // namespace
}  // namespace jobstore
