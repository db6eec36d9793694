// A bare TCP connection to the server under test, for clients that misbehave on purpose: send
// half a request, trickle bytes, never read.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace jobstore::testing {

// 127.0.0.1:port, for bind and connect.
inline sockaddr_in LoopbackAddress(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

class RawSocket {
 public:
  // receive_buffer_bytes > 0 fixes the socket's receive buffer before it connects (the kernel
  // then never grows it), so a client that never reads stalls the server after that many bytes
  // whatever the machine's tcp_rmem allows.
  explicit RawSocket(int port, int receive_buffer_bytes = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (receive_buffer_bytes > 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes, sizeof receive_buffer_bytes);
    }
    const sockaddr_in addr = LoopbackAddress(port);
    connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  bool connected() const { return connected_; }
  bool Send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  // Waits up to `timeout` for the server to answer or close. Returns what it sent (possibly
  // empty) and sets *closed when the connection ended.
  std::string ReadUntilClosed(std::chrono::milliseconds timeout, bool* closed) {
    std::string got;
    *closed = false;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return got;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return got;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        *closed = true;
        return got;
      }
      got.append(buf, static_cast<std::size_t>(n));
    }
  }

  // Sends `bytes`, then reads until the server closes or `timeout` passes.
  struct Exchange {
    std::string raw;
    bool closed = false;
    // The status of every response in `raw`, in order ("HTTP/1.1 200 ..." -> 200).
    std::vector<int> Statuses() const {
      std::vector<int> out;
      for (auto p = raw.find("HTTP/1.1 "); p != std::string::npos; p = raw.find("HTTP/1.1 ", p + 1)) {
        out.push_back(std::atoi(raw.c_str() + p + 9));
      }
      return out;
    }
  };
  Exchange SendAndRead(const std::string& bytes, std::chrono::milliseconds timeout) {
    Exchange e;
    Send(bytes);
    e.raw = ReadUntilClosed(timeout, &e.closed);
    return e;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

}  // namespace jobstore::testing
