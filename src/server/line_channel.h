// JSON lines over a socket between the server's front process and a worker process.
#pragma once

#include <string>

namespace qrun::server {

class LineChannel {
 public:
  explicit LineChannel(int fd) : fd_(fd) {}
  LineChannel(const LineChannel&) = delete;
  LineChannel& operator=(const LineChannel&) = delete;
  ~LineChannel();

  enum class Read { Line, Timeout, Closed };
  // Waits up to timeout_ms (-1: for ever, 0: not at all) for one whole line.
  Read read_line(std::string& line, int timeout_ms);
  // False when the other end is gone.
  bool write_line(const std::string& line);
  int fd() const { return fd_; }

 private:
  int fd_;
  std::string buffer_;
  size_t scanned_ = 0;  // bytes of buffer_ known to hold no newline: a long line (an
                        // embedding job's answer, megabytes) is scanned once, not per read
};

}  // namespace qrun::server
