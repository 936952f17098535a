#include "src/format/text_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "qrun/error.h"

namespace qrun {

std::string read_text_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path, -1, "is a directory, not a " + what);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, -1, "cannot open the " + what + ": " + std::strerror(errno));
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) throw Error(path, -1, "cannot read the " + what);
  return text;
}

}  // namespace qrun
