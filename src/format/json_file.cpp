#include "src/format/json_file.h"

#include <fstream>
#include <string>

#include "qrun/error.h"

namespace qrun {

nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw Error(path.string(), -1, "cannot open");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path.string(), -1, std::string("malformed JSON: ") + e.what());
  }
}

}  // namespace qrun
