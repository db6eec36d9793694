#include "jobstore/replication/stream_tail.h"

#include <pthread.h>

#include <memory>

#include <spdlog/spdlog.h>

#include "jobstore/replication/batch_message.h"

namespace jobstore::replication {

StreamTail::StreamTail(const NatsConnection& conn, StreamSettings settings, JobStore& store)
    : conn_(conn), settings_(std::move(settings)), store_(store) {}

StreamTail::~StreamTail() { Stop(); }

Status StreamTail::Start() {
  const std::uint64_t from = store_.log().SourceSeq() + 1;
  const std::string subject = settings_.subject();
  jsSubOptions opts;
  jsSubOptions_Init(&opts);
  opts.Stream = settings_.stream.c_str();
  opts.Ordered = true;
  opts.Config.DeliverPolicy = js_DeliverByStartSequence;
  opts.Config.OptStartSeq = from;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  JOBSTORE_RETURN_IF_ERROR(
      FromNats(js_SubscribeSync(&sub_, conn_.js(), subject.c_str(), nullptr, &opts, &jerr),
               "tailing stream '" + settings_.stream + "'", jerr));
  // The consumer may hold a batch of messages in memory; a long catch-up is paced by the store.
  natsSubscription_SetPendingLimits(sub_, 1 << 16, 256 << 20);
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "jobstore-tail");
    Run();
  });
  return Status::Ok();
}

void StreamTail::Stop() {
  stopping_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
  if (sub_) {
    natsSubscription_Unsubscribe(sub_);
    natsSubscription_Destroy(sub_);
    sub_ = nullptr;
  }
}

std::string StreamTail::failure() const {
  MutexLock lock(&mu_);
  return failure_;
}

void StreamTail::Fail(const std::string& why) {
  spdlog::critical("replication: this copy stops following the stream: {}", why);
  MutexLock lock(&mu_);
  failure_ = why;
}

void StreamTail::Run() {
  while (!stopping_.load(std::memory_order_acquire)) {
    natsMsg* raw = nullptr;
    natsStatus s = natsSubscription_NextMsg(&raw, sub_, 250);
    if (s == NATS_TIMEOUT) continue;
    if (s != NATS_OK) {
      // The ordered consumer re-creates itself after a disconnect or a missed heartbeat; the
      // subscription only ends when it is closed.
      if (s == NATS_INVALID_SUBSCRIPTION || s == NATS_CONNECTION_CLOSED) {
        if (!stopping_.load()) Fail(std::string("the subscription ended: ") + natsStatus_GetText(s));
        return;
      }
      continue;
    }
    std::unique_ptr<natsMsg, void (*)(natsMsg*)> msg(raw, natsMsg_Destroy);
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, msg.get()) != NATS_OK) continue;  // a control message
    const std::uint64_t stream_seq = meta->Sequence.Stream;
    jsMsgMetaData_Destroy(meta);
    if (stream_seq <= store_.log().SourceSeq()) continue;  // this copy holds it (the writer's)
    auto batch = DecodeBatchMessage(
        std::string_view(natsMsg_GetData(msg.get()), static_cast<std::size_t>(natsMsg_GetDataLength(msg.get()))),
        stream_seq);
    if (!batch.ok()) return Fail(batch.status().message());
    Status applied = store_.ApplyReplicated(std::move(batch).value());
    if (!applied.ok()) {  // a diverged copy, or a local log that refuses writes
      if (!stopping_.load()) Fail("applying stream seq " + std::to_string(stream_seq) + ": " + applied.message());
      return;
    }
    applied_.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace jobstore::replication
