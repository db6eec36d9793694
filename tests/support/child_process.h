// Starts a program with its stdout on a pipe, so a test can read what it acknowledged and kill
// it with a real signal at any moment.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace jobstore::testing {

class ChildProcess {
 public:
  // argv[0] is the program's path. Returns with the child running. With merge_stderr, the
  // child's stderr goes to the same pipe.
  // The child is SIGKILLed when the thread that started it ends (PR_SET_PDEATHSIG), so a test
  // process killed by a timeout or a signal leaves no server behind: start children from a
  // thread that outlives them (the test's own).
  explicit ChildProcess(const std::vector<std::string>& argv, bool merge_stderr = false) {
    int fds[2];
    if (::pipe(fds) != 0) return;
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);  // the parent died before the line above
      ::dup2(fds[1], STDOUT_FILENO);
      if (merge_stderr) ::dup2(fds[1], STDERR_FILENO);
      ::close(fds[0]);
      ::close(fds[1]);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    out_ = fds[0];
  }
  ~ChildProcess() {
    Kill(SIGKILL);
    if (out_ >= 0) ::close(out_);
  }

  // Reads one line of the child's stdout; false at end of file.
  bool ReadLine(std::string* line) {
    line->clear();
    for (;;) {
      auto nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        *line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return true;
      }
      char chunk[4096];
      ssize_t n = ::read(out_, chunk, sizeof chunk);
      if (n <= 0) return false;
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  // Sends `sig` and reaps the child; returns its wait status.
  int Kill(int sig) {
    if (pid_ <= 0) return status_;
    ::kill(pid_, sig);
    ::waitpid(pid_, &status_, 0);
    pid_ = -1;
    return status_;
  }

  int Wait() {
    if (pid_ > 0) {
      ::waitpid(pid_, &status_, 0);
      pid_ = -1;
    }
    return status_;
  }

  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int status_ = 0;
  std::string buffer_;
};

}  // namespace jobstore::testing
