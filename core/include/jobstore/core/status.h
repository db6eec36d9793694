// Status and StatusOr<T>: errors as values on every storage and command path.
//
// The codes say what the caller should do: fix the request (kInvalidArgument, kNotFound,
// kInvalidTransition, ...), retry later (kUnavailable), or give up and report (kCorruption,
// kInternal). They map one to one onto the API's error codes (http/src/replies.cc, HttpStatusFor).
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace jobstore {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // the request is malformed; fix it
  kUnauthenticated,     // no valid bearer token
  kForbidden,           // the caller does not own the job
  kNotFound,            // no such job (or it has expired)
  kInvalidTransition,   // the job's status does not allow the command
  kAlreadyExists,       // a client-chosen job_id is taken
  kStaleRequest,        // a HITL answer for a request that is not the open one
  kTruncated,           // the log no longer holds the asked-for history
  kVersionMismatch,     // If-Match is not the current version
  kPayloadTooLarge,     // body over the configured limit
  kUnsupportedMediaType,  // a request body the server does not decode (Content-Encoding)
  kHeadersTooLarge,     // the request's header section is over the server's limit
  kMisdirectedRequest,  // the Host header names an authority this server does not answer for
  kIdempotencyKeyReused,  // an Idempotency-Key already used with a different request body
  kUnavailable,         // the log cannot be written right now (I/O error, disk full, shutdown)
  kCorruption,          // stored bytes fail their checksum or do not decode
  kInternal,            // a bug; never expected
};

// The API's snake_case name of a code ("invalid_argument", ...).
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

namespace internal {
// Prints `status` and aborts: value() was called on an error (a bug), in every build type.
[[noreturn]] void DieOnBadStatusOrAccess(const Status& status);
}  // namespace internal

// Either a value or a non-OK Status, as abseil's: an OK Status given to the constructor becomes
// an internal error (there is no value to hold), and value() of an error aborts with its
// message in every build type (not an assert that release builds drop).
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : v_(std::move(status)) {
    if (std::get<Status>(v_).ok()) {
      v_ = Status(StatusCode::kInternal, "StatusOr was given an OK status and no value");
    }
  }
  StatusOr(T value) : v_(std::move(value)) {}

  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

  T& value() & { Check(); return std::get<T>(v_); }
  const T& value() const& { Check(); return std::get<T>(v_); }
  T&& value() && { Check(); return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  void Check() const {
    if (!ok()) internal::DieOnBadStatusOrAccess(std::get<Status>(v_));
  }
  std::variant<Status, T> v_;
};

}  // namespace jobstore

// Returns early from the enclosing function when `expr` yields a non-OK Status.
#define JOBSTORE_RETURN_IF_ERROR(expr)          \
  do {                                          \
    ::jobstore::Status _st = (expr);            \
    if (!_st.ok()) return _st;                  \
  } while (0)

// `lhs` = the value of `expr` (a StatusOr), or returns its error from the enclosing function:
//   JOBSTORE_ASSIGN_OR_RETURN(auto job, LoadJob(id));
#define JOBSTORE_ASSIGN_OR_RETURN(lhs, expr) \
  JOBSTORE_ASSIGN_OR_RETURN_IMPL(JOBSTORE_CONCAT(_status_or_, __LINE__), lhs, expr)
#define JOBSTORE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.status();                  \
  lhs = std::move(tmp).value()
#define JOBSTORE_CONCAT(a, b) JOBSTORE_CONCAT_IMPL(a, b)
#define JOBSTORE_CONCAT_IMPL(a, b) a##b
