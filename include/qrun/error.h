// Errors carry where they happened: the file, the byte offset (or -1) and the reason.
// Library code throws qrun::Error; the tools print what() once and exit non-zero.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace qrun {

class Error : public std::runtime_error {
 public:
  Error(std::string file, int64_t offset, std::string reason)
      : std::runtime_error(format(file, offset, reason)),
        file_(std::move(file)), offset_(offset), reason_(std::move(reason)) {}
  explicit Error(std::string reason) : Error("", -1, std::move(reason)) {}

  const std::string& file() const { return file_; }
  int64_t offset() const { return offset_; }
  const std::string& reason() const { return reason_; }

 private:
  static std::string format(const std::string& file, int64_t offset, const std::string& reason) {
    std::string s;
    if (!file.empty()) s += file + ": ";
    if (offset >= 0) s += "at offset " + std::to_string(offset) + ": ";
    return s + reason;
  }
  std::string file_;
  int64_t offset_;
  std::string reason_;
};

}  // namespace qrun
