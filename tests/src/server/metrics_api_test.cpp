// qserve's GET /metrics (Prometheus's text format) and GET /props (llama.cpp's server
// properties) on stories260K: the counters add up the usage the replies reported.
#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "src/server/qserve_process.h"

namespace qrun {
namespace {

using nlohmann::json;
using test::post;
using test::QserveTest;
using test::Server;

// Each sample's value; every sample follows its # HELP and # TYPE lines.
std::map<std::string, double> samples(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line, typed;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      typed = line.substr(7, line.find(' ', 7) - 7);
      const std::string type = line.substr(line.rfind(' ') + 1);
      EXPECT_TRUE(type == "counter" || type == "gauge") << line;
      continue;
    }
    const size_t space = line.find(' ');
    EXPECT_EQ(line.substr(0, space), typed) << line;
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

TEST_F(QserveTest, MetricsCountWhatTheRepliesReported) {
  const std::string tmpl =
      "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
      "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  Server s({"--workers", "1", "-c", "256", "--chat-template", tmpl});
  ASSERT_TRUE(s.ready()) << s.log();
  auto r = s.client()->Get("/metrics");
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; version=0.0.4");
  std::map<std::string, double> m = samples(r->body);
  EXPECT_EQ(m["qrun_tokens_predicted_total"], 0);
  EXPECT_EQ(m["qrun_workers"], 1);

  int prompt = 0, cached = 0, predicted = 0;
  const json chat = {{"messages", {{{"role", "user"}, {"content", "Tell me a story."}}}}, {"max_tokens", 12}, {"seed", 1}};
  // Streamed first: its worker is free again once the next request has one (one worker),
  // and a whole reply's worker is free before the reply goes out.
  for (const bool stream : {true, false}) {
    json body = chat;
    body["stream"] = stream;
    body["stream_options"] = {{"include_usage", true}};
    if (!stream) body.erase("stream_options");
    r = post(s, "/v1/chat/completions", body);
    ASSERT_EQ(r->status, 200) << r->body;
    const std::string last = stream ? r->body.substr(r->body.rfind("data: {")) : r->body;
    const json usage = json::parse(stream ? last.substr(6, last.find("\n\n") - 6) : last)["usage"];
    prompt += usage["prompt_tokens"].get<int>();
    cached += usage["prompt_tokens_details"]["cached_tokens"].get<int>();
    predicted += usage["completion_tokens"].get<int>();
  }
  EXPECT_GT(cached, 0);  // the second request found the first's prompt in the worker's cache
  m = samples(s.client()->Get("/metrics")->body);
  EXPECT_EQ(m["qrun_prompt_tokens_total"], prompt - cached);
  EXPECT_EQ(m["qrun_prompt_tokens_cached_total"], cached);
  EXPECT_EQ(m["qrun_tokens_predicted_total"], predicted);
  EXPECT_GT(m["qrun_tokens_predicted_seconds_total"], 0);
  EXPECT_EQ(m["qrun_requests_served_total"], 2);
  EXPECT_EQ(m["qrun_requests_processing"], 0);
  EXPECT_EQ(m["qrun_requests_deferred"], 0);
  EXPECT_EQ(m["qrun_worker_restarts_total"], 0);

  r = s.client()->Get("/props");
  ASSERT_EQ(r->status, 200);
  const json props = json::parse(r->body);
  EXPECT_EQ(props["default_generation_settings"]["n_ctx"], 256);
  EXPECT_EQ(props["total_slots"], 1);
  EXPECT_EQ(props["chat_template"], tmpl);
  EXPECT_EQ(props["modalities"]["vision"], false);
}

}  // namespace
}  // namespace qrun
