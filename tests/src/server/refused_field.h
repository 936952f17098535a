// The field a request reader's refusal names: its ApiError's param ("(none)" for a
// refusal of the whole body), "" when the body is accepted. Every refusal is a 400 whose
// message begins with the quoted field.
#pragma once

#include <string>

#include <gtest/gtest.h>

#include "src/server/api_error.h"

namespace qrun::test {

template <class Read>
std::string refused_field(Read read, const std::string& body) {
  try {
    read(body);
    return "";
  } catch (const server::ApiError& e) {
    EXPECT_EQ(e.status, 400) << body;
    EXPECT_EQ(std::string(e.what()).rfind("'" + e.param + "'", 0) == 0, !e.param.empty()) << e.what();
    return e.param.empty() ? "(none)" : e.param;
  }
}

}  // namespace qrun::test
