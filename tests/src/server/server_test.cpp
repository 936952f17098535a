// qserve end to end: a real server process with worker processes on stories260K, driven
// over HTTP. Every wait is on the server's output or a response, never on time.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <regex>
#include <thread>
#include <nlohmann/json.hpp>

#include "common/child_process.h"
#include "src/server/qserve_process.h"
#include "common/golden.h"
#include "common/lora_adapter_writer.h"
#include "convert/converter.h"
#include "common/model_fixture.h"
#include "qrun/embedding.h"
#include "qrun/model.h"
#include "src/runtime/gbnf_grammar.h"
#include "src/runtime/grammar.h"
#include "src/runtime/json_prefix.h"

namespace qrun {
namespace {

using nlohmann::json;
using test::free_port;
using test::health;
using test::post;
using test::QserveTest;
using test::Server;

const char* kChatml =
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

// The text and the last event of a server-sent-event body.
struct Sse {
  std::string text;
  std::string reasoning;  // chat: delta.reasoning_content
  std::vector<json> events;
  bool done = false;
};
Sse parse_sse(const std::string& body, bool chat) {
  Sse r;
  size_t at = 0;
  while ((at = body.find("data: ", at)) != std::string::npos) {
    const size_t end = body.find("\n\n", at);
    const std::string data = body.substr(at + 6, end - at - 6);
    at = end;
    if (data == "[DONE]") {
      r.done = true;
      continue;
    }
    const json e = json::parse(data);
    r.events.push_back(e);
    if (e.contains("choices") && !e["choices"].empty()) {
      const json& c = e["choices"][0];
      if (chat && c["delta"].contains("content")) r.text += c["delta"]["content"].get<std::string>();
      if (chat && c["delta"].contains("reasoning_content")) r.reasoning += c["delta"]["reasoning_content"].get<std::string>();
      if (!chat) r.text += c["text"].get<std::string>();
    }
  }
  return r;
}

// POST /v1/completions on a socket the test owns, so it can leave mid-answer; -1 on failure.
int raw_request(const Server& s, const json& body, const std::string& path = "/v1/completions") {
  const int sock = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(s.port()));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(sock, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  const std::string text = body.dump();
  const std::string http = "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                           std::to_string(text.size()) + "\r\n\r\n" + text;
  if (::send(sock, http.data(), http.size(), 0) != static_cast<ssize_t>(http.size())) return -1;
  return sock;
}

// A qserve that should refuse to start: its exit status and output. One that starts
// anyway is stopped (exit status then from SIGTERM).
struct Refusal {
  int status;
  std::string out;
};
Refusal start_refused(const std::vector<std::string>& flags) {
  std::vector<std::string> argv = {(test::bin_dir() / "qserve").string(), "-m",
                                   test::converted_stories(DType::Q8).string(), "-t", "1", "--workers", "1"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  test::ChildProcess p(argv);
  if (p.read_until("listening on").find("listening on") != std::string::npos) p.signal(SIGTERM);
  const std::string out = p.read_to_end();
  const int status = p.wait();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out};
}

// The HTTP response on a raw socket that sent `request` (as far as the server read it).
std::string raw_exchange(int port, const std::string& head, const std::string& body, bool chunked) {
  const int sock = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(sock, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return {};
  std::string wire = head;
  if (!chunked) {
    wire += body;
  } else {
    char size[32];
    for (size_t at = 0; at < body.size(); at += 4000) {
      const size_t n = std::min<size_t>(4000, body.size() - at);
      std::snprintf(size, sizeof size, "%zx\r\n", n);
      wire += size + body.substr(at, n) + "\r\n";
    }
    wire += "0\r\n\r\n";
  }
  // The server may answer and stop reading before all of it is sent.
  ::send(sock, wire.data(), wire.size(), MSG_NOSIGNAL);
  std::string got;
  char buf[4096];
  ssize_t n;
  while (got.find("\r\n\r\n") == std::string::npos && (n = ::recv(sock, buf, sizeof buf, 0)) > 0)
    got.append(buf, static_cast<size_t>(n));
  ::close(sock);
  return got;
}


// Greedy completions are the reference continuation, whole or streamed.
TEST_F(QserveTest, CompletionsGiveTheGoldenTextWholeAndStreamed) {
  Server s({"--workers", "2"}, DType::F32);
  ASSERT_TRUE(s.ready()) << s.log();
  for (const auto& c : test::load_golden()) {
    const json req = {{"prompt", c.prompt}, {"max_tokens", 100}, {"temperature", 0}, {"ignore_eos", true}};
    auto r = post(s, "/v1/completions", req);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const json j = json::parse(r->body);
    EXPECT_EQ(j["object"], "text_completion");
    EXPECT_EQ(j["choices"][0]["text"], c.greedy_text);
    EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(j["usage"]["prompt_tokens"], c.prompt_ids.size());
    EXPECT_EQ(j["usage"]["completion_tokens"], 100);

    json sreq = req;
    sreq["stream"] = true;
    sreq["stream_options"] = {{"include_usage", true}};
    r = post(s, "/v1/completions", sreq);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "text/event-stream");
    const Sse sse = parse_sse(r->body, false);
    EXPECT_EQ(sse.text, c.greedy_text);
    EXPECT_TRUE(sse.done);
    ASSERT_GE(sse.events.size(), 2u);
    EXPECT_EQ(sse.events.back()["usage"]["completion_tokens"], 100);
    EXPECT_EQ(sse.events[sse.events.size() - 2]["choices"][0]["finish_reason"], "length");
  }
  EXPECT_EQ(json::parse(s.client()->Get("/v1/models")->body)["data"][0]["object"], "model");
  // A prompt given as token ids (BOS included, as the client sends them) reads the same.
  const auto c = test::load_golden()[1];
  auto r = post(s, "/v1/completions", {{"prompt", c.prompt_ids}, {"max_tokens", 100}, {"temperature", 0}, {"ignore_eos", true}});
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["choices"][0]["text"], c.greedy_text);
  EXPECT_EQ(json::parse(r->body)["usage"]["prompt_tokens"], c.prompt_ids.size());
  r = post(s, "/v1/completions", {{"prompt", {1, 999999}}});
  EXPECT_EQ(r->status, 400) << r->body;
}

TEST_F(QserveTest, StopStringsEndTheText) {
  Server s({"--workers", "1"}, DType::F32);
  ASSERT_TRUE(s.ready()) << s.log();
  const auto c = test::load_golden()[0];
  const size_t at = c.greedy_text.find("Lily");
  auto r = post(s, "/v1/completions", {{"prompt", c.prompt}, {"max_tokens", 100}, {"temperature", 0}, {"stop", {"Lily", "zzz"}}});
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_EQ(j["choices"][0]["text"], c.greedy_text.substr(0, at));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
}

// llama.cpp's /tokenize and /detokenize: the model's own ids, with or without BOS and
// pieces, and back to the text; bad bodies are 400s naming the field.
std::vector<float> from_base64(const std::string& text) {
  std::string bytes;
  uint32_t bits = 0;
  int have = 0;
  for (char c : text) {
    const char* at = std::strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", c);
    if (c == '=' || !at) break;
    bits = bits << 6 | static_cast<uint32_t>(at - "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
    if ((have += 6) >= 8) bytes.push_back(static_cast<char>(bits >> (have -= 8)));
  }
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

// /v1/embeddings gives what the library's embed() gives for each input, in order, as
// text or token ids, floats or base64, shortened by `dimensions`; an input longer than
// the context is a 400 naming it; --pooling picks the pooling.
TEST_F(QserveTest, EmbeddingsAreTheLibrarysVectors) {
  Server s({"--workers", "2", "-c", "64"}, DType::Q8);
  ASSERT_TRUE(s.ready()) << s.log();
  const auto golden = test::load_golden();
  RuntimeOptions ro;
  ro.threads = 1;
  ro.context = 64;
  Model model(test::converted_stories(DType::Q8).string(), ro);
  const std::string texts[] = {golden[0].prompt, golden[1].prompt};
  auto r = post(s, "/v1/embeddings", json{{"input", texts}, {"model", "x"}});
  ASSERT_EQ(r->status, 200) << r->body;
  const json body = json::parse(r->body);
  EXPECT_EQ(body["object"], "list");
  ASSERT_EQ(body["data"].size(), 2u);
  size_t tokens = 0;
  std::vector<std::vector<float>> vectors;
  for (size_t i = 0; i < 2; ++i) {
    const std::vector<int32_t> ids = model.tokenizer().encode(texts[i], true, false);
    tokens += ids.size();
    const std::vector<float> want = embed(model, ids, Pooling::Last);
    const json& entry = body["data"][i];
    EXPECT_EQ(entry["object"], "embedding");
    EXPECT_EQ(entry["index"], i);
    vectors.push_back(entry["embedding"].get<std::vector<float>>());
    ASSERT_EQ(vectors[i].size(), want.size());
    for (size_t d = 0; d < want.size(); ++d) EXPECT_NEAR(vectors[i][d], want[d], 1e-6) << i << " " << d;
    // The same input as token ids.
    auto by_ids = post(s, "/v1/embeddings", json{{"input", ids}});
    ASSERT_EQ(by_ids->status, 200) << by_ids->body;
    EXPECT_EQ(json::parse(by_ids->body)["data"][0]["embedding"].get<std::vector<float>>(), vectors[i]);
  }
  EXPECT_NE(vectors[0], vectors[1]);
  EXPECT_EQ(body["usage"]["prompt_tokens"], tokens);
  EXPECT_EQ(body["usage"]["total_tokens"], tokens);

  r = post(s, "/v1/embeddings", json{{"input", texts[0]}, {"encoding_format", "base64"}});
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(from_base64(json::parse(r->body)["data"][0]["embedding"]), vectors[0]);
  r = post(s, "/v1/embeddings", json{{"input", texts[0]}, {"dimensions", 16}});
  ASSERT_EQ(r->status, 200) << r->body;
  const std::vector<float> short16 = json::parse(r->body)["data"][0]["embedding"].get<std::vector<float>>();
  ASSERT_EQ(short16.size(), 16u);
  double norm = 0.0, prefix = 0.0;
  for (size_t d = 0; d < 16; ++d) norm += short16[d] * short16[d], prefix += vectors[0][d] * vectors[0][d];
  EXPECT_NEAR(norm, 1.0, 1e-5);
  for (size_t d = 0; d < 16; ++d) EXPECT_NEAR(short16[d], vectors[0][d] / std::sqrt(prefix), 1e-6);

  std::string long_text;
  for (int i = 0; i < 40; ++i) long_text += "the cat sat. ";
  r = post(s, "/v1/embeddings", json{{"input", {texts[0], long_text}}});
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(json::parse(r->body)["error"]["param"], "input[1]") << r->body;
  r = post(s, "/v1/embeddings", json{{"input", "a"}, {"dimensions", 65}});
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(json::parse(s.client()->Get("/v1/models")->body)["data"][0]["meta"]["pooling"], "last");

  Server mean({"--workers", "1", "--pooling", "mean"}, DType::Q8);
  ASSERT_TRUE(mean.ready()) << mean.log();
  r = post(mean, "/v1/embeddings", json{{"input", texts[1]}});
  ASSERT_EQ(r->status, 200) << r->body;
  const std::vector<float> got = json::parse(r->body)["data"][0]["embedding"].get<std::vector<float>>();
  const std::vector<float> want = embed(model, model.tokenizer().encode(texts[1], true, false), Pooling::Mean);
  for (size_t d = 0; d < want.size(); ++d) EXPECT_NEAR(got[d], want[d], 1e-6) << d;
}

TEST_F(QserveTest, TokenizeAndDetokenize) {
  Server s({"--workers", "1"}, DType::Q8);
  ASSERT_TRUE(s.ready()) << s.log();
  const auto c = test::load_golden()[1];
  auto r = post(s, "/tokenize", {{"content", c.prompt}, {"add_special", true}});
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["tokens"].get<std::vector<int32_t>>(), c.prompt_ids);
  r = post(s, "/tokenize", {{"content", c.prompt}, {"with_pieces", true}});
  ASSERT_EQ(r->status, 200) << r->body;
  const json pieces = json::parse(r->body)["tokens"];
  ASSERT_EQ(pieces.size() + 1, c.prompt_ids.size());  // no BOS by default
  std::string text;
  for (size_t i = 0; i < pieces.size(); ++i) {
    EXPECT_EQ(pieces[i]["id"], c.prompt_ids[i + 1]);
    text += pieces[i]["piece"].get<std::string>();
  }
  EXPECT_EQ(text, " " + c.prompt);  // SentencePiece's dummy prefix
  // An emoji is four byte-fallback pieces here, each a part of a character: bytes.
  r = post(s, "/tokenize", {{"content", "\xF0\x9F\x99\x82"}, {"with_pieces", true}});
  ASSERT_EQ(r->status, 200) << r->body;
  std::vector<int> bytes;
  const json emoji = json::parse(r->body);
  for (const json& p : emoji["tokens"])
    if (p["piece"].is_array())
      for (const json& b : p["piece"]) bytes.push_back(b.get<int>());
  EXPECT_EQ(bytes, (std::vector<int>{0xF0, 0x9F, 0x99, 0x82})) << r->body;
  const std::vector<int32_t> no_bos(c.prompt_ids.begin() + 1, c.prompt_ids.end());
  r = post(s, "/detokenize", {{"tokens", no_bos}});
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["content"], c.prompt);
  // Special tokens come back as their text, as /tokenize (parse_special) reads them.
  r = post(s, "/detokenize", {{"tokens", c.prompt_ids}});
  ASSERT_EQ(r->status, 200) << r->body;
  const std::string with_bos = json::parse(r->body)["content"];
  EXPECT_EQ(with_bos.rfind("<s>", 0), 0u) << with_bos;
  EXPECT_TRUE(with_bos.ends_with(c.prompt)) << with_bos;
  for (const auto& [path, body, param] : {std::tuple{"/tokenize", json{{"text", "x"}}, "content"},
                                          std::tuple{"/tokenize", json{{"content", "x"}, {"add_special", 1}}, "add_special"},
                                          std::tuple{"/detokenize", json{{"tokens", {1, 512}}}, "tokens"},
                                          std::tuple{"/detokenize", json{{"tokens", {-1}}}, "tokens"},
                                          std::tuple{"/detokenize", json{{"tokens", "1 2"}}, "tokens"},
                                          std::tuple{"/detokenize", json{{"tokens", {1.5}}}, "tokens"},
                                          std::tuple{"/tokenize", json{{"content", 5}}, "content"}}) {
    r = post(s, path, body);
    EXPECT_EQ(r->status, 400) << path << " " << body.dump();
    EXPECT_EQ(json::parse(r->body)["error"]["param"], param) << r->body;
  }
}

// response_format json_object: the reply is an object (finish_reason stop) or, cut by
// max_tokens, a prefix of one; streamed, the same text. (stories260K
// has no chat template, so /v1/completions, which takes the field as llama.cpp's does.)
TEST_F(QserveTest, JsonObjectFormatConstrainsTheReply) {
  Server s({"--workers", "1"}, DType::Q8);
  ASSERT_TRUE(s.ready()) << s.log();
  for (int seed = 1; seed <= 3; ++seed) {
    const json req = {{"prompt", "Tim liked to play"},
                      {"response_format", {{"type", "json_object"}}},
                      {"temperature", 1},
                      {"seed", seed},
                      {"max_tokens", 200}};
    auto r = post(s, "/v1/completions", req);
    ASSERT_EQ(r->status, 200) << r->body;
    const json j = json::parse(r->body);
    const std::string text = j["choices"][0]["text"];
    EXPECT_TRUE(JsonPrefix().feed(std::string_view(text))) << text;
    if (j["choices"][0]["finish_reason"] == "stop") EXPECT_TRUE(json::parse(text).is_object()) << text;
    else EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
    json sreq = req;
    sreq["stream"] = true;
    r = post(s, "/v1/completions", sreq);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(parse_sse(r->body, false).text, text);
  }
}

// response_format json_schema: a reply that ends on its own has the schema's properties
// in the schema's order; a schema qrun cannot compile is a 400 naming it.
TEST_F(QserveTest, JsonSchemaFormatConstrainsTheReply) {
  Server s({"--workers", "1"}, DType::Q8);
  ASSERT_TRUE(s.ready()) << s.log();
  using ordered = nlohmann::ordered_json;  // "name" before "legs", as a client sends it
  const ordered schema = ordered::parse(R"({"type": "object", "properties": {"name": {"type": "string", "maxLength": 10},
      "legs": {"type": "integer"}}, "required": ["name", "legs"]})");
  int whole = 0;
  for (int seed = 1; seed <= 3; ++seed) {
    const ordered req = {{"prompt", "Tim liked to play"},
                      {"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "pet"}, {"schema", schema}}}}},
                      {"temperature", 1},
                      {"seed", seed},
                      {"max_tokens", 300}};
    auto r = post(s, "/v1/completions", req);
    ASSERT_EQ(r->status, 200) << r->body;
    const json j = json::parse(r->body);
    const std::string text = j["choices"][0]["text"];
    if (j["choices"][0]["finish_reason"] != "stop") continue;
    ++whole;
    const auto reply = nlohmann::ordered_json::parse(text);
    ASSERT_EQ(reply.size(), 2u) << text;
    EXPECT_EQ(reply.begin().key(), "name") << text;
    EXPECT_TRUE(reply["name"].is_string() && reply["legs"].is_number_integer()) << text;
    ordered sreq = req;
    sreq["stream"] = true;
    r = post(s, "/v1/completions", sreq);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(parse_sse(r->body, false).text, text);
  }
  EXPECT_GT(whole, 0);
  auto r = post(s, "/v1/completions", {{"prompt", "x"},
                                       {"response_format", {{"type", "json_schema"},
                                                            {"json_schema", {{"schema", {{"type", "string"}, {"pattern", "^a"}}}}}}}});
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(json::parse(r->body)["error"]["param"], "response_format.json_schema.schema") << r->body;
}

// llama.cpp's "grammar" field: the reply is text of the GBNF grammar, whole when the
// request ends on its own.
TEST_F(QserveTest, GrammarFieldConstrainsTheReply) {
  Server s({"--workers", "1"}, DType::Q8);
  ASSERT_TRUE(s.ready()) << s.log();
  const std::string gbnf = "root ::= \" \" (\"yes\" | \"no\") \", \" [a-z]{1,12} \".\"\n";
  const std::regex reply(R"( (yes|no), [a-z]{1,12}\.)");
  for (int seed = 1; seed <= 3; ++seed) {
    auto r = post(s, "/v1/completions", {{"prompt", "Tim said"}, {"grammar", gbnf}, {"seed", seed}, {"max_tokens", 40}});
    ASSERT_EQ(r->status, 200) << r->body;
    const json j = json::parse(r->body);
    const std::string text = j["choices"][0]["text"];
    EXPECT_TRUE(GrammarPrefix(gbnf_grammar(gbnf)).feed(std::string_view(text))) << text;
    if (j["choices"][0]["finish_reason"] == "stop") {
      EXPECT_TRUE(std::regex_match(text, reply)) << text;
    }
  }
  auto r = post(s, "/v1/completions", {{"prompt", "x"}, {"grammar", "root ::= [z-a]"}});
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(json::parse(r->body)["error"]["param"], "grammar") << r->body;
}

// The sampling fields reach the worker's sampler: OpenAI's penalties change a greedy
// text, and a seed repeats a sampled one, also when the second request finds its prompt
// cached (q8: its prompt and step activations differ in bits on AVX-512 VNNI CPUs).
TEST_F(QserveTest, PenaltiesAndSeedReachTheSampler) {
  Server s({"--workers", "1"}, DType::Q8);
  ASSERT_TRUE(s.ready()) << s.log();
  const auto c = test::load_golden()[1];
  auto text = [&](json req) {
    req["prompt"] = c.prompt;
    req["max_tokens"] = 60;
    req["ignore_eos"] = true;
    auto r = post(s, "/v1/completions", req);
    EXPECT_EQ(r->status, 200) << r->body;
    const json j = json::parse(r->body);
    return std::make_pair(j["choices"][0]["text"].get<std::string>(), j["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>());
  };
  const auto greedy = text({{"temperature", 0}}).first;
  EXPECT_NE(text({{"temperature", 0}, {"frequency_penalty", 2}}).first, greedy);
  EXPECT_NE(text({{"temperature", 0}, {"presence_penalty", 2}}).first, greedy);
  const json seeded = {{"temperature", 1.5}, {"top_k", 0}, {"seed", 11}};
  s.client()->Post("/v1/completions", json({{"prompt", "Tom had a red ball."}, {"max_tokens", 1}}).dump(), "application/json");
  const auto first = text(seeded), second = text(seeded);
  EXPECT_LE(first.second, 1);  // at most BOS in common with the request before
  EXPECT_EQ(second.second, static_cast<int>(c.prompt_ids.size()) - 1);
  EXPECT_EQ(second.first, first.first);
}

// Chat on a template; a request that continues a conversation a worker holds evaluates
// only the new turn, even with another conversation in between.
TEST_F(QserveTest, ChatTurnsReuseTheWorkersCache) {
  Server s({"--workers", "2", "--chat-template", kChatml});
  ASSERT_TRUE(s.ready()) << s.log();
  json msgs = json::array({{{"role", "system"}, {"content", "You tell stories."}}, {{"role", "user"}, {"content", "Once upon a time"}}});
  auto r = post(s, "/v1/chat/completions", {{"messages", msgs}, {"max_tokens", 16}, {"temperature", 0}});
  ASSERT_EQ(r->status, 200) << r->body;
  const json first = json::parse(r->body);
  EXPECT_EQ(first["object"], "chat.completion");
  EXPECT_EQ(first["choices"][0]["message"]["role"], "assistant");
  const std::string reply = first["choices"][0]["message"]["content"];
  EXPECT_FALSE(reply.empty());
  // Streamed, the same reply.
  r = post(s, "/v1/chat/completions", {{"messages", msgs}, {"max_tokens", 16}, {"temperature", 0}, {"stream", true}});
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(parse_sse(r->body, true).text, reply);
  // Another conversation, then the first one goes on.
  r = post(s, "/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "The dog ran"}}}}, {"max_tokens", 8}});
  ASSERT_EQ(r->status, 200) << r->body;
  msgs.push_back({{"role", "assistant"}, {"content", reply}});
  msgs.push_back({{"role", "user"}, {"content", "What happened next?"}});
  r = post(s, "/v1/chat/completions", {{"messages", msgs}, {"max_tokens", 8}, {"temperature", 0}});
  ASSERT_EQ(r->status, 200) << r->body;
  const json next = json::parse(r->body);
  const int prompt1 = first["usage"]["prompt_tokens"];
  EXPECT_GE(next["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), prompt1) << next.dump();
  EXPECT_LT(next["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), next["usage"]["prompt_tokens"].get<int>());
}

// OpenAI tool calling on Qwen3's real template. A required call is a call to an offered
// tool with arguments its schema allows, the same whole or streamed; a named one calls
// that tool; with "auto" the story model writes text, which comes back as content. A
// template that does not write calls refuses tools rather than ignoring them.
TEST_F(QserveTest, ToolCallsFollowToolChoice) {
  const std::string qwen3 = json::parse(test::read_text(test::shared_dir() / "tokenizers" / "qwen3" / "tokenizer_config.json"))
                                .at("chat_template");
  Server s({"--workers", "1", "-c", "2048", "--chat-template", qwen3}, DType::Q8);  // its tools preamble is long
  ASSERT_TRUE(s.ready()) << s.log();
  using ordered = nlohmann::ordered_json;
  const ordered tools = ordered::parse(R"([
      {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
       "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Rome"]},
                      "days": {"type": "integer", "minimum": 1, "maximum": 9}}, "required": ["city", "days"],
                      "additionalProperties": false}}},
      {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "additionalProperties": false}}}])");
  const ordered messages = ordered::parse(R"([{"role": "user", "content": "What is the weather in Paris?"}])");
  int called = 0;
  for (int seed = 1; seed <= 3; ++seed) {
    ordered req = {{"messages", messages}, {"tools", tools}, {"tool_choice", "required"},
                   {"temperature", 1}, {"seed", seed}, {"max_tokens", 400}};
    auto r = post(s, "/v1/chat/completions", req);
    ASSERT_EQ(r->status, 200) << r->body;
    const json choice = json::parse(r->body)["choices"][0];
    if (choice["finish_reason"] != "tool_calls") continue;  // the story model can write long runs of spaces
    ++called;
    const json& message = choice["message"];
    EXPECT_TRUE(message["content"].is_null()) << message;
    ASSERT_EQ(message["tool_calls"].size(), 1u) << message;
    const json& call = message["tool_calls"][0];
    EXPECT_EQ(call["id"].get<std::string>().rfind("call_", 0), 0u) << call;
    EXPECT_EQ(call["type"], "function");
    const std::string name = call["function"]["name"];
    const json args = json::parse(call["function"]["arguments"].get<std::string>());
    if (name == "get_weather") {
      EXPECT_TRUE(args["city"] == "Paris" || args["city"] == "Rome") << args;
      EXPECT_TRUE(args["days"].is_number_integer() && args["days"] >= 1 && args["days"] <= 9) << args;
      EXPECT_EQ(args.size(), 2u) << args;
    } else {
      EXPECT_EQ(name, "now");
      EXPECT_TRUE(args.is_object());
    }
    req["stream"] = true;
    r = post(s, "/v1/chat/completions", req);
    ASSERT_EQ(r->status, 200) << r->body;
    const Sse sse = parse_sse(r->body, true);
    EXPECT_EQ(sse.text, "");
    json streamed;
    for (const json& e : sse.events)
      if (e["choices"][0]["delta"].contains("tool_calls")) streamed = e["choices"][0]["delta"]["tool_calls"];
    ASSERT_EQ(streamed.size(), 1u) << r->body;
    EXPECT_EQ(streamed[0]["index"], 0);
    EXPECT_EQ(streamed[0]["function"], call["function"]);
    EXPECT_EQ(sse.events.back()["choices"][0]["finish_reason"], "tool_calls");
  }
  EXPECT_GT(called, 0);

  ordered named = {{"messages", messages}, {"tools", tools}, {"seed", 4}, {"max_tokens", 400},
                   {"tool_choice", {{"type", "function"}, {"function", {{"name", "now"}}}}}};
  auto r = post(s, "/v1/chat/completions", named);
  ASSERT_EQ(r->status, 200) << r->body;
  json choice = json::parse(r->body)["choices"][0];
  if (choice["finish_reason"] == "tool_calls") {
    EXPECT_EQ(choice["message"]["tool_calls"][0]["function"]["name"], "now");
    EXPECT_EQ(choice["message"]["tool_calls"][0]["function"]["arguments"], "{}");
  } else {
    EXPECT_EQ(choice["finish_reason"], "length") << choice;
  }

  r = post(s, "/v1/chat/completions", ordered{{"messages", messages}, {"tools", tools}, {"seed", 1}, {"max_tokens", 12}});
  ASSERT_EQ(r->status, 200) << r->body;
  choice = json::parse(r->body)["choices"][0];
  EXPECT_FALSE(choice["message"].contains("tool_calls")) << choice;
  EXPECT_FALSE(choice["message"]["content"].get<std::string>().empty()) << choice;

  // A reply cut short by max_tokens says "length", also after a whole call (the next may
  // be cut); whole and streamed alike.
  const std::string cut = "root ::= \"<tool_call>\\n{\\\"name\\\": \\\"now\\\", \\\"arguments\\\": {}}\\n</tool_call>\\n\" [a-z]{200,210}\n";
  for (const bool stream : {false, true}) {
    r = post(s, "/v1/chat/completions", ordered{{"messages", messages}, {"tools", tools}, {"grammar", cut}, {"seed", 1},
                                               {"max_tokens", 60}, {"stream", stream}});
    ASSERT_EQ(r->status, 200) << r->body;
    const json last = stream ? parse_sse(r->body, true).events.back() : json::parse(r->body);
    EXPECT_EQ(last["choices"][0]["finish_reason"], "length") << r->body;
    EXPECT_NE(r->body.find("call_"), std::string::npos) << r->body;  // the whole call was read
  }

  Server plain({"--workers", "1", "--chat-template", kChatml}, DType::Q8);
  ASSERT_TRUE(plain.ready()) << plain.log();
  r = post(plain, "/v1/chat/completions", ordered{{"messages", messages}, {"tools", tools}, {"max_tokens", 4}});
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(json::parse(r->body)["error"]["param"], "tools") << r->body;
  r = post(plain, "/v1/chat/completions",
           ordered{{"messages", messages}, {"tools", tools}, {"tool_choice", "none"}, {"max_tokens", 4}});
  EXPECT_EQ(r->status, 200) << r->body;
}

// A <think> block goes to reasoning_content (delta.reasoning_content in a stream), apart
// from the answer, as llama.cpp's server does; "reasoning_format": "none" leaves it in the
// content. The story model is held by a grammar to write one, with Qwen3's template and
// with a template whose prompt opens the block (as DeepSeek-R1's does).
TEST_F(QserveTest, ThinkingGoesToReasoningContent) {
  const std::string qwen3 = json::parse(test::read_text(test::shared_dir() / "tokenizers" / "qwen3" / "tokenizer_config.json"))
                                .at("chat_template");
  const std::string opens =
      "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
      "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}";
  const std::string words = "[a-z]{1,6} (\" \" [a-z]{1,6}){1,3}";
  for (const bool prompt_opens : {false, true}) {
    Server s({"--workers", "1", "--chat-template", prompt_opens ? opens : qwen3}, DType::Q8);
    ASSERT_TRUE(s.ready()) << s.log();
    const std::string gbnf = "root ::= " + std::string(prompt_opens ? "" : "\"<think>\\n\" ") + words +
                             " \"\\n</think>\\n\\n\" " + words + "\n";
    const std::regex text("[a-z]{1,6}( [a-z]{1,6}){1,3}");
    int whole = 0;
    for (int seed = 1; seed <= 3; ++seed) {
      json req = {{"messages", {{{"role", "user"}, {"content", "Tell me a story."}}}}, {"grammar", gbnf},
                  {"seed", seed}, {"max_tokens", 80}};
      auto r = post(s, "/v1/chat/completions", req);
      ASSERT_EQ(r->status, 200) << r->body;
      const json choice = json::parse(r->body)["choices"][0];
      if (choice["finish_reason"] != "stop") continue;
      ++whole;
      const json& message = choice["message"];
      const std::string reasoning = message.value("reasoning_content", ""), content = message["content"];
      EXPECT_TRUE(std::regex_match(reasoning, text)) << message;
      EXPECT_TRUE(std::regex_match(content, text)) << message;
      req["stream"] = true;
      r = post(s, "/v1/chat/completions", req);
      ASSERT_EQ(r->status, 200) << r->body;
      const Sse sse = parse_sse(r->body, true);
      EXPECT_EQ(sse.reasoning, reasoning) << r->body;
      EXPECT_EQ(sse.text, content) << r->body;
      req["stream"] = false;
      req["reasoning_format"] = "none";
      r = post(s, "/v1/chat/completions", req);
      ASSERT_EQ(r->status, 200) << r->body;
      const json kept = json::parse(r->body)["choices"][0]["message"];
      EXPECT_FALSE(kept.contains("reasoning_content")) << kept;
      EXPECT_EQ(kept["content"], std::string(prompt_opens ? "" : "<think>\n") + reasoning + "\n</think>\n\n" + content);
    }
    EXPECT_GT(whole, 0);
  }
  Server none({"--workers", "1", "--chat-template", opens, "--reasoning-format", "none"}, DType::Q8);
  ASSERT_TRUE(none.ready()) << none.log();
  auto r = post(none, "/v1/chat/completions",
                json{{"messages", {{{"role", "user"}, {"content", "Hi"}}}}, {"max_tokens", 8}, {"seed", 1}});
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_FALSE(json::parse(r->body)["choices"][0]["message"].contains("reasoning_content")) << r->body;
  r = post(none, "/v1/chat/completions",
           json{{"messages", {{{"role", "user"}, {"content", "Hi"}}}}, {"reasoning_format", "deepseek"}, {"max_tokens", 8}, {"seed", 1}});
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(json::parse(r->body)["choices"][0]["message"].contains("reasoning_content")) << r->body;
  for (const json& bad : {json("Deepseek"), json(true)}) {
    r = post(none, "/v1/chat/completions", json{{"messages", {{{"role", "user"}, {"content", "Hi"}}}}, {"reasoning_format", bad}});
    EXPECT_EQ(r->status, 400) << r->body;
    EXPECT_EQ(json::parse(r->body)["error"]["param"], "reasoning_format") << r->body;
  }
  r = post(none, "/v1/chat/completions",
           json{{"messages", {{{"role", "user"}, {"content", "Hi"}}, {{"role", "assistant"}, {"content", "Yo"}, {"reasoning_content", 3}}}}});
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(json::parse(r->body)["error"]["param"], "messages[1].reasoning_content") << r->body;
  const Refusal refused = start_refused({"--reasoning-format", "deep"});
  EXPECT_NE(refused.status, 0);
  EXPECT_NE(refused.out.find("--reasoning-format"), std::string::npos) << refused.out;
}

// A template that writes Mistral's [THINK] ... [/THINK] (Magistral's) makes those the
// tags the reply's reasoning is read between: held by a grammar to write a block.
TEST_F(QserveTest, MistralThinkBlockGoesToReasoningContent) {
  const std::string magistral =
      "{%- for m in messages %}{% if m.role == 'user' %}[INST]{{ m.content }}[/INST]{% else %}"
      "{% if m.reasoning_content %}[THINK]{{ m.reasoning_content }}[/THINK]{% endif %}{{ m.content }}</s>{% endif %}"
      "{% endfor %}";
  Server s({"--workers", "1", "--chat-template", magistral}, DType::Q8);
  ASSERT_TRUE(s.ready()) << s.log();
  const std::string words = "[a-z]{1,6} (\" \" [a-z]{1,6}){1,3}";
  const json req = {{"messages", json::array({json{{"role", "user"}, {"content", "Tell me a story."}}})},
                    {"grammar", "root ::= \"[THINK]\" " + words + " \"[/THINK]\" " + words + "\n"},
                    {"seed", 1}, {"max_tokens", 80}};
  for (const bool stream : {false, true}) {
    json r = req;
    r["stream"] = stream;
    const auto res = post(s, "/v1/chat/completions", r);
    ASSERT_EQ(res->status, 200) << res->body;
    std::string reasoning, content;
    if (stream) {
      const Sse sse = parse_sse(res->body, true);
      reasoning = sse.reasoning, content = sse.text;
    } else {
      const json message = json::parse(res->body)["choices"][0]["message"];
      reasoning = message.value("reasoning_content", ""), content = message["content"];
    }
    const std::regex text("[a-z]{1,6}( [a-z]{1,6}){1,3}");
    EXPECT_TRUE(std::regex_match(reasoning, text)) << res->body;
    EXPECT_TRUE(std::regex_match(content, text)) << res->body;
  }
}

// Required calls to get_weather (city Paris or Rome) on `s`, whose template has some call
// form, with `options` added to the request: a call comes back whole and streamed alike,
// and goes back to the template with the tool's result (the conversation goes on). Seeds
// until one call completes (the story model pads JSON with whitespace: some run out of
// tokens); returns it, or null when none did.
json weather_call_round_trip(const Server& s, const nlohmann::ordered_json& options) {
  using ordered = nlohmann::ordered_json;
  const ordered tools = ordered::parse(R"([
      {"type": "function", "function": {"name": "get_weather",
       "parameters": {"type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Rome"]}},
                      "required": ["city"], "additionalProperties": false}}}])");
  ordered messages = ordered::parse(R"([{"role": "user", "content": "What is the weather in Paris?"}])");
  for (int seed = 1; seed <= 6; ++seed) {
    ordered req = {{"messages", messages}, {"tools", tools}, {"tool_choice", "required"}, {"seed", seed}, {"max_tokens", 400}};
    if (options.is_object()) req.update(options);
    auto r = post(s, "/v1/chat/completions", req);
    EXPECT_EQ(r->status, 200) << r->body;
    const json choice = json::parse(r->body)["choices"][0];
    if (choice["finish_reason"] != "tool_calls") continue;
    EXPECT_TRUE(choice["message"]["content"].is_null()) << choice;
    EXPECT_EQ(choice["message"]["tool_calls"].size(), 1u) << choice;
    const json call = choice["message"]["tool_calls"][0];
    EXPECT_EQ(call["function"]["name"], "get_weather");
    const json args = json::parse(call["function"]["arguments"].get<std::string>());
    EXPECT_TRUE(args == json({{"city", "Paris"}}) || args == json({{"city", "Rome"}})) << args;
    req["stream"] = true;
    r = post(s, "/v1/chat/completions", req);
    EXPECT_EQ(r->status, 200) << r->body;
    const Sse sse = parse_sse(r->body, true);
    EXPECT_EQ(sse.text, "");
    EXPECT_GE(sse.events.size(), 3u) << r->body;
    if (sse.events.size() >= 3u) {
      EXPECT_EQ(sse.events[sse.events.size() - 2]["choices"][0]["delta"]["tool_calls"][0]["function"], call["function"]) << r->body;
    }
    messages.push_back({{"role", "assistant"}, {"content", nullptr}, {"tool_calls", {call}}});
    messages.push_back({{"role", "tool"}, {"tool_call_id", call["id"]}, {"content", "21"}});
    r = post(s, "/v1/chat/completions", ordered{{"messages", messages}, {"tools", tools}, {"seed", 1}, {"max_tokens", 8}});
    EXPECT_EQ(r->status, 200) << r->body;
    return call;
  }
  return nullptr;
}

// A required call of `now` (a function of no arguments) on `s`, with `options` added to
// the request: its arguments must be {}; returns the text its tokens (logprobs) spell.
std::string required_now_call(const Server& s, const json& options) {
  const json tools = json::parse(R"([{"type": "function", "function": {"name": "now", "parameters": {}}}])");
  json req = {{"messages", json::array({json{{"role", "user"}, {"content", "Time?"}}})}, {"tools", tools},
              {"tool_choice", "required"}, {"logprobs", true}, {"max_tokens", 200}, {"seed", 1}};
  if (options.is_object()) req.update(options);
  auto r = post(s, "/v1/chat/completions", req);
  EXPECT_EQ(r->status, 200) << r->body;
  const json choice = json::parse(r->body)["choices"][0];
  EXPECT_EQ(choice["message"]["tool_calls"][0]["function"]["arguments"], "{}") << choice;
  std::string spelled;
  for (const json& t : choice["logprobs"]["content"]) spelled += t["token"].get<std::string>();
  return spelled;
}

// Llama 3.x's JSON calls ({"name", "parameters"} as the whole reply, results under an
// ipython header), on a template written the way Llama 3.1-3.3's write calls and results.
TEST_F(QserveTest, LlamaJsonToolCalls) {
  const std::string llama = R"({%- for m in messages -%}
{%- if m.role == 'tool' -%}
<|start_header_id|>ipython<|end_header_id|>

{{ m.content }}<|eot_id|>
{%- else -%}
<|start_header_id|>{{ m.role }}<|end_header_id|>

{% if m.tool_calls %}{"name": "{{ m.tool_calls[0].function.name }}", "parameters": {{ m.tool_calls[0].function.arguments | tojson }}}{% else %}{{ m.content }}{% endif %}<|eot_id|>
{%- endif -%}
{%- endfor -%}
{%- if tools %}<|start_header_id|>system<|end_header_id|>

Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.
{% for t in tools %}{{ t | tojson(indent=4) }}
{% endfor %}<|eot_id|>{% endif -%}
{%- if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>

{% endif -%})";
  Server s({"--workers", "1", "-c", "2048", "--chat-template", llama}, DType::Q8);
  ASSERT_TRUE(s.ready()) << s.log();
  EXPECT_FALSE(weather_call_round_trip(s, {}).is_null());
}

// Mistral's calls ([TOOL_CALLS] then a list of calls as the whole reply), on a template
// written the way Mistral's write calls and results; its call ids must be nine letters
// and digits, as Mistral 7B v0.3's template requires of the ids a client sends back.
TEST_F(QserveTest, MistralJsonToolCalls) {
  const std::string mistral = R"({{- bos_token }}
{%- for m in messages %}
{%- if m.role == 'user' %}
{%- if tools and loop.first %}[AVAILABLE_TOOLS] {{ tools | tojson }}[/AVAILABLE_TOOLS]{% endif %}
[INST]{{ m.content }}[/INST]
{%- elif m.tool_calls %}
{%- for c in m.tool_calls if c.id | length != 9 %}{{ raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}{% endfor %}
[TOOL_CALLS] [{% for c in m.tool_calls %}{"name": "{{ c.function.name }}", "arguments": {{ c.function.arguments | tojson }}, "id": "{{ c.id }}"}{{ ", " if not loop.last }}{% endfor %}]{{ eos_token }}
{%- elif m.role == 'tool' %}[TOOL_RESULTS] {"content": {{ m.content }}, "call_id": "{{ m.tool_call_id }}"}[/TOOL_RESULTS]
{%- else %}{{ m.content }}{{ eos_token }}
{%- endif %}
{%- endfor %})";
  Server s({"--workers", "1", "-c", "2048", "--chat-template", mistral}, DType::Q8);
  ASSERT_TRUE(s.ready()) << s.log();
  const json call = weather_call_round_trip(s, {{"parallel_tool_calls", false}});
  ASSERT_FALSE(call.is_null());
  EXPECT_TRUE(std::regex_match(call["id"].get<std::string>(), std::regex("[A-Za-z0-9]{9}"))) << call;
}

// Mistral's later calls ([TOOL_CALLS]name[ARGS]{arguments}), on a template written the
// way Mistral Small 3.2's and Magistral's write calls and results. stories260K has no
// [TOOL_CALLS] or [ARGS] token: the required call's grammar spells them.
TEST_F(QserveTest, MistralArgsToolCalls) {
  const std::string mistral = R"({{- bos_token }}
{%- for m in messages %}
{%- if m.role == 'user' %}
{%- if tools and loop.first %}[AVAILABLE_TOOLS]{{ tools | tojson }}[/AVAILABLE_TOOLS]{% endif %}
[INST]{{ m.content }}[/INST]
{%- elif m.tool_calls %}
{%- for c in m.tool_calls %}[TOOL_CALLS]{{ c.function.name }}[ARGS]{{ c.function.arguments }}{% endfor %}{{ eos_token }}
{%- elif m.role == 'tool' %}[TOOL_RESULTS]{{ m.content }}[/TOOL_RESULTS]
{%- else %}{{ m.content }}{{ eos_token }}
{%- endif %}
{%- endfor %})";
  Server s({"--workers", "1", "-c", "2048", "--chat-template", mistral}, DType::Q8);
  ASSERT_TRUE(s.ready()) << s.log();
  EXPECT_FALSE(weather_call_round_trip(s, {{"parallel_tool_calls", false}}).is_null());
  // The reply's tokens spell the call as the template writes one, after the [TOOL_CALLS]
  // the prompt ended with.
  const std::string spelled = required_now_call(s, {{"parallel_tool_calls", false}});
  EXPECT_TRUE(std::regex_match(spelled, std::regex(R"(now\[ARGS\]\{\s*\}\s*)"))) << spelled;
}

// gpt-oss's harmony calls (a message to functions.NAME in the commentary channel, the
// result a message from functions.NAME), on a template written the way gpt-oss's writes
// calls, results and the reasoning before a call. stories260K has none of harmony's
// control tokens: the required call's grammar spells the header after the name.
TEST_F(QserveTest, HarmonyToolCalls) {
  const std::string harmony = R"({%- set last = namespace(name='') -%}
{%- if tools %}<|start|>developer<|message|>namespace functions {
{% for t in tools %}type {{ t.function.name }} = (_: {{ t.function.parameters | tojson }}) => any;
{% endfor %}}<|end|>{% endif -%}
{%- for m in messages -%}
{%- if m.role == 'assistant' and m.tool_calls -%}
{%- if m.thinking is defined %}<|start|>assistant<|channel|>analysis<|message|>{{ m.thinking }}<|end|>{% endif -%}
<|start|>assistant to=functions.{{ m.tool_calls[0].function.name }}<|channel|>commentary json<|message|>{{ m.tool_calls[0].function.arguments | tojson }}<|call|>
{%- set last.name = m.tool_calls[0].function.name -%}
{%- elif m.role == 'assistant' %}<|start|>assistant<|channel|>final<|message|>{{ m.content }}<|end|>
{%- elif m.role == 'tool' %}<|start|>functions.{{ last.name }} to=assistant<|channel|>commentary<|message|>{{ m.content | tojson }}<|end|>
{%- else %}<|start|>{{ m.role }}<|message|>{{ m.content }}<|end|>
{%- endif -%}
{%- endfor -%}
{%- if add_generation_prompt %}<|start|>assistant{% endif -%})";
  Server s({"--workers", "1", "-c", "2048", "--chat-template", harmony}, DType::Q8);
  ASSERT_TRUE(s.ready()) << s.log();
  EXPECT_FALSE(weather_call_round_trip(s, {}).is_null());
  // The reply's tokens spell the rest of the call's header after the name.
  const std::string spelled = required_now_call(s, {});
  EXPECT_TRUE(std::regex_match(spelled, std::regex(R"(now <\|constrain\|>json<\|message\|>\{\s*\}\s*)"))) << spelled;
}

// logit_bias: a banned token is never sampled, a boosted one is; ids outside the
// vocabulary are a 400 naming the field.
TEST_F(QserveTest, LogitBiasBansAndBoosts) {
  Server s({"--workers", "1"}, DType::F32);
  ASSERT_TRUE(s.ready()) << s.log();
  const std::string prompt = "Once upon a time, Lily";
  Model model(test::converted_stories(DType::F32).string(), RuntimeOptions{});
  std::vector<int32_t> tokens = model.tokenizer().encode(prompt, true, false);
  std::vector<float> logits(model.hparams().vocab_size);
  model.forward(tokens, logits.data());
  const int32_t greedy = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  const int32_t boosted = model.tokenizer().encode(" purple", false, false).front();  // a word piece, not a byte
  ASSERT_NE(boosted, greedy);
  auto first_token = [&](const json& bias) {
    auto r = post(s, "/v1/completions", json{{"prompt", prompt}, {"max_tokens", 1}, {"temperature", 0}, {"logprobs", 0}, {"logit_bias", bias}});
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body)["choices"][0]["logprobs"]["tokens"][0].get<std::string>();
  };
  EXPECT_EQ(first_token(json::object()), model.tokenizer().token_text(greedy, true));
  EXPECT_NE(first_token(json{{std::to_string(greedy), -100}}), model.tokenizer().token_text(greedy, true));
  EXPECT_EQ(first_token(json::array({json::array({boosted, 100})})), model.tokenizer().token_text(boosted, true));
  auto r = post(s, "/v1/completions", json{{"prompt", prompt}, {"logit_bias", {{"100000", 1}}}});
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(json::parse(r->body)["error"]["param"], "logit_bias") << r->body;
}

// logprobs: each generated token's log-probability under the model, as an in-process
// Model gives it (forward the prompt, then one step per token, log-softmax in double),
// with the most likely alternatives; the same streamed; the tokens spell the text.
TEST_F(QserveTest, LogprobsAreTheModelsOwn) {
  Server s({"--workers", "1", "--chat-template", kChatml}, DType::F32);
  ASSERT_TRUE(s.ready()) << s.log();
  const std::string prompt = "Once upon a time, Lily";
  auto r = post(s, "/v1/completions", json{{"prompt", prompt}, {"max_tokens", 8}, {"temperature", 0}, {"logprobs", 3}});
  ASSERT_EQ(r->status, 200) << r->body;
  const json choice = json::parse(r->body)["choices"][0];
  const json& lp = choice["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 8u) << choice;
  Model model(test::converted_stories(DType::F32).string(), RuntimeOptions{});
  std::vector<int32_t> tokens = model.tokenizer().encode(prompt, true, false);
  std::vector<float> logits(model.hparams().vocab_size);
  model.forward(tokens, logits.data());
  std::string text;
  size_t offset = 0;
  for (size_t i = 0; i < 8; ++i) {
    const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    double sum = 0;
    for (const float l : logits) sum += std::exp(static_cast<double>(l) - logits[size_t(next)]);
    const std::string piece = model.tokenizer().token_text(next, true);
    EXPECT_EQ(lp["tokens"][i], piece) << i;
    EXPECT_NEAR(lp["token_logprobs"][i].get<double>(), -std::log(sum), 1e-4) << i;
    EXPECT_EQ(lp["text_offset"][i], offset);
    ASSERT_EQ(lp["top_logprobs"][i].size(), 3u);  // greedy: the token is the most likely
    EXPECT_EQ(lp["top_logprobs"][i][piece], lp["token_logprobs"][i]);
    for (const auto& [token, logprob] : lp["top_logprobs"][i].items()) EXPECT_LE(logprob.get<double>(), lp["token_logprobs"][i].get<double>());
    text += piece;
    offset += piece.size();
    model.step(next, logits.data());
  }
  EXPECT_EQ(choice["text"], text);

  // echo: the reply begins with the prompt, and its tokens' logprobs (after the BOS the
  // server added) come first, as the model gives them at each place of the prompt.
  r = post(s, "/v1/completions", json{{"prompt", prompt}, {"max_tokens", 2}, {"temperature", 0}, {"logprobs", 1}, {"echo", true}});
  ASSERT_EQ(r->status, 200) << r->body;
  const json echoed = json::parse(r->body)["choices"][0];
  EXPECT_EQ(echoed["text"], prompt + text.substr(0, echoed["text"].get<std::string>().size() - prompt.size()));
  const std::vector<int32_t> ids = model.tokenizer().encode(prompt, true, false);
  ASSERT_EQ(echoed["logprobs"]["tokens"].size(), ids.size() - 1 + 2) << echoed;
  std::vector<float> all(ids.size() * model.hparams().vocab_size);
  model.truncate(0);
  model.forward(ids, all.data(), true);
  for (size_t i = 1; i < ids.size(); ++i) {
    const std::span<const float> row(all.data() + (i - 1) * model.hparams().vocab_size, model.hparams().vocab_size);
    const float max = *std::max_element(row.begin(), row.end());
    double sum = 0;
    for (const float l : row) sum += std::exp(static_cast<double>(l) - max);
    const std::string piece = model.tokenizer().token_text(ids[i], true);
    EXPECT_EQ(echoed["logprobs"]["tokens"][i - 1], i == 1 ? piece.substr(1) : piece);  // the text begins without SentencePiece's space
    EXPECT_NEAR(echoed["logprobs"]["token_logprobs"][i - 1].get<double>(), row[size_t(ids[i])] - max - std::log(sum), 1e-4) << i;
  }
  EXPECT_NEAR(echoed["logprobs"]["token_logprobs"][ids.size() - 1].get<double>(), lp["token_logprobs"][0].get<double>(), 1e-3);
  std::string spelled;
  for (const json& t : echoed["logprobs"]["tokens"]) spelled += t.get<std::string>();
  EXPECT_EQ(spelled, echoed["text"]);
  EXPECT_EQ(echoed["logprobs"]["text_offset"][1], echoed["logprobs"]["tokens"][0].get<std::string>().size());
  // The same prompt as token ids (with its BOS) echoes the same.
  r = post(s, "/v1/completions", json{{"prompt", ids}, {"max_tokens", 2}, {"temperature", 0}, {"logprobs", 1}, {"echo", true}});
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["choices"][0]["text"], echoed["text"]);
  EXPECT_EQ(json::parse(r->body)["choices"][0]["logprobs"]["tokens"], echoed["logprobs"]["tokens"]);
  // A stop string's tokens are cut with its text: the tokens spell the text.
  const std::string cut_at = text.substr(text.size() / 2, 3);
  for (const bool stream : {false, true}) {
    r = post(s, "/v1/completions", json{{"prompt", prompt}, {"max_tokens", 8}, {"temperature", 0}, {"logprobs", 0},
                                        {"stop", {cut_at}}, {"stream", stream}});
    ASSERT_EQ(r->status, 200) << r->body;
    std::string cut_text, cut_tokens, last;
    for (const json& e : stream ? parse_sse(r->body, false).events : std::vector<json>{json::parse(r->body)}) {
      if (e["choices"].empty()) continue;
      cut_text += e["choices"][0]["text"].get<std::string>();
      if (!e["choices"][0]["logprobs"].is_null())
        for (const json& t : e["choices"][0]["logprobs"]["tokens"]) cut_tokens += last = t.get<std::string>();
    }
    EXPECT_EQ(cut_text, text.substr(0, text.find(cut_at))) << r->body;
    EXPECT_EQ(cut_tokens.substr(0, cut_text.size()), cut_text) << r->body;
    // Every token reported begins before the cut (the last may run into the stop string).
    if (!cut_text.empty()) {
      EXPECT_LT(cut_tokens.size() - last.size(), cut_text.size()) << r->body;
    }
  }
  r = post(s, "/v1/completions", json{{"prompt", prompt}, {"max_tokens", 0}, {"echo", true}});
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["choices"][0]["text"], prompt);
  EXPECT_TRUE(json::parse(r->body)["choices"][0]["logprobs"].is_null());

  // Streamed: each chunk carries its tokens' entries, which add up to the whole reply's.
  r = post(s, "/v1/completions", json{{"prompt", prompt}, {"max_tokens", 8}, {"temperature", 0}, {"logprobs", 3}, {"stream", true}});
  ASSERT_EQ(r->status, 200) << r->body;
  json streamed = json::array();
  for (const json& e : parse_sse(r->body, false).events)
    if (!e["choices"][0]["logprobs"].is_null())
      for (const json& t : e["choices"][0]["logprobs"]["token_logprobs"]) streamed.push_back(t);
  // (The second request finds its prompt cached and runs only its last token: float sums
  // in another order.)
  ASSERT_EQ(streamed.size(), lp["token_logprobs"].size());
  for (size_t i = 0; i < streamed.size(); ++i)
    EXPECT_NEAR(streamed[i].get<double>(), lp["token_logprobs"][i].get<double>(), 1e-3) << i;

  // Chat: logprobs.content entries with bytes and top_logprobs; none unless asked.
  const json messages = {{{"role", "user"}, {"content", "Tell me a story."}}};
  r = post(s, "/v1/chat/completions",
           json{{"messages", messages}, {"max_tokens", 6}, {"seed", 2}, {"logprobs", true}, {"top_logprobs", 2}});
  ASSERT_EQ(r->status, 200) << r->body;
  const json chat = json::parse(r->body)["choices"][0];
  const json& content = chat["logprobs"]["content"];
  ASSERT_EQ(content.size(), 6u) << chat;
  std::string bytes;
  for (const json& entry : content) {
    for (const json& b : entry["bytes"]) bytes += static_cast<char>(b.get<int>());
    EXPECT_LE(entry["logprob"].get<double>(), 0.0);
    ASSERT_EQ(entry["top_logprobs"].size(), 2u);
    EXPECT_GE(entry["top_logprobs"][0]["logprob"].get<double>(), entry["logprob"].get<double>());
  }
  EXPECT_EQ(bytes, chat["message"]["content"]);
  r = post(s, "/v1/chat/completions", json{{"messages", messages}, {"max_tokens", 2}});
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_TRUE(json::parse(r->body)["choices"][0]["logprobs"].is_null()) << r->body;
}

TEST_F(QserveTest, BadRequestsGetOpenAiErrors) {
  Server s({"--workers", "1", "--max-body", "2000", "--api-key", "sekret"});
  ASSERT_TRUE(s.ready()) << s.log();
  const httplib::Headers auth = {{"Authorization", "Bearer sekret"}};
  auto expect_error = [&](httplib::Result r, int status, const std::string& param) {
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, status) << r->body;
    const json j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << r->body;
    EXPECT_TRUE(j["error"]["message"].is_string());
    EXPECT_TRUE(j["error"]["type"].is_string());
    if (!param.empty()) {
      EXPECT_EQ(j["error"]["param"], param) << r->body;
    }
  };
  auto cli = s.client();
  expect_error(cli->Post("/v1/completions", auth, "{\"prompt\": ", "application/json"), 400, "");
  expect_error(cli->Post("/v1/completions", auth, "[1, 2]", "application/json"), 400, "");
  expect_error(post(s, "/v1/completions", {{"prompt", "Once"}, {"temperature", "hot"}}, auth), 400, "temperature");
  expect_error(post(s, "/v1/completions", {{"prompt", 5}}, auth), 400, "prompt");
  expect_error(post(s, "/v1/completions", {{"prompt", "Once"}, {"n", 2}}, auth), 400, "n");
  expect_error(post(s, "/v1/completions", {{"prompt", "Once"}, {"repeat_penalty", 0}}, auth), 400, "repeat_penalty");
  expect_error(post(s, "/v1/completions", {{"prompt", "Once"}, {"max_tokens", 600}}, auth), 400, "max_tokens");
  expect_error(post(s, "/v1/completions", {{"prompt", "Once"}, {"stop", {1, 2}}}, auth), 400, "stop");
  expect_error(post(s, "/v1/completions", {{"prompt", "Once"}, {"top_k", 1.5}}, auth), 400, "top_k");
  expect_error(post(s, "/v1/completions", {{"prompt", "Once"}, {"logprobs", 6}}, auth), 400, "logprobs");
  expect_error(post(s, "/v1/chat/completions", {{"messages", "hi"}}, auth), 400, "messages");
  expect_error(post(s, "/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "hi"}}}}}, auth), 400, "");
  expect_error(post(s, "/v1/completions", {{"prompt", std::string(3000, 'a')}}, auth), 413, "");
  expect_error(post(s, "/v1/completions", {{"prompt", "Once"}}), 401, "");
  expect_error(post(s, "/v1/completions", {{"prompt", "Once"}}, {{"Authorization", "Bearer wrong"}}), 401, "");
  expect_error(cli->Get("/v1/nothing", auth), 404, "");
  expect_error(cli->Get("/v1/models/other-model", auth), 404, "model");
  EXPECT_EQ(cli->Get("/health")->status, 200);
  const auto ok = post(s, "/v1/completions", {{"prompt", "Once"}, {"max_tokens", 4}}, auth);
  EXPECT_EQ(ok->status, 200) << ok->body;

  // A browser's preflight carries no key; every answer allows other origins.
  const auto preflight = cli->Options("/v1/chat/completions", {{"Origin", "http://localhost:3000"},
                                                                {"Access-Control-Request-Method", "POST"}});
  ASSERT_TRUE(preflight);
  EXPECT_EQ(preflight->status, 204);
  EXPECT_NE(preflight->get_header_value("Access-Control-Allow-Headers").find("Authorization"), std::string::npos);
  EXPECT_EQ(ok->get_header_value("Access-Control-Allow-Origin"), "*");
  // The scheme is case-insensitive, the key is not; a model is found by its id.
  const std::string id = json::parse(cli->Get("/v1/models", auth)->body)["data"][0]["id"];
  const auto model = cli->Get("/v1/models/" + id, {{"Authorization", "bearer sekret"}});
  EXPECT_EQ(model->status, 200) << model->body;
  EXPECT_EQ(json::parse(model->body)["id"], id);
  expect_error(cli->Get("/v1/models", {{"Authorization", "bearer SEKRET"}}), 401, "");
  // Completion ids do not repeat (and so cannot collide with another run's).
  const auto again = post(s, "/v1/completions", {{"prompt", "Once"}, {"max_tokens", 4}}, auth);
  const std::string id1 = json::parse(ok->body)["id"], id2 = json::parse(again->body)["id"];
  EXPECT_NE(id1, id2);
  EXPECT_EQ(id1.rfind("cmpl-", 0), 0u) << id1;
  EXPECT_EQ(id1.size(), 5u + 24u) << id1;
}

// A worker that dies mid-request fails that request with a 500 and is replaced.
TEST_F(QserveTest, DeadWorkerIs500ThenRestarted) {
  test::ScratchDir dir;
  Server s({"--workers", "1"}, DType::Q8, "abort:3:" + (dir / "fired").string());
  ASSERT_TRUE(s.ready()) << s.log();
  const json req = {{"prompt", "Once upon a time"}, {"max_tokens", 20}, {"ignore_eos", true}};
  auto r = post(s, "/v1/completions", req);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500) << r->body;
  EXPECT_NE(r->body.find("worker process died"), std::string::npos) << r->body;
  r = post(s, "/v1/completions", req);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(health(s)["worker_restarts"], 1);
}

// A client that goes away cancels its generation, which frees the worker for the request
// queued behind it; while both wait, the full queue answers 503.
TEST_F(QserveTest, DisconnectCancelsAndFullQueueIs503) {
  test::ScratchDir dir;
  Server s({"--workers", "1", "--max-queue", "1"}, DType::Q8, "stall:2:" + (dir / "fired").string());
  ASSERT_TRUE(s.ready()) << s.log();
  // A streaming request on a raw socket; its worker stalls after two tokens.
  const int sock = raw_request(s, {{"prompt", "Once upon a time"}, {"max_tokens", 100}, {"stream", true}, {"ignore_eos", true}});
  ASSERT_GE(sock, 0);
  std::string got;
  char buf[4096];
  while (std::count(got.begin(), got.end(), '\n') < 10) {  // headers, the role chunk and a text chunk
    const ssize_t n = ::recv(sock, buf, sizeof buf, 0);
    ASSERT_GT(n, 0) << got;
    got.append(buf, static_cast<size_t>(n));
  }
  ASSERT_NE(got.find("\"text\":\""), std::string::npos) << got;
  // A second request waits in the queue...
  int queued_status = 0;
  std::thread queued([&] {
    auto r = post(s, "/v1/completions", {{"prompt", "Once"}, {"max_tokens", 4}});
    queued_status = r ? r->status : -1;
  });
  int spins = 0;
  while (health(s)["queued"] != 1 && ++spins < 100000) {
  }
  // ...so a third finds the queue full.
  auto busy = post(s, "/v1/completions", {{"prompt", "Once"}, {"max_tokens", 4}});
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->status, 503) << busy->body;
  // The first client leaves: its generation is cancelled and the queued one is served.
  ::close(sock);
  queued.join();
  EXPECT_EQ(queued_status, 200);
  EXPECT_EQ(health(s)["cancelled"], 1);
}

// A non-streamed request whose client leaves is cancelled too (the front watches the
// connection while the worker generates).
TEST_F(QserveTest, DisconnectCancelsANonStreamedRequest) {
  test::ScratchDir dir;
  Server s({"--workers", "1"}, DType::Q8, "stall:2:" + (dir / "fired").string());
  ASSERT_TRUE(s.ready()) << s.log();
  const int sock = raw_request(s, {{"prompt", "Once upon a time"}, {"max_tokens", 100}, {"ignore_eos", true}});
  ASSERT_GE(sock, 0);
  int spins = 0;
  while (health(s)["idle_workers"] != 0 && ++spins < 100000) {  // the worker took it
  }
  ::close(sock);
  // Without the cancel the stalled worker would never take this one.
  auto r = post(s, "/v1/completions", {{"prompt", "Once"}, {"max_tokens", 4}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(health(s)["cancelled"], 1);
}

// An embedding request whose client leaves is cancelled between inputs: the worker is
// free for the next request, not killed (the front kills a worker that does not answer
// a cancel in 30 s, and a long list of inputs may take longer).
TEST_F(QserveTest, DisconnectCancelsAnEmbeddingRequest) {
  test::ScratchDir dir;
  Server s({"--workers", "1"}, DType::Q8, "stall:1:" + (dir / "fired").string());
  ASSERT_TRUE(s.ready()) << s.log();
  const int sock = raw_request(s, {{"input", {"Once", "upon", "a time"}}}, "/v1/embeddings");
  ASSERT_GE(sock, 0);
  int spins = 0;
  while (health(s)["idle_workers"] != 0 && ++spins < 100000) {  // the worker took it
  }
  ::close(sock);
  auto r = post(s, "/v1/embeddings", {{"input", "Once"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(health(s)["cancelled"], 1);
  EXPECT_EQ(health(s)["worker_restarts"], 0);
}

// A port another server holds is an error at start, not a second listener that takes
// some of its requests.
TEST_F(QserveTest, BusyPortFailsAtStart) {
  Server s({"--workers", "1"});
  ASSERT_TRUE(s.ready()) << s.log();
  const Refusal r = start_refused({"--port", std::to_string(s.port())});
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("cannot listen"), std::string::npos) << r.out;
}

// A chat template that does not parse fails at start, naming the template once.
TEST_F(QserveTest, BrokenChatTemplateFailsAtStart) {
  const Refusal r = start_refused({"--port", std::to_string(free_port()), "--chat-template", "{{ foo("});
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("chat template"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("chat template: chat template"), std::string::npos) << r.out;
}

// --model-draft: each worker drafts with the smaller model, and the replies are the
// model's own (q4 with a q8 draft: greedy and seeded, chat and completions, streamed or
// not). A draft that cannot be read stops qserve at start, naming the file.
TEST_F(QserveTest, DraftModelRepliesAreTheModelsOwn) {
  Server plain({"--workers", "1"}, DType::Q4),
      drafted({"--workers", "1", "-md", test::converted_stories(DType::Q8).string(), "--draft-max", "7"}, DType::Q4);
  ASSERT_TRUE(plain.ready()) << plain.log();
  ASSERT_TRUE(drafted.ready()) << drafted.log();
  for (const json& req : {json{{"prompt", "Once upon a time"}, {"max_tokens", 60}, {"temperature", 0}},
                          json{{"prompt", "The dog"}, {"max_tokens", 60}, {"temperature", 1}, {"seed", 3}},
                          json{{"prompt", "The dog"}, {"max_tokens", 60}, {"temperature", 1}, {"seed", 3}, {"stream", true}}}) {
    const auto a = post(plain, "/v1/completions", req), b = post(drafted, "/v1/completions", req);
    ASSERT_EQ(a->status, 200) << a->body;
    ASSERT_EQ(b->status, 200) << b->body;
    if (req.contains("stream")) {
      EXPECT_EQ(parse_sse(b->body, false).text, parse_sse(a->body, false).text);
    } else {
      EXPECT_EQ(json::parse(b->body)["choices"][0]["text"], json::parse(a->body)["choices"][0]["text"]) << req;
    }
  }
  const Refusal r = start_refused({"--port", std::to_string(free_port()), "--model-draft", "/nonexistent.q4"});
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("/nonexistent.q4: cannot open"), std::string::npos) << r.out;
}

// --max-body holds for chunked bodies, which carry no length up front; form-encoded
// bodies (curl -d's type) are read up to it as JSON ones are.
TEST_F(QserveTest, MaxBodyHoldsForChunkedAndFormBodies) {
  Server s({"--workers", "1", "--max-body", "20000"});
  ASSERT_TRUE(s.ready()) << s.log();
  const std::string big = json{{"prompt", std::string(30000, 'a')}}.dump();
  const std::string chunked = raw_exchange(s.port(), "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                                     "Transfer-Encoding: chunked\r\n\r\n", big, true);
  EXPECT_EQ(chunked.rfind("HTTP/1.1 413", 0), 0u) << chunked;
  const std::string padded = json{{"prompt", "Once"}, {"max_tokens", 2}}.dump() + std::string(12000, ' ');
  auto r = s.client()->Post("/v1/completions", padded, "application/x-www-form-urlencoded");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  r = s.client()->Post("/v1/completions", padded + std::string(10000, ' '), "application/x-www-form-urlencoded");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413) << r->body;
}

// Workers that die before serving (the model file broke under the server) are respawned
// after growing waits, not in a loop, and /health answers 503.
TEST_F(QserveTest, WorkersThatCannotLoadMakeHealth503) {
  test::ScratchDir dir;
  const auto model = dir / "stories260K.q8";
  std::filesystem::copy_file(test::converted_stories(DType::Q8), model);
  Server s({"--workers", "1"}, DType::Q8, {}, model);
  ASSERT_TRUE(s.ready()) << s.log();
  EXPECT_EQ(s.client()->Get("/health")->status, 200);
  std::filesystem::resize_file(model, 100000);
  auto r = post(s, "/v1/completions", {{"prompt", "Once"}, {"max_tokens", 3}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500) << r->body;
  httplib::Result h = s.client()->Get("/health");
  int spins = 0;
  while (h && h->status != 503 && ++spins < 100000) h = s.client()->Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 503) << h->body;
  const json j = json::parse(h->body);
  EXPECT_EQ(j["status"], "error");
  EXPECT_EQ(j["failing_workers"], 1);
}

// --lora reaches every worker: greedy completions from the base file with the adapter
// applied at run time are those of the file qconvert merged it into.
TEST_F(QserveTest, RunTimeLoraReachesEveryWorker) {
  test::ScratchDir dir;
  test::write_lora_adapter(test::stories_dir(), dir / "adapter", test::stories_layer_modules(2));
  ConvertOptions o;
  o.weight_type = DType::F32;
  o.lora = {{dir / "adapter", 2.0f}};
  convert_hf_checkpoint(test::stories_dir().string(), (dir / "merged.f32").string(), o);
  Server adapted({"--workers", "2", "--lora-scaled", (dir / "adapter").string(), "2"}, DType::F32);
  Server merged({}, DType::F32, {}, dir / "merged.f32"), plain({}, DType::F32);
  ASSERT_TRUE(adapted.ready()) << adapted.log();
  ASSERT_TRUE(merged.ready() && plain.ready()) << merged.log() << plain.log();
  const json req = {{"prompt", "Once upon a time"}, {"max_tokens", 40}, {"temperature", 0}, {"ignore_eos", true}};
  auto text = [&](const Server& s) {
    auto r = post(s, "/v1/completions", req);
    return r && r->status == 200 ? json::parse(r->body)["choices"][0]["text"].get<std::string>() : "failed";
  };
  const std::string want = text(merged);
  EXPECT_NE(want, text(plain));
  std::string first;
  std::thread other([&] { first = text(adapted); });  // two at once: one per worker
  const std::string second = text(adapted);
  other.join();
  EXPECT_EQ(first, want);
  EXPECT_EQ(second, want);
}

// llama.cpp's /apply-template: the prompt a chat request runs, as text. Tokenized as the
// chat path does (special tokens parsed, BOS), it is exactly as long as the prompt a
// chat completion of the same messages reports.
TEST_F(QserveTest, ApplyTemplateGivesThePromptAChatRuns) {
  Server s({"--workers", "1", "--chat-template", test::qwen3_chat_template()});
  ASSERT_TRUE(s.ready()) << s.log();
  const json messages = json::array({{{"role", "system"}, {"content", "Be brief."}},
                                     {{"role", "user"}, {"content", "Tell me about Lily."}}});
  auto r = post(s, "/apply-template", json{{"messages", messages}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const std::string prompt = json::parse(r->body)["prompt"];
  EXPECT_TRUE(prompt.starts_with("<|im_start|>system\nBe brief.<|im_end|>\n")) << prompt;
  EXPECT_TRUE(prompt.ends_with("<|im_start|>user\nTell me about Lily.<|im_end|>\n<|im_start|>assistant\n")) << prompt;
  r = post(s, "/tokenize", json{{"content", prompt}, {"add_special", true}, {"parse_special", true}});
  ASSERT_EQ(r->status, 200) << r->body;
  const size_t tokens = json::parse(r->body)["tokens"].size();
  r = post(s, "/v1/chat/completions", json{{"messages", messages}, {"max_tokens", 1}});
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["usage"]["prompt_tokens"], tokens);

  r = post(s, "/apply-template", json{{"messages", "hi"}});
  EXPECT_EQ(r->status, 400) << r->body;
  Server plain({"--workers", "1"});  // stories260K has no chat template
  ASSERT_TRUE(plain.ready()) << plain.log();
  r = post(plain, "/apply-template", json{{"messages", messages}});
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("no chat template"), std::string::npos) << r->body;
}

}  // namespace
}  // namespace qrun
