// The replicated stream's tail (replication/stream_tail.h) on a real NATS server: a start that
// meets a JetStream that does not answer waits for it instead of failing the instance's start.
#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include <gtest/gtest.h>

#include "jobstore/replication/nats_connection.h"
#include "jobstore/replication/stream_setup.h"
#include "jobstore/replication/stream_tail.h"
#include "jobstore/store/job_store.h"
#include "support/nats_cluster.h"
#include "support/temp_dir.h"

namespace jobstore {
namespace {

using testing::NatsCluster;
using testing::TempDir;

TEST(StreamTail, AStartWhileJetStreamDoesNotAnswerWaitsForItInsteadOfFailing) {
  NatsCluster nats(1);
  replication::NatsOptions options;
  options.urls = replication::SplitUrls(nats.urls());
  auto conn = std::move(replication::NatsConnection::Connect(options)).value();
  replication::StreamSettings settings;
  settings.replicas = 1;
  for (int attempt = 0; attempt < 60; ++attempt) {  // JetStream starts within a second or two
    if (replication::EnsureStream(*conn, settings).ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  TempDir dir;
  StoreOptions store_options;
  store_options.data_dir = dir.Sub("data");
  auto store = std::move(JobStore::Open(store_options).value());
  replication::StreamTail tail(*conn, settings, *store);

  // Every JetStream request of the start times out (the API wait is 2 s): the first attempt
  // to create the consumer has failed well before the server goes on 6 s later.
  nats.Pause(0);
  auto resumed = std::async(std::launch::async, [&] {
    std::this_thread::sleep_for(std::chrono::seconds(6));
    nats.Continue(0);
  });
  const auto start = std::chrono::steady_clock::now();
  Status started = tail.Start(0);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  resumed.wait();
  std::printf("[ measured ] the tail started %.1f s after JetStream stopped answering\n", took);
  ASSERT_TRUE(started.ok()) << started.ToString();
  EXPECT_GE(took, 5.0);  // it waited for the server, not around it
  EXPECT_TRUE(tail.failure().empty()) << tail.failure();
  tail.Stop();
  ASSERT_TRUE(store->Close().ok());
}

}  // namespace
}  // namespace jobstore
