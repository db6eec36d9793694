// Internal: the connection loop under cpp-httplib, owned by jobstore.
//
// httplib 0.11 parses each request (process_request, protected) but its own loop around it has
// flaws a hostile client can use: a new socket stream per request (bytes pipelined behind the
// first request are lost), an unbounded header section (300 MB of header lines are buffered),
// and no way for a handler to close the connection after refusing a request whose body it did
// not read (the unread body would be parsed as the next request: smuggling). GuardedServer
// overrides the per-connection entry point and runs its own loop:
//   - one GuardedStream for the connection's whole life, so pipelined requests are answered in
//     order;
//   - the request line and headers together read at most ConnectionLimits::max_head_bytes
//     (then 431 and close); their raw text is kept for the framing check (httplib drops
//     headers with empty values and percent-decodes the others);
//   - after each request, the connection closes when the head could not be parsed, or when
//     something (the framing check, a refusal in pre-routing) called CloseAfterResponse();
//   - idle kept-alive connections wait in poll() (no 10 ms wake-ups) and notice Stop() within
//     kStopCheckMs;
//   - a connection the thread pool sheds (ShedConnection) gets a 503 and is closed at once.
// TLS connections take the same loop over OpenSSL (SSL_read/SSL_write on the accepted socket).
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <httplib.h>

#include "jobstore/core/status.h"

namespace jobstore::http {

struct ConnectionLimits {
  std::size_t max_head_bytes = 64 * 1024;  // request line + headers, per request
  int keep_alive_ms = 5000;                // idle time before a kept-alive connection closes
  int read_timeout_ms = 5000;
  int write_timeout_ms = 5000;
};

// Bytes in and out of one accepted connection: the socket itself, or TLS over it.
class Transport {
 public:
  virtual ~Transport() = default;
  // Like recv/send on a socket with SO_RCVTIMEO/SO_SNDTIMEO: <= 0 ends the connection.
  virtual ssize_t Recv(char* buf, std::size_t n) = 0;
  virtual ssize_t Send(const char* buf, std::size_t n) = 0;
  // Bytes already received and decoded but not yet handed out (TLS records).
  virtual bool HasPending() const { return false; }
};

// One end of a connection, as httplib's Stream reports it.
struct ConnectionAddress {
  std::string ip;
  int port = 0;
};

// The httplib::Stream of one connection, kept across its requests.
class GuardedStream final : public httplib::Stream {
 public:
  GuardedStream(int fd, Transport& transport, const ConnectionLimits& limits)
      : fd_(fd), transport_(transport), limits_(limits) {}

  // A request starts: its head (request line and headers) is counted from here.
  void BeginHead();
  // The head is parsed; the body (if any) follows.
  void EndHead() { in_head_ = false; }
  bool in_head() const { return in_head_; }
  bool head_too_large() const { return head_too_large_; }
  // The current request's head as received (request line and headers).
  std::string_view head_text() const { return head_text_; }
  bool HasBuffered() const { return pos_ < end_ || transport_.HasPending(); }
  // Waits until a byte is available, up to `timeout_ms`, or `stop()` turns true (checked
  // every kStopCheckMs). False on timeout, stop, or a closed/broken connection.
  bool WaitReadable(int timeout_ms, const std::function<bool()>& stop);

  // Sends a response head write() held back (see write()). False when the connection broke.
  bool Flush() const;

  bool is_readable() const override;
  bool is_writable() const override;
  ssize_t read(char* ptr, std::size_t size) override;
  // The head of a fixed-length response (httplib writes it, then the body, in two calls) is
  // held back and leaves with the body in one send: one syscall and one segment for the client
  // to read, not two. A held head never waits past the next write, read, wait or writability
  // check, nor past the end of the request (GuardedServer flushes after each one); a chunked
  // (streaming) response's head is sent at once.
  ssize_t write(const char* ptr, std::size_t size) override;
  // The connection's addresses, asked of the kernel once (httplib asks for each request).
  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  socket_t socket() const override { return fd_; }

  static constexpr int kStopCheckMs = 100;
  // A body larger than this is sent after its head rather than copied behind it.
  static constexpr std::size_t kCoalesceMaxBytes = 64 * 1024;

 private:
  const int fd_;
  Transport& transport_;
  const ConnectionLimits& limits_;
  std::unique_ptr<char[]> buf_;  // kReadChunk bytes once the first read comes; never zeroed
  std::size_t pos_ = 0;          // buf_[pos_, end_) is received and not yet read
  std::size_t end_ = 0;
  bool in_head_ = false;
  bool head_too_large_ = false;
  std::string head_text_;
  mutable std::string held_;  // a response head not sent yet
  mutable std::optional<ConnectionAddress> remote_, local_;
};

// What the request being served on this thread's connection knows about its connection.
// Pre-routing and handlers reach it through CurrentConnection().
class ConnectionState {
 public:
  explicit ConnectionState(GuardedStream& stream) : stream_(stream) {}
  GuardedStream& stream() { return stream_; }
  // The connection closes once the current response is written.
  void CloseAfterResponse() { close_ = true; }
  bool closing() const { return close_; }
  // A refusal decided while the head was parsed (framing), written by pre-routing.
  void Refuse(Status why) { refusal_ = std::move(why); }
  const std::optional<Status>& refusal() const { return refusal_; }
  void NextRequest() { refusal_.reset(); }

 private:
  GuardedStream& stream_;
  bool close_ = false;
  std::optional<Status> refusal_;
};

// The connection served on this thread, or nullptr (outside a connection, or under a server
// that is not guarded).
ConnectionState* CurrentConnection();

// Runs on the pool's own thread when it is full: the next connection gets 503 and is closed
// without being served.
void ShedNextConnection();

// Called for each request once its head is parsed, with the request still mutable (normalize
// it, or Refuse() it on the connection).
using HeadScreen = std::function<void(httplib::Request&, ConnectionState&)>;

// httplib::Server (Base) or httplib::SSLServer whose connections run the loop above.
template <typename Base>
class GuardedServer final : public Base {
 public:
  template <typename... Args>
  GuardedServer(ConnectionLimits limits, HeadScreen screen, Args&&... args)
      : Base(std::forward<Args>(args)...), limits_(limits), screen_(std::move(screen)) {}

 private:
  bool process_and_close_socket(socket_t sock) override;

  const ConnectionLimits limits_;
  const HeadScreen screen_;
};

// Makes the server: plain when cert/key are empty, TLS otherwise.
std::unique_ptr<httplib::Server> MakeGuardedServer(const ConnectionLimits& limits,
                                                   HeadScreen screen, const std::string& cert,
                                                   const std::string& key);

}  // namespace jobstore::http
