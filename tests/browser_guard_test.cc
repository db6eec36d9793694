// A web page in the operator's browser must not be able to drive a local jobstore: requests
// shaped exactly as a browser sends them from another site (simple cross-site POSTs, DNS
// rebinding, framing), against the real server on its default loopback set-up.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "support/server_process.h"
#include "support/temp_dir.h"

namespace jobstore {
namespace {

using testing::Reply;
using testing::ServerProcess;
using testing::TempDir;

class BrowserGuardTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> flags = {}) {
    server_ = std::make_unique<ServerProcess>(dir_.Sub("data"), std::move(flags));
    ASSERT_TRUE(server_->started());
  }
  ServerProcess& s() { return *server_; }
  std::string Own() { return "http://127.0.0.1:" + std::to_string(s().port()); }
  // A POST with the body and content type a browser's simple request would carry.
  Reply Post(const std::string& path, const std::string& body, const std::string& type,
             httplib::Headers headers) {
    auto c = s().Client();
    auto r = c->Post(path, headers, body, type);
    Reply reply;
    if (!r) return reply;
    reply.status = r->status;
    reply.headers = r->headers;
    reply.raw = r->body;
    reply.body = nlohmann::json::parse(r->body, nullptr, false);
    return reply;
  }
  std::uint64_t LastSeq() { return s().Get("/api/v1/stats").body["log"]["last_seq"]; }

  TempDir dir_;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(BrowserGuardTest, ACrossSiteSimplePostIsRefusedAndWritesNothing) {
  Start();
  Reply r = Post("/api/v1/jobs", R"({"job_id":"csrf-1"})", "text/plain",
                 {{"Origin", "http://evil.example"}});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body["error"]["code"], "forbidden");
  EXPECT_NE(r.raw.find("--allowed-origins"), std::string::npos);  // says how to allow it
  EXPECT_EQ(LastSeq(), 0u);
}

TEST_F(BrowserGuardTest, ACrossSiteFormPostWithoutOriginIsRefusedBySecFetchSite) {
  Start();
  ASSERT_EQ(s().Post("/api/v1/jobs", {{"job_id", "victim"}}).status, 201);
  Reply r = Post("/api/v1/jobs/victim/cancel", R"({"reason":"csrf"})",
                 "application/x-www-form-urlencoded", {{"Sec-Fetch-Site", "cross-site"}});
  EXPECT_EQ(r.status, 403);
  r = Post("/api/v1/jobs/victim/cancel", R"({"reason":"csrf"})",
           "application/x-www-form-urlencoded",
           {{"Origin", "http://evil.example"}, {"Sec-Fetch-Site", "cross-site"}});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(s().Get("/api/v1/jobs/victim").body["status"], "pending");
  EXPECT_EQ(LastSeq(), 1u);
}

TEST_F(BrowserGuardTest, ARequestForAnotherHostNameIsRefusedAsDnsRebinding) {
  Start();
  Reply r = s().Get("/api/v1/jobs", {{"Host", "attacker.example:8000"}});
  EXPECT_EQ(r.status, 421);
  EXPECT_EQ(r.body["error"]["code"], "misdirected_request");
  EXPECT_EQ(s().Get("/", {{"Host", "attacker.example"}}).status, 421);  // the page too
  for (const char* host : {"localhost", "127.0.0.1", "[::1]"}) {
    SCOPED_TRACE(host);
    EXPECT_EQ(s().Get("/api/v1/jobs", {{"Host", std::string(host) + ":8000"}}).status, 200);
  }
}

TEST_F(BrowserGuardTest, AllowedHostsExtendTheHostCheck) {
  Start({"--allowed-hosts", "jobs.internal,ops.internal"});
  EXPECT_EQ(s().Get("/api/v1/jobs", {{"Host", "jobs.internal"}}).status, 200);
  EXPECT_EQ(s().Get("/api/v1/jobs", {{"Host", "OPS.internal:443"}}).status, 200);
  EXPECT_EQ(s().Get("/api/v1/jobs", {{"Host", "attacker.example"}}).status, 421);
}

TEST_F(BrowserGuardTest, SameOriginNoOriginAndAllowedOriginsAreAccepted) {
  Start({"--allowed-origins", "https://app.example.com"});
  EXPECT_EQ(Post("/api/v1/jobs", "{}", "application/json", {{"Origin", Own()}}).status, 201);
  EXPECT_EQ(Post("/api/v1/jobs", "{}", "application/json", {}).status, 201);  // curl, clients
  Reply allowed = Post("/api/v1/jobs", "{}", "application/json",
                       {{"Origin", "https://app.example.com"}, {"Sec-Fetch-Site", "cross-site"}});
  EXPECT_EQ(allowed.status, 201);
  EXPECT_EQ(allowed.Header("Access-Control-Allow-Origin"), "https://app.example.com");
  EXPECT_EQ(allowed.Header("Vary"), "Origin");
  EXPECT_EQ(Post("/api/v1/jobs", "{}", "application/json", {{"Origin", "https://evil.example"}}).status,
            403);
  EXPECT_EQ(LastSeq(), 3u);
}

TEST_F(BrowserGuardTest, APreflightIsAnsweredForAllowedOriginsOnly) {
  Start({"--allowed-origins", "https://app.example.com"});
  auto c = s().Client();
  auto ok = c->Options("/api/v1/jobs", {{"Origin", "https://app.example.com"},
                                        {"Access-Control-Request-Method", "POST"},
                                        {"Access-Control-Request-Headers", "content-type"}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 204);
  EXPECT_EQ(ok->get_header_value("Access-Control-Allow-Origin"), "https://app.example.com");
  EXPECT_NE(ok->get_header_value("Access-Control-Allow-Methods").find("POST"), std::string::npos);
  EXPECT_NE(ok->get_header_value("Access-Control-Allow-Headers").find("Content-Type"),
            std::string::npos);
  auto c2 = s().Client();
  auto refused = c2->Options("/api/v1/jobs", {{"Origin", "https://evil.example"},
                                              {"Access-Control-Request-Method", "POST"}});
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403);
  EXPECT_FALSE(refused->has_header("Access-Control-Allow-Origin"));
}

TEST_F(BrowserGuardTest, NoAnswerCarriesCorsHeadersUnlessAsked) {
  Start();
  Reply r = s().Get("/api/v1/jobs");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("Access-Control-Allow-Origin"), "");
  EXPECT_EQ(r.Header("X-Content-Type-Options"), "nosniff");
  auto c = s().Client();
  auto preflight = c->Options("/api/v1/jobs", {{"Origin", "http://evil.example"},
                                               {"Access-Control-Request-Method", "POST"}});
  ASSERT_TRUE(preflight);
  EXPECT_EQ(preflight->status, 403);
}

TEST_F(BrowserGuardTest, TheDashboardForbidsFramingAndForeignContent) {
  Start();
  Reply page = s().Get("/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.Header("Content-Security-Policy").find("frame-ancestors 'none'"), std::string::npos);
  EXPECT_NE(page.Header("Content-Security-Policy").find("default-src 'self'"), std::string::npos);
  EXPECT_EQ(page.Header("X-Frame-Options"), "DENY");
  EXPECT_EQ(page.Header("X-Content-Type-Options"), "nosniff");
  // A link from another site still opens the page (it holds no data); its API calls are
  // same-origin.
  EXPECT_EQ(s().Get("/", {{"Sec-Fetch-Site", "cross-site"}}).status, 200);
  EXPECT_EQ(s().Get("/api/v1/jobs", {{"Sec-Fetch-Site", "cross-site"}}).status, 403);
}

}  // namespace
}  // namespace jobstore
