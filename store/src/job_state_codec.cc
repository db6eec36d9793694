#include "jobstore/store/job_state_codec.h"

#include <cmath>
#include <cstdint>
#include <optional>

#include "jobstore/core/internal/cbor_reader.h"

namespace jobstore {
namespace {

// Job flag bits: which optional parts follow.
enum : std::uint8_t {
  kWorker = 1 << 0,
  kLeaseExpiresAt = 1 << 1,
  kStartedAt = 1 << 2,
  kFinishedAt = 1 << 3,
  kIdempotencyKey = 1 << 4,
  kHitl = 1 << 5,
  kError = 1 << 6,
  kIdempotencyFingerprint = 1 << 7,
};
// Extension flag bits: the parts added after the first format. A state without any of them ends
// after [error], as the first format did, so older snapshots decode unchanged.
enum : std::uint8_t {
  kPriority = 1 << 0,
  kRunAt = 1 << 1,
  kRetry = 1 << 2,
  kErrors = 1 << 3,
  kForwardId = 1 << 4,
  kKnownExtensions = kPriority | kRunAt | kRetry | kErrors | kForwardId,
};
// HITL flag bits.
enum : std::uint8_t {
  kExpiresAt = 1 << 0,
  kRespondedAt = 1 << 1,
  kRespondedBy = 1 << 2,
  kKey = 1 << 3,
  kKnownHitlFlags = kExpiresAt | kRespondedAt | kRespondedBy | kKey,
};

class Writer {
 public:
  explicit Writer(std::string* out) : out_(out) {}
  void Byte(std::uint8_t b) { out_->push_back(static_cast<char>(b)); }
  void Unsigned(std::uint64_t v) {
    while (v >= 0x80) {
      Byte(static_cast<std::uint8_t>(v | 0x80));
      v >>= 7;
    }
    Byte(static_cast<std::uint8_t>(v));
  }
  void Signed(std::int64_t v) {
    Unsigned((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
  }
  void String(std::string_view s) {
    Unsigned(s.size());
    out_->append(s);
  }
  void Value(const Json& j) {
    std::string cbor;
    Json::to_cbor(j, cbor);
    String(cbor);
  }

 private:
  std::string* out_;
};

// Reads what Writer wrote; after the first short or malformed read, ok() is false and every
// later read yields zeros and empties.
class Reader {
 public:
  explicit Reader(std::string_view in) : p_(in.data()), end_(in.data() + in.size()) {}
  bool ok() const { return ok_; }
  bool AtEnd() const { return p_ == end_; }

  std::uint8_t Byte() {
    if (p_ == end_) return Fail(), 0;
    return static_cast<std::uint8_t>(*p_++);
  }
  std::uint64_t Unsigned() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      std::uint8_t b = Byte();
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    return Fail(), 0;
  }
  std::int64_t Signed() {
    std::uint64_t z = Unsigned();
    return static_cast<std::int64_t>((z >> 1) ^ (~(z & 1) + 1));
  }
  std::uint32_t U32() {
    std::uint64_t v = Unsigned();
    if (v > UINT32_MAX) return Fail(), 0;
    return static_cast<std::uint32_t>(v);
  }
  std::string_view Bytes() {
    std::uint64_t n = Unsigned();
    if (n > static_cast<std::uint64_t>(end_ - p_)) return Fail(), std::string_view();
    std::string_view s(p_, n);
    p_ += n;
    return s;
  }
  std::string String() { return std::string(Bytes()); }
  Json Value() {
    std::string_view cbor = Bytes();
    if (!ok_) return Json();
    Json j;
    if (!internal::DecodeCbor(cbor, &j)) return Fail(), Json();
    return j;
  }

 private:
  void Fail() {
    ok_ = false;
    p_ = end_;
  }
  const char* p_;
  const char* end_;
  bool ok_ = true;
};

}  // namespace

void EncodeJobState(const Job& job, std::string* out) {
  Writer w(out);
  std::uint8_t flags = (job.worker ? kWorker : 0) | (job.lease_expires_at ? kLeaseExpiresAt : 0) |
                       (job.started_at ? kStartedAt : 0) | (job.finished_at ? kFinishedAt : 0) |
                       (job.idempotency_key ? kIdempotencyKey : 0) | (job.hitl ? kHitl : 0) |
                       (job.error ? kError : 0) |
                       (job.idempotency_fingerprint ? kIdempotencyFingerprint : 0);
  w.Byte(static_cast<std::uint8_t>(job.status));
  w.Byte(flags);
  w.String(job.job_id);
  w.String(job.type);
  w.String(job.user_id);
  w.String(job.description);
  w.Value(job.input);
  w.Value(job.data);
  w.Value(job.labels);
  w.Value(job.progress);
  w.Value(job.result);
  w.Unsigned(job.hitl_rounds);
  w.Unsigned(job.attempt);
  w.Unsigned(job.max_attempts);
  w.Unsigned(job.version);
  w.Signed(job.lease_seconds);
  w.Signed(job.ttl_seconds);
  w.Signed(job.created_at);
  w.Signed(job.updated_at);
  w.Unsigned(job.created_seq);
  w.Unsigned(job.last_seq);
  if (job.worker) w.String(*job.worker);
  if (job.lease_expires_at) w.Signed(*job.lease_expires_at);
  if (job.started_at) w.Signed(*job.started_at);
  if (job.finished_at) w.Signed(*job.finished_at);
  if (job.idempotency_key) w.String(*job.idempotency_key);
  if (job.idempotency_fingerprint) w.String(*job.idempotency_fingerprint);
  if (job.hitl) {
    const HitlRequest& h = *job.hitl;
    w.Byte((h.expires_at ? kExpiresAt : 0) | (h.responded_at ? kRespondedAt : 0) |
           (h.responded_by ? kRespondedBy : 0) | (h.key ? kKey : 0));
    w.String(h.request_id);
    w.String(h.type);
    w.Value(h.prompt);
    w.Value(h.response);
    w.Signed(h.requested_at);
    if (h.expires_at) w.Signed(*h.expires_at);
    if (h.responded_at) w.Signed(*h.responded_at);
    if (h.responded_by) w.String(*h.responded_by);
    if (h.key) w.String(*h.key);
  }
  if (job.error) {
    w.String(job.error->code);
    w.String(job.error->message);
  }
  const std::uint8_t extensions = (job.priority != 0 ? kPriority : 0) | (job.run_at ? kRunAt : 0) |
                                  (job.retry ? kRetry : 0) | (job.errors.empty() ? 0 : kErrors) |
                                  (job.forward_id ? kForwardId : 0);
  if (extensions == 0) return;
  w.Byte(extensions);
  if (job.priority != 0) w.Signed(job.priority);
  if (job.run_at) w.Signed(*job.run_at);
  if (job.retry) {
    w.Byte(static_cast<std::uint8_t>(job.retry->backoff));
    w.Signed(job.retry->initial_ms);
    w.Signed(job.retry->max_ms);
    w.Unsigned(static_cast<std::uint64_t>(std::llround(job.retry->jitter * 1e6)));  // micro-units
  }
  if (!job.errors.empty()) {
    w.Unsigned(job.errors.size());
    for (const AttemptError& e : job.errors) {
      w.Unsigned(e.attempt);
      w.String(e.code);
      w.String(e.message);
      w.Signed(e.at);
    }
  }
  if (job.forward_id) w.String(*job.forward_id);
}

StatusOr<Job> DecodeJobState(std::string_view bytes) {
  Reader r(bytes);
  Job job;
  const std::uint8_t status = r.Byte();
  if (status >= kJobStatusCount) return InvalidArgument("not a job state: bad status");
  job.status = static_cast<JobStatus>(status);
  const std::uint8_t flags = r.Byte();
  job.job_id = r.String();
  job.type = r.String();
  job.user_id = r.String();
  job.description = r.String();
  job.input = r.Value();
  job.data = r.Value();
  job.labels = r.Value();
  job.progress = r.Value();
  job.result = r.Value();
  job.hitl_rounds = r.U32();
  job.attempt = r.U32();
  job.max_attempts = r.U32();
  job.version = r.Unsigned();
  job.lease_seconds = r.Signed();
  job.ttl_seconds = r.Signed();
  job.created_at = r.Signed();
  job.updated_at = r.Signed();
  job.created_seq = r.Unsigned();
  job.last_seq = r.Unsigned();
  if (flags & kWorker) job.worker = r.String();
  if (flags & kLeaseExpiresAt) job.lease_expires_at = r.Signed();
  if (flags & kStartedAt) job.started_at = r.Signed();
  if (flags & kFinishedAt) job.finished_at = r.Signed();
  if (flags & kIdempotencyKey) job.idempotency_key = r.String();
  if (flags & kIdempotencyFingerprint) job.idempotency_fingerprint = r.String();
  if (flags & kHitl) {
    HitlRequest h;
    const std::uint8_t hitl_flags = r.Byte();
    h.request_id = r.String();
    h.type = r.String();
    h.prompt = r.Value();
    h.response = r.Value();
    h.requested_at = r.Signed();
    if (hitl_flags & kExpiresAt) h.expires_at = r.Signed();
    if (hitl_flags & kRespondedAt) h.responded_at = r.Signed();
    if (hitl_flags & kRespondedBy) h.responded_by = r.String();
    if (hitl_flags & kKey) h.key = r.String();
    if (hitl_flags & ~kKnownHitlFlags) return InvalidArgument("not a job state: unknown HITL flag");
    job.hitl = std::move(h);
  }
  if (flags & kError) {
    JobError e;
    e.code = r.String();
    e.message = r.String();
    job.error = std::move(e);
  }
  if (!r.AtEnd()) {
    const std::uint8_t extensions = r.Byte();
    if (extensions == 0 || (extensions & ~kKnownExtensions) != 0) {
      return InvalidArgument("not a job state: unknown extension flags");
    }
    if (extensions & kPriority) job.priority = static_cast<std::int32_t>(r.Signed());
    if (extensions & kRunAt) job.run_at = r.Signed();
    if (extensions & kRetry) {
      RetryPolicy p;
      const std::uint8_t backoff = r.Byte();
      if (backoff > 1) return InvalidArgument("not a job state: unknown backoff");
      p.backoff = static_cast<RetryPolicy::Backoff>(backoff);
      p.initial_ms = r.Signed();
      p.max_ms = r.Signed();
      p.jitter = static_cast<double>(r.Unsigned()) / 1e6;
      job.retry = p;
    }
    if (extensions & kErrors) {
      const std::uint64_t n = r.Unsigned();
      for (std::uint64_t i = 0; i < n && r.ok(); ++i) {
        AttemptError e;
        e.attempt = r.U32();
        e.code = r.String();
        e.message = r.String();
        e.at = r.Signed();
        job.errors.push_back(std::move(e));
      }
    }
    if (extensions & kForwardId) job.forward_id = r.String();
  }
  if (!r.ok()) return InvalidArgument("not a job state: the bytes end early or are malformed");
  if (!r.AtEnd()) return InvalidArgument("not a job state: bytes follow it");
  return job;
}

}  // namespace jobstore
