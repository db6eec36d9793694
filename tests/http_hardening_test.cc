// The HTTP front door against a hostile client, on the real server over real sockets: Range
// amplification, request smuggling, pipelining, malformed lengths, unbounded buffering,
// descriptor exhaustion, and the API's own edge cases (after= overflow, repeated filters,
// Idempotency-Key reuse). Each test is one row of the README's threat model.
#include <gtest/gtest.h>
#include <sys/prctl.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/raw_socket.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

namespace jobstore {
namespace {

using std::chrono::milliseconds;
using testing::RawSocket;
using testing::Reply;
using testing::ServerProcess;
using testing::TempDir;

constexpr char kHost[] = "Host: 127.0.0.1\r\n";

class HttpHardeningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(dir_.Sub("data"),
                                              std::vector<std::string>{"--client-timeout", "1s"});
    ASSERT_TRUE(server_->started());
  }
  ServerProcess& s() { return *server_; }
  RawSocket::Exchange Raw(const std::string& bytes, milliseconds wait = milliseconds(3000)) {
    RawSocket sock(s().port());
    EXPECT_TRUE(sock.connected());
    return sock.SendAndRead(bytes, wait);
  }
  std::uint64_t LastSeq() { return s().Get("/api/v1/stats").body["log"]["last_seq"]; }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

std::string Ranges(int n) {
  std::string r = "bytes=";
  for (int i = 0; i < n; ++i) r += i ? ",-1" : "-1";
  return r;
}

TEST_F(HttpHardeningTest, ManyRangesOnAStaticFileGetTheWholeFileOnce) {
  auto e = Raw("GET /dashboard/app.js HTTP/1.1\r\n" + std::string(kHost) + "Range: " +
               Ranges(2000) + "\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(e.Statuses(), std::vector<int>{200});
  EXPECT_EQ(e.raw.find("multipart/byteranges"), std::string::npos);
  EXPECT_LT(e.raw.size(), 200u * 1024);  // the file once, not 2000 times
}

TEST_F(HttpHardeningTest, OneRangeOnAStaticFileIsHonoured) {
  auto e = Raw("GET /dashboard/app.js HTTP/1.1\r\n" + std::string(kHost) +
               "Range: bytes=0-9\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(e.Statuses(), std::vector<int>{206});
  EXPECT_NE(e.raw.find("Content-Range: bytes 0-9/"), std::string::npos);
}

TEST_F(HttpHardeningTest, RangeIsIgnoredOnApiAnswers) {
  ASSERT_EQ(s().Post("/api/v1/jobs", {{"job_id", "big"}, {"input", {{"t", std::string(256 * 1024, 'x')}}}}).status, 201);
  auto e = Raw("GET /api/v1/jobs/big HTTP/1.1\r\n" + std::string(kHost) + "Range: " +
               Ranges(1000) + "\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(e.Statuses(), std::vector<int>{200});
  EXPECT_EQ(e.raw.find("Content-Range"), std::string::npos);
  EXPECT_EQ(e.raw.find("multipart"), std::string::npos);
  EXPECT_LT(e.raw.size(), 300u * 1024);
}

// Each request hides a create of job "hidden" where a second parser could see it.
struct Smuggle {
  const char* name;
  std::string bytes;
};

TEST_F(HttpHardeningTest, RequestSmugglingShapesAre400AndCloseTheConnection) {
  const std::string hidden =
      "POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 19\r\n\r\n"
      "{\"job_id\":\"hidden\"}";
  const std::string h = std::string("POST /api/v1/jobs HTTP/1.1\r\n") + kHost;
  const std::vector<Smuggle> cases = {
      {"Content-Length and chunked", h + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden},
      {"two Content-Lengths", h + "Content-Length: 0\r\nContent-Length: " + std::to_string(hidden.size()) + "\r\n\r\n" + hidden},
      {"space before colon", h + "Content-Length : " + std::to_string(hidden.size()) + "\r\n\r\n" + hidden},
      {"empty Content-Length", h + "Content-Length:\r\n\r\n" + hidden},
      {"chunked, identity", h + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + hidden},
      {"bare LF header line", h + "Transfer-Encoding: chunked\n\r\n0\r\n\r\n" + hidden},
      {"bare CR in a header line", h + "X-A: 1\rTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden},
      {"GET with a body", "GET /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
                              std::to_string(hidden.size()) + "\r\n\r\n" + hidden},
  };
  for (const Smuggle& c : cases) {
    SCOPED_TRACE(c.name);
    auto e = Raw(c.bytes);
    EXPECT_EQ(e.Statuses(), std::vector<int>{400}) << e.raw.substr(0, 300);
    EXPECT_TRUE(e.closed);
    EXPECT_NE(e.raw.find("Connection: close"), std::string::npos);
  }
  EXPECT_EQ(s().Get("/api/v1/jobs/hidden").status, 404);
  EXPECT_EQ(LastSeq(), 0u);
}

TEST_F(HttpHardeningTest, PipelinedRequestsAreAllAnsweredInOrder) {
  const std::string get = "GET /api/v1/jobs/p%d HTTP/1.1\r\n" + std::string(kHost) + "\r\n";
  std::string bytes;
  for (int i = 0; i < 3; ++i) {
    const std::string body = "{\"job_id\":\"p" + std::to_string(i) + "\"}";
    bytes += "POST /api/v1/jobs HTTP/1.1\r\n" + std::string(kHost) + "Content-Length: " +
             std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  bytes += "GET /api/v1/jobs/p2 HTTP/1.1\r\n" + std::string(kHost) + "Connection: close\r\n\r\n";
  auto e = Raw(bytes);  // one send: the requests arrive together
  EXPECT_EQ(e.Statuses(), (std::vector<int>{201, 201, 201, 200}));
  EXPECT_LT(e.raw.find("\"p0\""), e.raw.find("\"p1\""));
  EXPECT_LT(e.raw.find("\"p1\""), e.raw.find("\"p2\""));
}

// The connection holds a fixed-length answer's head back to send it with its body in one
// segment; no head may wait for anything else: a stream's head before its first event, "100
// Continue" before the body it invites, a HEAD answer before the next request on the connection.
TEST_F(HttpHardeningTest, NoResponseHeadWaitsForMoreThanItsOwnBody) {
  {
    RawSocket sock(s().port());
    ASSERT_TRUE(sock.Send("GET /api/v1/events/stream HTTP/1.1\r\n" + std::string(kHost) + "\r\n"));
    bool closed = false;
    const std::string got = sock.ReadUntilClosed(milliseconds(1500), &closed);  // no event yet
    EXPECT_EQ(got.rfind("HTTP/1.1 200", 0), 0u) << got;
    EXPECT_NE(got.find("text/event-stream"), std::string::npos) << got;
  }
  {
    RawSocket sock(s().port());
    const std::string body = R"({"job_id":"c1"})";
    ASSERT_TRUE(sock.Send("POST /api/v1/jobs HTTP/1.1\r\n" + std::string(kHost) +
                          "Expect: 100-continue\r\nContent-Type: application/json\r\n"
                          "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n"));
    bool closed = false;
    // (Well within this server's 1 s client timeout, which would end the body's wait.)
    EXPECT_EQ(sock.ReadUntilClosed(milliseconds(300), &closed), "HTTP/1.1 100 Continue\r\n\r\n");
    EXPECT_EQ(sock.SendAndRead(body, milliseconds(1500)).Statuses(), std::vector<int>{201});
  }
  const std::string head = "HEAD /api/v1/jobs/c1 HTTP/1.1\r\n" + std::string(kHost) + "\r\n";
  const std::string get =
      "GET /api/v1/jobs/c1 HTTP/1.1\r\n" + std::string(kHost) + "Connection: close\r\n\r\n";
  auto e = Raw(head + get);
  EXPECT_EQ(e.Statuses(), (std::vector<int>{200, 200})) << e.raw;
  const auto first = e.raw.find(R"("job_id":"c1")");
  ASSERT_NE(first, std::string::npos) << e.raw;
  EXPECT_GT(first, e.raw.find("HTTP/1.1 200", 1)) << "the HEAD answer carried a body: " << e.raw;
  EXPECT_EQ(e.raw.find(R"("job_id":"c1")", first + 1), std::string::npos) << e.raw;
}

TEST_F(HttpHardeningTest, MalformedContentLengthsAre400) {
  for (const char* length : {"abc", "-1", "2, 2", "1e3", "99999999999999999999999"}) {
    SCOPED_TRACE(length);
    auto e = Raw(std::string("POST /api/v1/jobs HTTP/1.1\r\n") + kHost + "Content-Length: " +
                 length + "\r\n\r\n{}");
    EXPECT_EQ(e.Statuses(), std::vector<int>{400});
    EXPECT_NE(e.raw.find("invalid_argument"), std::string::npos);
    EXPECT_TRUE(e.closed);
  }
  EXPECT_EQ(LastSeq(), 0u);
}

TEST_F(HttpHardeningTest, ABodyShorterThanItsLengthIs400AfterTheClientTimeout) {
  auto e = Raw(std::string("POST /api/v1/jobs HTTP/1.1\r\n") + kHost +
                   "Content-Length: 100\r\n\r\n{\"job_id\":\"short\"}",
               milliseconds(6000));
  EXPECT_EQ(e.Statuses(), std::vector<int>{400});
  EXPECT_TRUE(e.closed);
  EXPECT_EQ(s().Get("/api/v1/jobs/short").status, 404);
}

TEST_F(HttpHardeningTest, AHeaderFloodGets431AndIsNeverBuffered) {
  const long before = s().RssKiB();
  RawSocket sock(s().port());
  sock.Send("GET /api/v1/jobs HTTP/1.1\r\n" + std::string(kHost));
  const std::string line = "X-Pad: " + std::string(8000, 'a') + "\r\n";
  std::size_t sent = 0;
  while (sent < 64u << 20 && sock.Send(line)) sent += line.size();
  bool closed = false;
  const std::string got = sock.ReadUntilClosed(milliseconds(5000), &closed);
  EXPECT_NE(got.find("431"), std::string::npos) << got.substr(0, 200);
  EXPECT_NE(got.find("headers_too_large"), std::string::npos);
  const long after = s().RssKiB();
  std::printf("[ measured ] %zu bytes of headers sent; server RSS %ld -> %ld KiB\n", sent, before,
              after);
  EXPECT_LT(after - before, 50 * 1024);
  EXPECT_EQ(s().Get("/healthz").status, 200);
}

TEST_F(HttpHardeningTest, BodiesOnRoutesThatTakeNoneAreRefusedUnread) {
  const long before = s().RssKiB();
  {  // a large chunked PUT to a path that does not exist
    RawSocket sock(s().port());
    sock.Send("PUT /nowhere HTTP/1.1\r\n" + std::string(kHost) + "Transfer-Encoding: chunked\r\n\r\n");
    const std::string chunk = "10000\r\n" + std::string(0x10000, 'z') + "\r\n";
    for (int i = 0; i < 800 && sock.Send(chunk); ++i) {
    }
    bool closed = false;
    const std::string got = sock.ReadUntilClosed(milliseconds(5000), &closed);
    EXPECT_NE(got.find("HTTP/1.1 400"), std::string::npos) << got.substr(0, 200);
    EXPECT_TRUE(closed);
  }
  {  // POST /healthz with no length: it has no body, so what follows is not read as one
    auto e = Raw("POST /healthz HTTP/1.1\r\n" + std::string(kHost) + "\r\n" +
                 std::string(4 << 20, 'y'));
    ASSERT_FALSE(e.Statuses().empty());
    EXPECT_EQ(e.Statuses()[0], 404);
    EXPECT_TRUE(e.closed);
  }
  const long after = s().RssKiB();
  std::printf("[ measured ] server RSS %ld -> %ld KiB\n", before, after);
  EXPECT_LT(after - before, 50 * 1024);
}

TEST_F(HttpHardeningTest, CompressedRequestBodiesAre415) {
  auto e = Raw(std::string("POST /api/v1/jobs HTTP/1.1\r\n") + kHost +
               "Content-Encoding: gzip\r\nContent-Length: 4\r\n\r\nabcd");
  EXPECT_EQ(e.Statuses(), std::vector<int>{415});
  EXPECT_NE(e.raw.find("unsupported_media_type"), std::string::npos);
  EXPECT_EQ(LastSeq(), 0u);
}

TEST_F(HttpHardeningTest, BodiesWithTooManyValuesAre400BeforeTheyAreBuilt) {
  std::string many = "{\"input\":[";
  for (int i = 0; i < 300000; ++i) many += i ? ",{}" : "{}";
  many += "]}";
  Reply r = s().Call("POST", "/api/v1/jobs", many);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.raw.find("objects and arrays"), std::string::npos);
  std::string scalars = "{\"input\":[";
  for (int i = 0; i < 200000; ++i) scalars += i ? ",1" : "1";
  scalars += "]}";
  r = s().Call("POST", "/api/v1/jobs", scalars);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.raw.find("values"), std::string::npos);
  EXPECT_EQ(LastSeq(), 0u);
  // A body within the caps is taken.
  std::string fine = "{\"input\":[";
  for (int i = 0; i < 9000; ++i) fine += i ? ",{\"a\":1}" : "{\"a\":1}";
  fine += "]}";
  EXPECT_EQ(s().Call("POST", "/api/v1/jobs", fine).status, 201);
}

TEST_F(HttpHardeningTest, AResumePointBeyondTheHeadIs400NeverAWrapAround) {
  ASSERT_EQ(s().Post("/api/v1/jobs", {{"job_id", "j"}}).status, 201);
  const std::string max = "18446744073709551615";
  EXPECT_EQ(s().Get("/api/v1/events?after=" + max).status, 400);
  EXPECT_EQ(s().Get("/api/v1/events/stream", {{"Last-Event-ID", max}}).status, 400);
  EXPECT_EQ(s().Get("/api/v1/jobs/j/stream?after=" + max).status, 400);
  Reply head = s().Get("/api/v1/events?after=1");  // at the head: an empty page
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body["events"].empty());
}

TEST_F(HttpHardeningTest, ARepeatedStatusListsEachJobOnce) {
  ASSERT_EQ(s().Post("/api/v1/jobs").status, 201);
  ASSERT_EQ(s().Post("/api/v1/jobs").status, 201);
  EXPECT_EQ(s().Get("/api/v1/jobs?status=pending,pending,pending").body["jobs"].size(), 2u);
}

TEST_F(HttpHardeningTest, AnIdempotencyKeyIsBoundToItsBodyAcrossARestart) {
  Reply first = s().Post("/api/v1/jobs", {{"type", "a"}}, {{"Idempotency-Key", "k-1"}});
  ASSERT_EQ(first.status, 201);
  Reply again = s().Post("/api/v1/jobs", {{"type", "a"}}, {{"Idempotency-Key", "k-1"}});
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.body["job_id"], first.body["job_id"]);
  Reply other = s().Post("/api/v1/jobs", {{"type", "b"}}, {{"Idempotency-Key", "k-1"}});
  EXPECT_EQ(other.status, 422);
  EXPECT_EQ(other.body["error"]["code"], "idempotency_key_reused");
  auto empty = Raw(std::string("POST /api/v1/jobs HTTP/1.1\r\n") + kHost +
                   "Idempotency-Key:\r\nContent-Length: 2\r\n\r\n{}");
  EXPECT_EQ(empty.Statuses(), std::vector<int>{400});
  EXPECT_EQ(LastSeq(), 1u);
  // The binding is in the log (and the snapshot): it holds after a restart.
  ASSERT_EQ(s().Terminate(), 0);
  server_ = std::make_unique<ServerProcess>(dir_.Sub("data"));
  ASSERT_TRUE(s().started());
  EXPECT_EQ(s().Post("/api/v1/jobs", {{"type", "b"}}, {{"Idempotency-Key", "k-1"}}).status, 422);
  EXPECT_EQ(s().Post("/api/v1/jobs", {{"type", "a"}}, {{"Idempotency-Key", "k-1"}}).status, 200);
}

TEST_F(HttpHardeningTest, AFeedFollowingOneJobWakesForThatJobOnly) {
  ASSERT_EQ(s().Post("/api/v1/jobs", {{"job_id", "watched"}}).status, 201);
  std::thread other([&] {
    std::this_thread::sleep_for(milliseconds(100));
    for (int i = 0; i < 5; ++i) s().Post("/api/v1/jobs");  // other jobs' events
  });
  Reply quiet = s().Get("/api/v1/events?job_id=watched&after=1&wait=1");
  other.join();
  EXPECT_EQ(quiet.status, 200);
  EXPECT_TRUE(quiet.body["events"].empty());
  std::thread cancel([&] {
    std::this_thread::sleep_for(milliseconds(100));
    s().Post("/api/v1/jobs/watched/cancel");
  });
  Reply woke = s().Get("/api/v1/events?job_id=watched&after=" +
                       std::to_string(quiet.body["next_after"].get<std::uint64_t>()) + "&wait=30");
  cancel.join();
  ASSERT_EQ(woke.body["events"].size(), 1u);
  EXPECT_EQ(woke.body["events"][0]["type"], "job.cancelled");
}

TEST_F(HttpHardeningTest, ACancelWakesEveryLongPollOnItsJob) {
  ASSERT_EQ(s().Post("/api/v1/jobs", {{"job_id", "herd"}}).status, 201);
  constexpr int kWaiters = 300;
  std::vector<std::thread> waiters;
  std::atomic<int> saw_cancel{0};
  for (int i = 0; i < kWaiters; ++i) {
    waiters.emplace_back([&] {
      auto c = s().Client();
      auto r = c->Get("/api/v1/jobs/herd?wait=30&after_version=1");
      if (r && r->status == 200 && r->body.find("\"cancelled\"") != std::string::npos) ++saw_cancel;
    });
  }
  // Every waiter is parked before the cancel (the gauge counts them).
  for (int i = 0; i < 600; ++i) {
    auto m = s().Client()->Get("/metrics");
    if (m && m->body.find("jobstore_waiters " + std::to_string(kWaiters) + "\n") != std::string::npos) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(s().Post("/api/v1/jobs/herd/cancel").status, 200);
  for (auto& t : waiters) t.join();
  EXPECT_EQ(saw_cancel.load(), kWaiters);
}

TEST(HttpDescriptors, ACrowdOfConnectionsCannotStarveTheLogOfDescriptors) {
  TempDir dir;
  ServerProcess s(dir.Sub("data"), {"--client-timeout", "3s", "--max-connections", "4096"},
                  {"/usr/bin/prlimit", "--nofile=256:256", "--"});
  ASSERT_TRUE(s.started());
  EXPECT_TRUE(s.WaitForLine("--max-connections 4096 lowered to 192"));
  auto writer = s.Client();  // connected before the crowd
  ASSERT_TRUE(writer->Post("/api/v1/jobs", "{}", "application/json"));
  std::vector<std::unique_ptr<RawSocket>> crowd;
  for (int i = 0; i < 400; ++i) crowd.push_back(std::make_unique<RawSocket>(s.port()));
  std::this_thread::sleep_for(milliseconds(300));
  // The crowd holds every slot: a newcomer is shed with 503, and writes still reach the log.
  RawSocket late(s.port());
  auto shed = late.SendAndRead("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", milliseconds(3000));
  EXPECT_EQ(shed.Statuses(), std::vector<int>{503});
  for (int i = 0; i < 200; ++i) {
    auto r = writer->Post("/api/v1/jobs", "{}", "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 201);
  }
  crowd.clear();
  // Once the crowd is gone, new connections are served and the store is ready.
  Reply ready;
  for (int i = 0; i < 100 && ready.status != 200; ++i) {
    ready = s.Get("/readyz");
    if (ready.status != 200) std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(s.Post("/api/v1/jobs").status, 201);
  EXPECT_EQ(s.Get("/api/v1/stats").body["log"]["last_seq"], 202);
}

// Linux 6.17 gives a threaded process a private futex hash of 16 slots; the server asks for two
// per thread it may run (cli/src/futex_hash.h), and says what it got.
TEST(HttpHerd, TheServerSizesItsFutexHashForItsThreads) {
  TempDir dir;
  // A fixed open-file limit, so the 1,000 connections asked for are not lowered.
  ServerProcess s(dir.Sub("data"), {"--max-connections", "1000"},
                  {"/usr/bin/prlimit", "--nofile=4096:4096", "--"});
  ASSERT_TRUE(s.started());
  constexpr long kPrFutexHash = 78, kGetSlots = 2;  // <linux/prctl.h> of 6.17
  errno = 0;
  if (::prctl(kPrFutexHash, kGetSlots, 0, 0, 0) < 0 && errno == EINVAL) {
    EXPECT_TRUE(s.WaitForLine("futex hash: the kernel's global one"));
  } else {
    // 2 x (1,000 + 64) rounded up to a power of two.
    EXPECT_TRUE(s.WaitForLine("futex hash: 4096 slots for 1000 connection threads"))
        << ::testing::PrintToString(s.Lines());
  }
}

}  // namespace
}  // namespace jobstore
