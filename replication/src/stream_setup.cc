#include "jobstore/replication/stream_setup.h"

#include <memory>
#include <vector>

namespace jobstore::replication {

namespace {

constexpr std::int64_t kNanosPerMs = 1'000'000;

using StreamInfo = std::unique_ptr<jsStreamInfo, void (*)(jsStreamInfo*)>;

// The differences between what we need and what the stream has, as "name: has X, needs Y".
std::vector<std::string> Differences(const jsStreamConfig& have, const StreamSettings& want) {
  std::vector<std::string> out;
  auto differ = [&](const char* what, const std::string& has, const std::string& needs) {
    if (has != needs) out.push_back(std::string(what) + " is " + has + ", needs " + needs);
  };
  std::string subjects;
  for (int i = 0; i < have.SubjectsLen; ++i) subjects += (i ? "," : "") + std::string(have.Subjects[i]);
  differ("subjects", subjects, want.subject());
  differ("storage", have.Storage == js_FileStorage ? "file" : "memory", "file");
  differ("discard", have.Discard == js_DiscardNew ? "new" : "old", "new");
  differ("deny_delete", have.DenyDelete ? "true" : "false", "true");
  differ("replicas", std::to_string(have.Replicas), std::to_string(want.replicas));
  differ("max_age (--stream-max-age)", std::to_string(have.MaxAge / kNanosPerMs) + " ms",
         std::to_string(want.max_age_ms) + " ms");
  differ("max_msgs", std::to_string(have.MaxMsgs), "-1");
  return out;
}

}  // namespace

StatusOr<std::uint64_t> EnsureStream(const NatsConnection& conn, const StreamSettings& settings) {
  jsStreamInfo* raw = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&raw, conn.js(), settings.stream.c_str(), nullptr, &jerr);
  if (s == NATS_OK) {
    StreamInfo info(raw, jsStreamInfo_Destroy);
    auto diffs = Differences(*info->Config, settings);
    if (!diffs.empty()) {
      std::string message = "stream '" + settings.stream + "' exists with other settings:";
      for (const std::string& d : diffs) message += " " + d + ";";
      message += " use another --stream, or change the stream (nats stream edit)";
      return InvalidArgument(message);
    }
    return info->State.LastSeq;
  }
  if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr) {
    return FromNats(s, "looking up stream '" + settings.stream + "'", jerr);
  }
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  const std::string subject = settings.subject();
  const char* subjects[] = {subject.c_str()};
  cfg.Name = settings.stream.c_str();
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Replicas = settings.replicas;
  cfg.Discard = js_DiscardNew;
  cfg.DenyDelete = true;
  cfg.Duplicates = kDuplicateWindowMs * kNanosPerMs;
  cfg.MaxAge = settings.max_age_ms * kNanosPerMs;
  cfg.MaxMsgSize = -1;
  s = js_AddStream(&raw, conn.js(), &cfg, nullptr, &jerr);
  if (s == NATS_OK) {
    StreamInfo info(raw, jsStreamInfo_Destroy);
    return info->State.LastSeq;
  }
  if (jerr == JSStreamNameExistErr) return EnsureStream(conn, settings);  // another instance won
  return FromNats(s, "creating stream '" + settings.stream + "' with " +
                         std::to_string(settings.replicas) + " replicas",
                  jerr);
}

namespace {
StatusOr<StreamInfo> ReadStreamInfo(const NatsConnection& conn, const StreamSettings& settings) {
  jsStreamInfo* raw = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  JOBSTORE_RETURN_IF_ERROR(FromNats(
      js_GetStreamInfo(&raw, conn.js(), settings.stream.c_str(), nullptr, &jerr),
      "reading stream '" + settings.stream + "'", jerr));
  return StreamInfo(raw, jsStreamInfo_Destroy);
}
}  // namespace

StatusOr<std::uint64_t> StreamLastSeq(const NatsConnection& conn, const StreamSettings& settings) {
  JOBSTORE_ASSIGN_OR_RETURN(auto info, ReadStreamInfo(conn, settings));
  return info->State.LastSeq;
}

StatusOr<std::uint64_t> StreamFirstSeq(const NatsConnection& conn, const StreamSettings& settings) {
  JOBSTORE_ASSIGN_OR_RETURN(auto info, ReadStreamInfo(conn, settings));
  return info->State.Msgs == 0 ? info->State.LastSeq + 1 : info->State.FirstSeq;
}

StatusOr<std::optional<std::string>> LastMessageIdIfAt(const NatsConnection& conn,
                                                       const StreamSettings& settings,
                                                       std::uint64_t seq) {
  JOBSTORE_ASSIGN_OR_RETURN(const std::uint64_t last, StreamLastSeq(conn, settings));
  if (seq == 0 || last != seq) return std::optional<std::string>();
  natsMsg* raw = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  JOBSTORE_RETURN_IF_ERROR(FromNats(
      js_GetMsg(&raw, conn.js(), settings.stream.c_str(), seq, nullptr, &jerr),
      "reading message " + std::to_string(seq) + " of stream '" + settings.stream + "'", jerr));
  std::unique_ptr<natsMsg, void (*)(natsMsg*)> msg(raw, natsMsg_Destroy);
  const char* id = nullptr;
  if (natsMsgHeader_Get(msg.get(), "Nats-Msg-Id", &id) != NATS_OK || id == nullptr) {
    return std::optional<std::string>();
  }
  return std::optional<std::string>(id);
}

Status EnsureLeaseBucket(const NatsConnection& conn, const StreamSettings& settings) {
  const std::string bucket = settings.lease_bucket();
  kvStore* kv = nullptr;
  if (js_KeyValue(&kv, conn.js(), bucket.c_str()) == NATS_OK) {
    kvStore_Destroy(kv);
    return Status::Ok();
  }
  kvConfig cfg;
  kvConfig_Init(&cfg);
  cfg.Bucket = bucket.c_str();
  cfg.History = 1;
  cfg.TTL = settings.writer_lease_ms * kNanosPerMs;  // nats.c 3.4 takes nanoseconds here
  cfg.Replicas = settings.replicas;
  cfg.StorageType = js_FileStorage;
  natsStatus s = js_CreateKeyValue(&kv, conn.js(), &cfg);
  if (s == NATS_OK) {
    kvStore_Destroy(kv);
    return Status::Ok();
  }
  // Another instance may have created it meanwhile.
  if (js_KeyValue(&kv, conn.js(), bucket.c_str()) == NATS_OK) {
    kvStore_Destroy(kv);
    return Status::Ok();
  }
  return FromNats(s, "creating the writer lease bucket '" + bucket + "'");
}

}  // namespace jobstore::replication
