#include "src/server/embedding_reply.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace qrun::server {

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t v = 0;
    for (size_t k = 0; k < 3; ++k) v = v << 8 | (k < n ? static_cast<uint8_t>(bytes[i + k]) : 0u);
    for (size_t k = 0; k < 4; ++k) out.push_back(k <= n ? kAlphabet[(v >> (18 - 6 * k)) & 63] : '=');
  }
  return out;
}

nlohmann::json float_array(const std::vector<float>& values) {
  nlohmann::json out = nlohmann::json::array();
  char text[32];
  for (float v : values) {
    const auto end = std::to_chars(text, text + sizeof text, v).ptr;
    double d = 0.0;  // the double nearest the float's shortest text: printed as that text
    std::from_chars(text, end, d);
    out.push_back(d);
  }
  return out;
}

nlohmann::json embedding_entry(std::vector<float> vector, size_t index, std::optional<int> dimensions, bool base64) {
  if (dimensions && static_cast<size_t>(*dimensions) < vector.size()) {
    vector.resize(static_cast<size_t>(*dimensions));
    double norm = 0.0;
    for (float v : vector) norm += double{v} * v;
    norm = std::sqrt(norm);
    if (norm > 0.0)
      for (float& v : vector) v = static_cast<float>(v / norm);
  }
  nlohmann::json entry = {{"object", "embedding"}, {"index", index}};
  if (base64) {
    std::string bytes(vector.size() * sizeof(float), '\0');  // little-endian hosts only (format.h)
    std::memcpy(bytes.data(), vector.data(), bytes.size());
    entry["embedding"] = base64_encode(bytes);
  } else {
    entry["embedding"] = float_array(vector);
  }
  return entry;
}

}  // namespace qrun::server
