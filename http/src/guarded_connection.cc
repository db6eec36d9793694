// The connection loop of guarded_connection.h.
#include "guarded_connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "thread_cache.h"

namespace jobstore::http {
namespace {

thread_local ConnectionState* t_connection = nullptr;
thread_local bool t_shed_next = false;

constexpr std::size_t kReadChunk = 16 * 1024;

// What a shed connection gets: written without waiting, then the socket closes.
const std::string& ShedReply() {
  static const std::string reply = [] {
    const std::string body =
        R"({"error":{"code":"unavailable","message":"no connection slot is free; retry shortly"}})";
    return "HTTP/1.1 503 Service Unavailable\r\n"
           "Content-Type: application/json; charset=utf-8\r\n"
           "Connection: close\r\nRetry-After: 1\r\nX-Content-Type-Options: nosniff\r\n"
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  return reply;
}

class SocketTransport final : public Transport {
 public:
  explicit SocketTransport(int fd) : fd_(fd) {}
  ssize_t Recv(char* buf, std::size_t n) override {
    ssize_t got;
    do {
      got = ::recv(fd_, buf, n, 0);
    } while (got < 0 && errno == EINTR);
    return got;
  }
  ssize_t Send(const char* buf, std::size_t n) override {
    ssize_t sent;
    do {
      sent = ::send(fd_, buf, n, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    return sent;
  }

 private:
  const int fd_;
};

// TLS over the accepted socket. The socket keeps the SO_RCVTIMEO/SO_SNDTIMEO httplib set, so a
// stalled peer ends SSL_read/SSL_write with an error after the client timeout.
class TlsTransport final : public Transport {
 public:
  static std::unique_ptr<TlsTransport> Accept(SSL_CTX* ctx, int fd) {
    SSL* ssl = SSL_new(ctx);
    if (!ssl) return nullptr;
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1) {
      SSL_free(ssl);
      return nullptr;
    }
    return std::unique_ptr<TlsTransport>(new TlsTransport(ssl));
  }
  ~TlsTransport() override {
    SSL_shutdown(ssl_);
    SSL_free(ssl_);
  }
  ssize_t Recv(char* buf, std::size_t n) override {
    const int got = SSL_read(ssl_, buf, static_cast<int>(std::min<std::size_t>(n, INT32_MAX)));
    return got > 0 ? got : (SSL_get_error(ssl_, got) == SSL_ERROR_ZERO_RETURN ? 0 : -1);
  }
  ssize_t Send(const char* buf, std::size_t n) override {
    const int sent = SSL_write(ssl_, buf, static_cast<int>(std::min<std::size_t>(n, INT32_MAX)));
    return sent > 0 ? sent : -1;
  }
  bool HasPending() const override { return SSL_pending(ssl_) > 0; }

 private:
  explicit TlsTransport(SSL* ssl) : ssl_(ssl) {}
  SSL* const ssl_;
};

bool PollFor(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  int r;
  do {
    r = ::poll(&p, 1, timeout_ms);
  } while (r < 0 && errno == EINTR);
  return r > 0;
}

void AddressOf(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  const int r = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len)
                     : ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  if (r != 0) return;
  char text[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    port = ntohs(in6->sin6_port);
  }
  ip = text;
}

// After a refusal the client may still be sending the body nobody will read. Closing with
// unread bytes sends an RST that can destroy the refusal before the client reads it, so the
// write side closes first and what arrives is read and dropped, for a bounded time and size
// (a lingering close, as Apache and nginx do). Nothing is buffered.
void LingerBeforeClose(int fd, Transport& transport) {
  constexpr auto kLingerTime = std::chrono::seconds(2);
  constexpr std::size_t kLingerBytes = 64 << 20;
  ::shutdown(fd, SHUT_WR);
  const auto deadline = std::chrono::steady_clock::now() + kLingerTime;
  std::size_t dropped = 0;
  char sink[16 * 1024];
  while (dropped < kLingerBytes) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0 || !PollFor(fd, POLLIN, static_cast<int>(left))) return;
    const ssize_t n = transport.Recv(sink, sizeof sink);
    if (n <= 0) return;
    dropped += static_cast<std::size_t>(n);
  }
}

}  // namespace

ConnectionState* CurrentConnection() { return t_connection; }
void ShedNextConnection() { t_shed_next = true; }

void GuardedStream::BeginHead() {
  in_head_ = true;
  head_too_large_ = false;
  head_text_.clear();
}

bool GuardedStream::Flush() const {
  std::string_view left(held_);
  while (!left.empty()) {
    const ssize_t sent = transport_.Send(left.data(), left.size());
    if (sent <= 0) break;
    left.remove_prefix(static_cast<std::size_t>(sent));
  }
  held_.clear();
  return left.empty();
}

bool GuardedStream::WaitReadable(int timeout_ms, const std::function<bool()>& stop) {
  if (!Flush()) return false;
  if (HasBuffered()) return true;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0 || stop()) return false;
    if (PollFor(fd_, POLLIN, static_cast<int>(std::min<long long>(left, kStopCheckMs)))) {
      return true;
    }
  }
}

bool GuardedStream::is_readable() const {
  if (!Flush()) return false;
  return HasBuffered() || PollFor(fd_, POLLIN, limits_.read_timeout_ms);
}

bool GuardedStream::is_writable() const {
  if (!Flush()) return false;
  if (!PollFor(fd_, POLLOUT, limits_.write_timeout_ms)) return false;
  // Writable but closed by the peer: a zero-byte peek says so (a stream's reader went away).
  if (PollFor(fd_, POLLIN, 0)) {
    char byte;
    if (::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0) return false;
  }
  return true;
}

ssize_t GuardedStream::read(char* ptr, std::size_t size) {
  if (!Flush()) return -1;  // a "100 Continue" goes out before the body is awaited
  if (in_head_ && head_text_.size() >= limits_.max_head_bytes) {
    head_too_large_ = true;
    return -1;
  }
  if (pos_ >= end_) {
    if (!buf_) buf_ = std::make_unique_for_overwrite<char[]>(kReadChunk);
    const ssize_t got = transport_.Recv(buf_.get(), kReadChunk);
    pos_ = end_ = 0;
    if (got <= 0) return got;
    end_ = static_cast<std::size_t>(got);
  }
  std::size_t n = std::min(size, end_ - pos_);
  if (in_head_) {
    n = std::min(n, limits_.max_head_bytes - head_text_.size());
    head_text_.append(buf_.get() + pos_, n);
  }
  std::memcpy(ptr, buf_.get() + pos_, n);
  pos_ += n;
  return static_cast<ssize_t>(n);
}

namespace {
// A response head (the status line and the headers, which httplib writes in one call) whose
// body httplib writes right after it: a Content-Length above 0 (httplib sends a fixed-length
// body from Response::body; this server streams only with chunked encoding, whose provider may
// wait for events before its first write, so such a head is sent at once). A HEAD request's
// head names a length and gets no body: it waits for the flush at the end of the request.
bool IsHeadOfFixedBody(std::string_view data) {
  if (data.size() < 16 || data.substr(0, 7) != "HTTP/1." ||
      data.substr(data.size() - 4) != "\r\n\r\n") {
    return false;
  }
  constexpr std::string_view kLength = "\r\nContent-Length: ";
  const std::size_t at = data.find(kLength);
  return at != std::string_view::npos && data.substr(at + kLength.size(), 2) != "0\r";
}
}  // namespace

ssize_t GuardedStream::write(const char* ptr, std::size_t size) {
  const std::string_view data(ptr, size);
  if (held_.empty()) {
    if (!IsHeadOfFixedBody(data)) return transport_.Send(ptr, size);
    held_.assign(data);
    return static_cast<ssize_t>(size);
  }
  if (size > kCoalesceMaxBytes) {
    if (!Flush()) return -1;
    return transport_.Send(ptr, size);
  }
  held_.append(data);
  return Flush() ? static_cast<ssize_t>(size) : -1;
}

void GuardedStream::get_remote_ip_and_port(std::string& ip, int& port) const {
  if (!remote_) {
    remote_.emplace();
    AddressOf(fd_, /*peer=*/true, remote_->ip, remote_->port);
  }
  ip = remote_->ip;
  port = remote_->port;
}

void GuardedStream::get_local_ip_and_port(std::string& ip, int& port) const {
  if (!local_) {
    local_.emplace();
    AddressOf(fd_, /*peer=*/false, local_->ip, local_->port);
  }
  ip = local_->ip;
  port = local_->port;
}

template <typename Base>
bool GuardedServer<Base>::process_and_close_socket(socket_t sock) {
  bool ret = false;
  if (t_shed_next) {
    t_shed_next = false;
    const std::string& reply = ShedReply();
    (void)!::send(sock, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  } else {
    std::unique_ptr<Transport> transport;
    if constexpr (std::is_base_of_v<httplib::SSLServer, Base>) {
      transport = TlsTransport::Accept(this->ssl_context(), sock);
    } else {
      transport = std::make_unique<SocketTransport>(sock);
    }
    if (transport) {
      GuardedStream stream(sock, *transport, limits_);
      ConnectionState state(stream);
      t_connection = &state;
      const std::function<bool()> stopped = [this] { return this->svr_sock_ == INVALID_SOCKET; };
      std::size_t left = this->keep_alive_max_count_;
      while (left > 0 && !stopped() && stream.WaitReadable(limits_.keep_alive_ms, stopped)) {
        stream.BeginHead();
        state.NextRequest();
        bool closed_by_client = false;
        RestoreThreadCache();  // a long-poll on this thread may have set it aside
        ret = this->process_request(stream, left == 1, closed_by_client,
                                    [&](httplib::Request& req) {
                                      stream.EndHead();
                                      screen_(req, state);
                                    });
        const bool sent = stream.Flush();  // a response without a body, or a refusal
        // A head that never parsed leaves the stream at an unknown place in the byte stream.
        if (sent && (state.closing() || (ret && stream.in_head()))) {
          LingerBeforeClose(sock, *transport);
          break;
        }
        if (!sent || !ret || closed_by_client) break;
        --left;
      }
      t_connection = nullptr;
    }
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return ret;
}

template class GuardedServer<httplib::Server>;
template class GuardedServer<httplib::SSLServer>;

std::unique_ptr<httplib::Server> MakeGuardedServer(const ConnectionLimits& limits,
                                                   HeadScreen screen, const std::string& cert,
                                                   const std::string& key) {
  if (cert.empty()) {
    return std::make_unique<GuardedServer<httplib::Server>>(limits, std::move(screen));
  }
  return std::make_unique<GuardedServer<httplib::SSLServer>>(limits, std::move(screen),
                                                              cert.c_str(), key.c_str());
}

}  // namespace jobstore::http
