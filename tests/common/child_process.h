// A tool run as a child process with pipes, for tests that talk to it while it runs
// (Ctrl-C, piped conversation turns, a file cut under it). Every wait is on the child's
// output or exit, never on time.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

namespace qrun::test {

class ChildProcess {
 public:
  // Starts argv[0] with stdout and stderr on one pipe of one page (a child that writes
  // more than that while nobody reads stops until someone does) and, when `input` is
  // given, stdin reading that text then EOF.
  explicit ChildProcess(const std::vector<std::string>& argv, const std::string* input = nullptr) {
    int out[2], in[2] = {-1, -1};
    if (::pipe2(out, O_CLOEXEC) != 0) return;
    ::fcntl(out[0], F_SETPIPE_SZ, 4096);
    if (input && ::pipe2(in, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::dup2(out[1], 2);
      if (input) ::dup2(in[0], 0);
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(out[1]);
    out_ = out[0];
    if (input) {
      ::close(in[0]);
      // Turns are short: they fit the pipe's buffer, so this never blocks.
      const ssize_t n = ::write(in[1], input->data(), input->size());
      (void)n;
      ::close(in[1]);
    }
  }
  ~ChildProcess() {
    if (pid_ > 0 && !waited_) {
      ::kill(pid_, SIGKILL);
      wait();
    }
    if (out_ >= 0) ::close(out_);
  }

  pid_t pid() const { return pid_; }
  bool started() const { return pid_ > 0 && out_ >= 0; }

  // Reads until the output so far contains `needle` (or until EOF); returns all output so far.
  const std::string& read_until(const std::string& needle) {
    while (output_.find(needle) == std::string::npos && read_more()) {
    }
    return output_;
  }
  // Reads until at least `bytes` have come in total (or EOF).
  const std::string& read_bytes(size_t bytes) {
    while (output_.size() < bytes && read_more()) {
    }
    return output_;
  }
  const std::string& read_to_end() {
    while (read_more()) {
    }
    return output_;
  }
  void signal(int sig) { ::kill(pid_, sig); }
  // The raw wait status.
  int wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    waited_ = true;
    return status;
  }
  const std::string& output() const { return output_; }

 private:
  bool read_more() {
    char buf[512];
    while (true) {
      const ssize_t n = ::read(out_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      output_.append(buf, static_cast<size_t>(n));
      return true;
    }
  }

  pid_t pid_ = -1;
  int out_ = -1;
  bool waited_ = false;
  std::string output_;
};

}  // namespace qrun::test
