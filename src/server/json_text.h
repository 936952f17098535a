// JSON as the server writes it, to clients and between its processes: compact, invalid
// UTF-8 (a model's reply may cut a character) replaced rather than thrown on.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace qrun::server {

inline std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace qrun::server
