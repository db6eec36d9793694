#include "jobstore/replication/cluster_node.h"

#include <pthread.h>

#include <random>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "jobstore/replication/wait_while_unavailable.h"

namespace jobstore::replication {

namespace {
constexpr char kLeaseKey[] = "writer";

std::string RandomHex() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}
}  // namespace

StatusOr<std::unique_ptr<ClusterNode>> ClusterNode::Connect(ClusterOptions options) {
  if (options.stream.writer_lease_ms < 1000) {
    return InvalidArgument("--writer-lease must be at least 1s");
  }
  std::unique_ptr<ClusterNode> node(new ClusterNode(std::move(options)));
  NatsOptions nats = node->options_.nats;
  if (nats.name.empty()) nats.name = "jobstore " + node->options_.instance;
  // NATS servers that are starting refuse connections, and a cluster that just started elects
  // its JetStream leader first (its API times out meanwhile): both are waited for.
  JOBSTORE_RETURN_IF_ERROR(WaitWhileUnavailable(
      "NATS", std::chrono::steady_clock::now() + kStartWait, [&]() -> Status {
        auto conn = NatsConnection::Connect(nats);
        if (!conn.ok()) return conn.status();
        node->conn_ = std::move(conn).value();
        return Status::Ok();
      }));
  const std::string bucket_name = node->options_.stream.lease_bucket();
  JOBSTORE_RETURN_IF_ERROR(WaitWhileUnavailable(
      "JetStream", std::chrono::steady_clock::now() + kStartWait, [&]() -> Status {
        auto last = EnsureStream(*node->conn_, node->options_.stream);
        if (!last.ok()) return last.status();
        JOBSTORE_RETURN_IF_ERROR(EnsureLeaseBucket(*node->conn_, node->options_.stream));
        JOBSTORE_RETURN_IF_ERROR(
            FromNats(js_KeyValue(&node->kv_, node->conn_->js(), bucket_name.c_str()),
                     "opening the lease bucket '" + bucket_name + "'"));
        node->start_stream_seq_ = *last;
        return Status::Ok();
      }));
  node->appender_ = std::make_unique<JetStreamAppender>(*node->conn_, node->options_.stream,
                                                        node->options_.stream.writer_lease_ms);
  return node;
}

ClusterNode::~ClusterNode() {
  Stop();
  if (kv_) kvStore_Destroy(kv_);
}

Status ClusterNode::Start(JobStore& store) {
  store_ = &store;
  {
    MutexLock lock(&mu_);
    stream_last_seq_ = start_stream_seq_;
  }
  tail_ = std::make_unique<StreamTail>(*conn_, options_.stream, store,
                                       [a = appender_.get()] { return a->writing(); });
  JOBSTORE_RETURN_IF_ERROR(tail_->Start(start_stream_seq_));
  spdlog::info("replication: instance '{}' follows stream '{}' from seq {} (the stream is at {})",
               options_.instance, options_.stream.stream, store.log().SourceSeq() + 1,
               start_stream_seq_);
  lease_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "jobstore-lease");
    LeaseLoop();
  });
  watch_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "jobstore-watch");
    WatchLease();
  });
  return Status::Ok();
}

void ClusterNode::Stop() {
  {
    MutexLock lock(&mu_);
    if (stopping_.exchange(true)) return;
  }
  cv_.SignalAll();
  if (lease_thread_.joinable()) lease_thread_.join();
  if (watch_thread_.joinable()) watch_thread_.join();
  if (appender_ && appender_->writing()) {
    appender_->StepDown("the instance stops");
    // Hand the lease over now rather than after its TTL.
    if (natsStatus s = kv_ ? kvStore_Delete(kv_, kLeaseKey) : NATS_OK; s != NATS_OK) {
      spdlog::warn("replication: the writer's lease was not handed over ({}); another instance "
                   "takes over when it expires", natsStatus_GetText(s));
    }
  }
  if (tail_) tail_->Stop();
}

std::string ClusterNode::LeaseValue(const std::string& epoch) const {
  return nlohmann::json{{"instance", options_.instance}, {"address", options_.address}, {"epoch", epoch}}
      .dump();
}

void ClusterNode::LeaseLoop() {
  const auto period = std::chrono::milliseconds(std::max<std::int64_t>(100, options_.stream.writer_lease_ms / 4));
  while (!stopping_.load(std::memory_order_acquire)) {
    LeaseRound();
    MutexLock lock(&mu_);
    cv_.WaitFor(&mu_, period);
  }
}

void ClusterNode::LeaseRound() {
  if (auto last = StreamLastSeq(*conn_, options_.stream); last.ok()) {
    MutexLock lock(&mu_);
    stream_last_seq_ = *last;
  }
  if (appender_->writing()) {
    std::uint64_t rev = 0;
    const std::string value = LeaseValue("");
    natsStatus s = kvStore_UpdateString(&rev, kv_, kLeaseKey, value.c_str(), lease_revision_);
    const auto now = std::chrono::steady_clock::now();
    if (s == NATS_OK) {
      lease_revision_ = rev;
      renewed_at_ = now;
      return;
    }
    // Not answered (a NATS election): keep writing while the lease surely still holds; the
    // fence refuses this instance's appends anyway once another writer took over.
    const bool unanswered = FromNats(s, "").code() == StatusCode::kUnavailable;
    const auto held = std::chrono::milliseconds(options_.stream.writer_lease_ms * 3 / 4);
    if (unanswered && now - renewed_at_ < held) return;
    appender_->StepDown(std::string("renewing the writer lease failed: ") + natsStatus_GetText(s));
  }
  kvEntry* entry = nullptr;
  natsStatus s = kvStore_Get(&entry, kv_, kLeaseKey);
  if (s == NATS_OK && kvEntry_Operation(entry) == kvOp_Put) {
    const std::uint64_t revision = kvEntry_Revision(entry);
    if (revision == lease_revision_ && !pending_epoch_.empty()) {
      // We took the lease but could not open the epoch yet (the stream had no leader): again.
      kvEntry_Destroy(entry);
      return OpenEpoch(pending_epoch_, revision);
    }
    NoteLease(kvEntry_ValueString(entry));
    kvEntry_Destroy(entry);
    return;
  }
  if (entry) kvEntry_Destroy(entry);
  if (s != NATS_OK && s != NATS_NOT_FOUND) return;  // NATS unreachable: try again next round
  {
    MutexLock lock(&mu_);
    writer_instance_.clear();
    writer_address_.clear();
  }
  if (!tail_->failure().empty()) return;  // a diverged copy never writes
  // No writer: bid. The fence, not the bucket, makes the bid safe.
  const std::string epoch = options_.instance + "-" + RandomHex();
  std::uint64_t rev = 0;
  const std::string value = LeaseValue(epoch);
  if (kvStore_CreateString(&rev, kv_, kLeaseKey, value.c_str()) != NATS_OK) return;
  OpenEpoch(epoch, rev);
}

void ClusterNode::OpenEpoch(const std::string& epoch, std::uint64_t lease_revision) {
  lease_revision_ = lease_revision;
  pending_epoch_ = epoch;
  Status opened = appender_->OpenEpoch(epoch, store_->log().SourceSeq(),
                                       [this] { store_->StartWriterTerm(); });
  if (!opened.ok()) {
    // Refused by the fence: another wrote first; the lease then expires by itself (deleting it
    // might delete the winner's). Not answered: the next round tries again while we hold it.
    spdlog::info("replication: not the writer yet: {}", opened.message());
    if (opened.code() == StatusCode::kVersionMismatch) pending_epoch_.clear();
    return;
  }
  pending_epoch_.clear();
  renewed_at_ = std::chrono::steady_clock::now();
  MutexLock lock(&mu_);
  writer_instance_ = options_.instance;
  writer_address_ = options_.address;
}

void ClusterNode::NoteLease(const std::string& value_text) {
  auto value = nlohmann::json::parse(value_text, nullptr, false);
  MutexLock lock(&mu_);
  writer_instance_ = value.is_object() ? value.value("instance", "") : "";
  writer_address_ = value.is_object() ? value.value("address", "") : "";
  if (writer_instance_ == options_.instance && !appender_->writing()) {
    // Our own lease from before a restart, or one we just lost: not a writer to forward to.
    writer_address_.clear();
  }
}

void ClusterNode::WatchLease() {
  kvWatcher* watcher = nullptr;
  // Without a watcher the lease rounds still look every quarter of the lease.
  if (natsStatus s = kvStore_Watch(&watcher, kv_, kLeaseKey, nullptr); s != NATS_OK) {
    spdlog::warn("replication: cannot watch the writer's lease ({}); new writers are learnt of at "
                 "each lease round instead", natsStatus_GetText(s));
    return;
  }
  while (!stopping_.load(std::memory_order_acquire)) {
    kvEntry* entry = nullptr;
    if (kvWatcher_Next(&entry, watcher, 250) != NATS_OK || !entry) continue;
    if (kvEntry_Operation(entry) == kvOp_Put) {
      NoteLease(kvEntry_ValueString(entry));
    } else {  // deleted: the writer stopped and handed the lease over
      MutexLock lock(&mu_);
      writer_instance_.clear();
      writer_address_.clear();
    }
    kvEntry_Destroy(entry);
  }
  kvWatcher_Stop(watcher);
  kvWatcher_Destroy(watcher);
}

ClusterStatus ClusterNode::status() const {
  ClusterStatus st;
  st.writer = appender_->writing();
  st.connected = conn_->connected();
  st.applied_stream_seq = store_ ? store_->log().SourceSeq() : 0;
  st.failure = tail_ ? tail_->failure() : "";
  st.retention_events_deleted = tail_ ? tail_->retention_events_deleted() : 0;
  MutexLock lock(&mu_);
  st.writer_instance = writer_instance_;
  st.writer_address = writer_address_;
  st.stream_last_seq = stream_last_seq_;
  st.caught_up = st.failure.empty() && st.applied_stream_seq >= start_stream_seq_;
  return st;
}

}  // namespace jobstore::replication
