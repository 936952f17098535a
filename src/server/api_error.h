// An error the server answers with an HTTP status and OpenAI's error body:
// {"error": {"message", "type", "param", "code"}}.
#pragma once

#include <stdexcept>
#include <string>

namespace qrun::server {

struct ApiError : std::runtime_error {
  ApiError(int status, std::string message, std::string param = {})
      : std::runtime_error(std::move(message)), status(status), param(std::move(param)) {}
  int status;         // 400, 401, 404, 413, 500, 503
  std::string param;  // the offending field, when there is one
};

// A 400 naming the request's field: "'field' why".
[[noreturn]] inline void bad_field(const std::string& field, const std::string& why) {
  throw ApiError(400, "'" + field + "' " + why, field);
}

// The JSON body for an error status.
std::string error_body(int status, const std::string& message, const std::string& param = {});

}  // namespace qrun::server
