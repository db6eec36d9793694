// Status and StatusOr<T>: errors as values on every storage and command path.
//
// The codes say what the caller should do: fix the request (kInvalidArgument, kNotFound,
// kInvalidTransition, ...), retry later (kUnavailable), or give up and report (kCorruption,
// kInternal). They map one to one onto the API's error codes (see http/error_mapping).
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

// Either a value or a non-OK Status. Accessing value() of an error is a bug (asserted).
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }
  StatusOr(T value) : v_(std::move(value)) {}

  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

  T& value() & { assert(ok()); return std::get<T>(v_); }
  const T& value() const& { assert(ok()); return std::get<T>(v_); }
  T&& value() && { assert(ok()); return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<Status, T> v_;
};

}  // namespace jobstore

// Returns early from the enclosing function when `expr` yields a non-OK Status.
#define JOBSTORE_RETURN_IF_ERROR(expr)          \
  do {                                          \
    ::jobstore::Status _st = (expr);            \
    if (!_st.ok()) return _st;                  \
  } while (0)
