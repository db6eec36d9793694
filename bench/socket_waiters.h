// Many parked HTTP requests held by one thread: the herd benchmark's waiters.
//
// Each waiter is a plain socket that sends one `GET path` with `Connection: close` and then waits
// for the server to answer and close. One thread watches every socket with epoll and counts a
// waiter as returned when its socket reaches end of stream (or fails). The waiters stand for
// clients on other machines: a thread per waiter would put thousands of client wake-ups, thread
// exits and stack unmappings (with their TLB-shootdown interrupts) into the same process and
// cores as the creates being measured, and that is the bench's cost, not the server's.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <thread>
#include <vector>

class SocketWaiters {
 public:
  // Connects `count` sockets to 127.0.0.1:port and sends each the request; the reader thread
  // starts at once. A socket that cannot connect or send counts as returned.
  SocketWaiters(int port, int count, const std::string& path) : epoll_(epoll_create1(0)) {
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                                "Connection: close\r\n\r\n";
    for (int i = 0; i < count; ++i) {
      int fd = Connect(port);
      if (fd < 0 || send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
                        static_cast<ssize_t>(request.size())) {
        if (fd >= 0) close(fd);
        ++returned_;
        continue;
      }
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.fd = fd;
      epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
      ++open_;
    }
    reader_ = std::thread([this] { ReadUntilAllClosed(); });
  }
  // Stops reading; sockets still open stay open until the process exits.
  ~SocketWaiters() {
    stop_ = true;
    if (reader_.joinable()) reader_.join();
    close(epoll_);
  }
  SocketWaiters(const SocketWaiters&) = delete;
  SocketWaiters& operator=(const SocketWaiters&) = delete;

  int returned() const { return returned_.load(); }

 private:
  static int Connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  }

  void ReadUntilAllClosed() {
    std::vector<epoll_event> events(256);
    char buf[16384];
    while (open_ > 0 && !stop_) {
      int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 100);
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        ssize_t got;
        while ((got = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
        }
        if (got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
          epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
          close(fd);
          --open_;
          ++returned_;
        }
      }
    }
  }

  const int epoll_;
  int open_ = 0;  // the reader thread's own after the constructor
  std::atomic<int> returned_{0};
  std::atomic<bool> stop_{false};
  std::thread reader_;
};
