// One entry of a /v1/embeddings answer in OpenAI's shape: {"object": "embedding",
// "index", "embedding"}, the vector as floats or as base64 of its little-endian float32
// bytes (what the openai Python client asks for by default), shortened to `dimensions`
// and scaled back to unit length when asked.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace qrun::server {

nlohmann::json embedding_entry(std::vector<float> vector, size_t index, std::optional<int> dimensions, bool base64);

// RFC 4648 base64 with padding.
std::string base64_encode(std::string_view bytes);

// Floats as a JSON array of their shortest decimal forms (0.027380517, not the double
// 0.02738051675260067 a float becomes): half the text, and each reads back as the same float.
nlohmann::json float_array(const std::vector<float>& values);

}  // namespace qrun::server
