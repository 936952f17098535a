#include "src/server/infill.h"
#include "src/server/llama_completion_reply.h"
#include "src/server/llama_completion_request.h"
#include "src/server/http_server.h"

#include <dirent.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "qrun/chat.h"
#include "qrun/embedding.h"
#include "qrun/error.h"
#include "qrun/model.h"
#include "qrun/model_file.h"
#include "src/server/anthropic_reply.h"
#include "src/server/anthropic_request.h"
#include "src/server/api_error.h"
#include "src/server/embedding_reply.h"
#include "src/server/json_text.h"
#include "src/server/logprobs.h"
#include "src/server/openai_reply.h"
#include "src/chat/harmony_reply.h"
#include "src/server/reasoning.h"
#include "src/chat/reply_scan.h"
#include "src/server/request.h"
#include "src/server/responses_reply.h"
#include "src/server/responses_request.h"
#include "src/server/server_metrics.h"
#include "src/server/tool_calls.h"
#include "src/server/worker_pool.h"

namespace qrun::server {

using nlohmann::json;

namespace {

// The connection's socket, found by its addresses, so a handler can tell that the client
// went away while a worker generates (cpp-httplib 0.11 does not say).
int find_client_socket(const httplib::Request& req) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return -1;
  int found = -1;
  while (dirent* e = ::readdir(dir)) {
    const int fd = std::atoi(e->d_name);
    struct stat st;
    if (fd <= 2 || ::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    sockaddr_storage local{}, peer{};
    socklen_t ll = sizeof local, pl = sizeof peer;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0 ||
        ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0)
      continue;
    auto port_of = [](const sockaddr_storage& a) {
      return a.ss_family == AF_INET ? ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port)
             : a.ss_family == AF_INET6 ? ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port) : 0;
    };
    char addr[INET6_ADDRSTRLEN] = {};
    if (peer.ss_family == AF_INET) ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in&>(peer).sin_addr, addr, sizeof addr);
    if (peer.ss_family == AF_INET6) ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6&>(peer).sin6_addr, addr, sizeof addr);
    if (port_of(local) == req.local_port && port_of(peer) == req.remote_port && req.remote_addr == addr) {
      found = fd;
      break;
    }
  }
  ::closedir(dir);
  return found;
}

bool client_gone(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLHUP | POLLERR)) return true;
  char c;
  return ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

void send_error(httplib::Response& res, int status, const std::string& message, const std::string& param = {}) {
  res.status = status;
  res.set_content(error_body(status, message, param), "application/json");
}

void send_anthropic_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(anthropic_error_body(status, message), "application/json");
}

// An error in the shape of the API the path belongs to.
void send_error_for(const httplib::Request& req, httplib::Response& res, int status, const std::string& message,
                    const std::string& param = {}) {
  if (req.path.rfind("/v1/messages", 0) == 0) send_anthropic_error(res, status, message);
  else send_error(res, status, message, param);
}

// Runs a route's work; a refusal or a failure is answered in the route's API's error shape.
template <class Work>
void guarded(const httplib::Request& req, httplib::Response& res, Work work) {
  try {
    work();
  } catch (const ApiError& e) {
    send_error_for(req, res, e.status, e.what(), e.param);
  } catch (const std::exception& e) {
    send_error_for(req, res, 500, e.what());
  }
}

// How a request's reply is read from the model's text, whatever its API's shape.
struct ReplyReading {
  bool tool_calls = false;        // tools were offered and may be called
  std::string reply_start = {};   // text the prompt already wrote of the reply (a required call's opening tag)
  bool parallel_tool_calls = true;
  std::string call_id_prefix;     // of the calls' ids: "call_" (OpenAI), "toolu_" (Anthropic)
  bool reasoning = false;         // a <think> block is read apart from the answer
  bool thinking_open = false;     // the prompt opened it: the reply begins inside
  bool logprobs = false;          // the request asked for logprobs
  bool harmony = false;           // a chat reply in gpt-oss's channels: reasoning, answer and calls read together
  Endpoint endpoint = Endpoint::ChatCompletions;  // the logprobs' shape

  // The choice's "logprobs" for chat-shaped entries (the worker's) whose text begins
  // `offset` bytes into the reply; null when not asked for.
  json logprobs_field(const json& entries, size_t offset) const {
    if (!logprobs) return nullptr;
    return endpoint == Endpoint::ChatCompletions ? json{{"content", entries}} : completion_logprobs(entries, offset);
  }
};

constexpr int kPollMs = 200;  // how often a waiting request checks that its client is still there

class Front {
 public:
  explicit Front(const ServerOptions& o)
      : opt_(o),
        file_(o.model_path, LoadMode::Mmap),
        tok_(deserialize_tokenizer(file_)),
        context_(resolved_context(file_.hparams(), o.context)),
        model_id_(std::filesystem::path(o.model_path).filename().string()) {
    const std::string tmpl = resolve_chat_template(tok_, o.chat_template);
    if (!tmpl.empty()) chat_.emplace(tok_, tmpl, o.chat_template_kwargs);
    if (chat_) tool_form_ = tool_call_form(chat_->template_text());
    call_marker_ids_ = special_token_ids(tok_, call_markers(tool_form_));
    if (chat_) think_tags_ = think_tags(chat_->template_text());
    harmony_ = chat_ && writes_harmony(chat_->template_text());
    // Mistral's tags and harmony's headers are control tokens.
    reply_marker_ids_ = special_token_ids(tok_, harmony_ ? harmony_tokens()
                                                          : std::vector<std::string_view>{think_tags_.open, think_tags_.close});
    pooling_ = resolve_pooling(file_.hparams(), o.pooling);
    fim_ = find_fim_tokens(tok_);
    pool_ = std::make_unique<WorkerPool>(o.worker_argv, o.workers, o.max_queue);
  }

  void routes(httplib::Server& svr) {
    svr.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
      const PoolStats s = pool_->stats();
      // Every worker dying before it serves (the log says why): requests cannot succeed.
      const bool broken = s.failing == s.workers;
      res.status = broken ? 503 : 200;
      res.set_content(dump({{"status", broken ? "error" : "ok"},
                            {"workers", s.workers},
                            {"idle_workers", s.idle},
                            {"failing_workers", s.failing},
                            {"queued", s.queued},
                            {"served", s.served},
                            {"cancelled", s.cancelled},
                            {"worker_restarts", s.restarts}}),
                      "application/json");
    });
    svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics_.prometheus(pool_->stats()), "text/plain; version=0.0.4");
    });
    // llama.cpp's server properties, which its web UI and some clients read the context from.
    svr.Get("/props", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(dump({{"default_generation_settings", {{"n_ctx", context_}, {"model", model_id_}}},
                            {"total_slots", opt_.workers},
                            {"model_path", opt_.model_path},
                            {"chat_template", chat_ ? chat_->template_text() : std::string()},
                            {"modalities", {{"vision", false}, {"audio", false}}},
                            {"build_info", "qrun"}}),
                      "application/json");
    });
    svr.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(dump({{"object", "list"}, {"data", json::array({model_object()})}}), "application/json");
    });
    svr.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      if (req.matches[1] == model_id_) res.set_content(dump(model_object()), "application/json");
      else send_error(res, 404, "no model '" + req.matches[1].str() + "' here: this server runs '" + model_id_ + "'", "model");
    });
    svr.Post("/v1/chat/completions",
             [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
               std::string body;
               if (read_body(req, reader, res, body)) complete(Endpoint::ChatCompletions, req, body, res);
             });
    svr.Post("/v1/completions",
             [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
               std::string body;
               if (read_body(req, reader, res, body)) complete(Endpoint::Completions, req, body, res);
             });
    // llama.cpp's native completion API (src/server/llama_completion_request.h).
    for (const char* path : {"/completion", "/completions"})
      svr.Post(path, [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
        std::string body;
        if (read_body(req, reader, res, body)) llama_completion(req, body, res);
      });
    svr.Post("/infill", [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
      std::string body;
      if (read_body(req, reader, res, body)) infill(req, body, res);
    });
    svr.Post("/v1/embeddings",
             [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
               std::string body;
               if (read_body(req, reader, res, body)) embeddings(req, body, res);
             });
    // OpenAI's Responses API (src/server/responses_request.h).
    svr.Post("/v1/responses",
             [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
               std::string body;
               if (read_body(req, reader, res, body)) responses(req, body, res);
             });
    // Anthropic's Messages API, as llama.cpp's server takes it (Claude Code and other
    // Anthropic clients; src/server/anthropic_request.h).
    svr.Post("/v1/messages",
             [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
               std::string body;
               if (read_body(req, reader, res, body)) messages(req, body, res);
             });
    svr.Post("/v1/messages/count_tokens",
             [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
               std::string body;
               if (read_body(req, reader, res, body)) count_tokens(req, body, res);
             });
    // llama.cpp's server routes, which clients use to count tokens before they send.
    svr.Post("/tokenize",
             [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
               std::string body;
               if (read_body(req, reader, res, body))
                 guarded(req, res, [&] { res.set_content(dump(tokenize(body)), "application/json"); });
             });
    // llama.cpp's POST /apply-template: a chat request's prompt as the model will read it.
    svr.Post("/apply-template",
             [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
               std::string body;
               if (read_body(req, reader, res, body))
                 guarded(req, res, [&] {
                   bool opens_thinking = false;
                   const std::string prompt = chat_prompt(parse_request(Endpoint::ChatCompletions, body), &opens_thinking);
                   res.set_content(dump({{"prompt", prompt}}), "application/json");
                 });
             });
    svr.Post("/detokenize",
             [this](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
               std::string body;
               if (read_body(req, reader, res, body))
                 guarded(req, res, [&] {  // special tokens as their text, as llama.cpp's: /tokenize parses them by default
                   const std::string text = tok_.decode(parse_detokenize_request(body, tok_.vocab_size()), true);
                   res.set_content(dump({{"content", text}}), "application/json");
                 });
             });
  }

  int context() const { return context_; }

  // The auth scheme is case-insensitive (RFC 7235), the key is not. Anthropic's clients
  // send the key alone as x-api-key.
  bool authorized(const httplib::Request& req) const {
    if (opt_.api_key.empty() || req.path == "/health") return true;
    if (req.has_header("x-api-key")) return req.get_header_value("x-api-key") == opt_.api_key;
    const std::string h = req.get_header_value("Authorization");
    constexpr std::string_view scheme = "bearer ";
    if (h.size() != scheme.size() + opt_.api_key.size()) return false;
    for (size_t i = 0; i < scheme.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(h[i])) != scheme[i]) return false;
    return h.compare(scheme.size(), std::string::npos, opt_.api_key) == 0;
  }

 private:
  json model_object() const {
    return {{"id", model_id_},
            {"object", "model"},
            {"created", static_cast<int64_t>(std::time(nullptr))},
            {"owned_by", "qrun"},
            {"meta", {{"n_ctx", context_}, {"n_vocab", tok_.vocab_size()}, {"n_embd", file_.hparams().dim},
                      {"pooling", pooling_name(pooling_)}}}};
  }

  json tokenize(const std::string& body) const {
    const TokenizeRequest r = parse_tokenize_request(body);
    const std::vector<int32_t> ids = tok_.encode(r.content, r.add_special, r.parse_special);
    if (!r.with_pieces) return {{"tokens", ids}};
    json tokens = json::array();
    for (int32_t id : ids) {
      // A piece that is part of a UTF-8 character goes out as its bytes, as llama.cpp does.
      const std::string bytes = tok_.token_text(id, true);
      json piece = bytes;
      try {
        (void)piece.dump();  // throws on invalid UTF-8
      } catch (const json::type_error&) {
        piece = std::vector<int>(reinterpret_cast<const uint8_t*>(bytes.data()),
                                 reinterpret_cast<const uint8_t*>(bytes.data()) + bytes.size());
      }
      tokens.push_back({{"id", id}, {"piece", piece}});
    }
    return {{"tokens", tokens}};
  }

  // "chatcmpl-" (or "call_" for a tool call) + 24 hex digits: random, so ids do not repeat
  // across restarts.
  std::string random_id(const char* prefix) {
    uint64_t hi, lo;
    {
      std::lock_guard lock(id_mutex_);
      hi = id_rng_(), lo = id_rng_();
    }
    char hex[25];
    std::snprintf(hex, sizeof hex, "%08x%016llx", static_cast<unsigned>(hi), static_cast<unsigned long long>(lo));
    return prefix + std::string(hex);
  }

  // Nine random letters and digits: Mistral's templates refuse any other call id.
  std::string random_short_id() {
    static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    std::lock_guard lock(id_mutex_);
    std::string id(9, ' ');
    for (char& c : id) c = kAlphabet[id_rng_() % (sizeof kAlphabet - 1)];
    return id;
  }

  // The calls of a finished reply get their ids; one only when parallel calls are off.
  std::vector<ToolCall> identified(std::vector<ToolCall> calls, const ReplyReading& reading) {
    if (!reading.parallel_tool_calls && calls.size() > 1) calls.resize(1);
    const bool mistral = tool_form_ == ToolCallForm::MistralJson || tool_form_ == ToolCallForm::MistralArgs;
    for (ToolCall& c : calls) c.id = mistral ? random_short_id() : random_id(reading.call_id_prefix.c_str());
    return calls;
  }

  // httplib caps only bodies with a Content-Length at --max-body (chunked ones it reads
  // whole) and form-encoded ones, curl -d's default type, at 8 KiB: read all here.
  bool read_body(const httplib::Request& req, const httplib::ContentReader& reader, httplib::Response& res,
                 std::string& body) const {
    if (req.is_multipart_form_data()) {
      send_error_for(req, res, 415, "send the request body as JSON, not as multipart form data");
      return false;
    }
    bool too_large = false;
    const bool read = reader([&](const char* data, size_t n) {
      too_large = body.size() + n > opt_.max_body;
      if (!too_large) body.append(data, n);
      return !too_large;
    });
    if (too_large || res.status == 413) {
      // The rest of the body stays unread (httplib parses it as further requests, each a
      // 400): the client is told to close.
      res.set_header("Connection", "close");
      send_error_for(req, res, 413, "request body larger than --max-body (" + std::to_string(opt_.max_body) + " bytes)");
      return false;
    }
    if (!read) send_error_for(req, res, 400, "the request body could not be read");
    return read;
  }

  // *opens_thinking: the chat prompt ends inside a <think> block.
  // A chat request's prompt as its template writes it, with a required call's opening.
  std::string chat_prompt(const CompletionRequest& r, bool* opens_thinking) const {
    if (!chat_)
      throw ApiError(400, "this model has no chat template: use /v1/completions, or start qserve with --chat-template");
    const bool offers_tools = r.offers_tools();
    if (offers_tools && tool_form_ == ToolCallForm::None)
      throw ApiError(400,
                     "this model's chat template does not write tool calls in a form qrun reads (<tool_call> "
                     "blocks, as Qwen2.5, Qwen3, Hermes and SmolLM3 templates do, Llama 3.x's JSON calls or "
                     "Mistral's [TOOL_CALLS], or gpt-oss's harmony messages to functions.NAME): "
                     "give qserve such a --chat-template, or send tool_choice \"none\"",
                     "tools");
    try {
      const std::string prompt = chat_->render(r.messages, true, offers_tools ? r.tools : std::string(), r.chat_template_kwargs);
      // A reply held to JSON is the answer, whatever the prompt opened.
      const bool json_reply = r.json_object || r.tool_choice == CompletionRequest::ToolChoice::Required;
      *opens_thinking = !json_reply && prompt_opens_thinking(prompt, think_tags_);
      return prompt + reply_start(r);
    } catch (const Error& e) {
      throw ApiError(400, e.what(), "messages");  // the message names the chat template
    }
  }

  std::vector<int32_t> prompt_tokens(const CompletionRequest& r, bool* opens_thinking) const {
    if (r.endpoint == Endpoint::ChatCompletions) return chat_->encode(chat_prompt(r, opens_thinking), true);
    if (r.prompt_ids.empty()) return tok_.encode(r.prompt, true, false);
    for (int32_t id : r.prompt_ids)
      if (id >= tok_.vocab_size())
        throw ApiError(400, "token id " + std::to_string(id) + " is outside the vocabulary of " +
                                std::to_string(tok_.vocab_size()), "prompt");
    return r.prompt_ids;
  }

  // A required call starts the reply: the prompt ends with its opening (Hermes's tag,
  // Mistral's [TOOL_CALLS]; nothing for Llama).
  std::string reply_start(const CompletionRequest& r) const {
    return std::string(r.tool_choice == CompletionRequest::ToolChoice::Required ? required_call_start(tool_form_) : "");
  }

  // `cap_max_tokens`: max_tokens is a ceiling the context's room lowers (Anthropic's, a
  // required field clients set high), not a promise that fails when there is no room.
  Job job_for(const CompletionRequest& r, std::vector<int32_t> prompt, bool cap_max_tokens) const {
    const int n = static_cast<int>(prompt.size());
    if (n == 0) throw ApiError(400, "the prompt is empty", r.endpoint == Endpoint::ChatCompletions ? "messages" : "prompt");
    if (n > context_ || (n == context_ && r.max_tokens != 0))  // max_tokens 0 scores a prompt that fills the context
      throw ApiError(400, "the prompt is " + std::to_string(n) + " tokens; the context is " + std::to_string(context_),
                     r.endpoint == Endpoint::ChatCompletions ? "messages" : "prompt");
    if (r.max_tokens && n + *r.max_tokens > context_ && !cap_max_tokens)
      throw ApiError(400, "max_tokens " + std::to_string(*r.max_tokens) + " with a prompt of " + std::to_string(n) +
                              " tokens exceeds the context of " + std::to_string(context_),
                     "max_tokens");
    Job job;
    job.prompt = std::move(prompt);
    job.max_tokens = std::min(r.max_tokens.value_or(context_ - n), context_ - n);
    job.sampling.temperature = r.temperature;
    job.sampling.top_p = r.top_p;
    job.sampling.top_k = r.top_k;
    job.sampling.min_p = r.min_p;
    job.sampling.repeat_penalty = r.repeat_penalty;
    job.sampling.frequency_penalty = r.frequency_penalty;
    job.sampling.presence_penalty = r.presence_penalty;
    for (const auto& [id, bias] : r.logit_bias)
      if (id >= tok_.vocab_size())
        throw ApiError(400, "logit_bias token id " + std::to_string(id) + " is outside the vocabulary of " +
                                std::to_string(tok_.vocab_size()), "logit_bias");
    job.sampling.logit_bias = r.logit_bias;
    // A required call is held to its form's schema (the request checked each tool's).
    const bool required_call = r.tool_choice == CompletionRequest::ToolChoice::Required;
    if (required_call && (tool_form_ == ToolCallForm::MistralArgs || tool_form_ == ToolCallForm::Harmony)) {
      job.tagged_json =
          tool_call_tagged_json(nlohmann::ordered_json::parse(r.tools), r.tool_name, tool_form_, r.parallel_tool_calls);
    } else {
      job.json_object = r.json_object || required_call;
      job.json_schema = required_call ? tool_call_schema(nlohmann::ordered_json::parse(r.tools), r.tool_name, tool_form_,
                                                         r.parallel_tool_calls)
                                      : r.json_schema;
    }
    job.grammar = r.grammar;
    if (r.endpoint == Endpoint::ChatCompletions) job.kept_tokens = reply_marker_ids_;
    if (r.offers_tools()) job.kept_tokens.insert(job.kept_tokens.end(), call_marker_ids_.begin(), call_marker_ids_.end());
    job.sampling.seed = r.seed ? *r.seed : std::random_device{}();
    job.ignore_eos = r.ignore_eos;
    job.stop = r.stop;
    job.logprobs = r.logprobs;
    // An echoed prompt's logprobs start after the BOS the server added.
    if (r.echo) job.echo_from = job.prompt[0] == tok_.bos_id() ? 1 : 0;
    return job;
  }

  void complete(Endpoint endpoint, const httplib::Request& req, const std::string& body, httplib::Response& res) {
    guarded(req, res, [&] {
      const CompletionRequest r = parse_request(endpoint, body);
      const std::string echo = !r.echo ? "" : r.prompt_ids.empty() ? r.prompt : tok_.decode(r.prompt_ids);
      const std::string id = random_id(endpoint == Endpoint::ChatCompletions ? "chatcmpl-" : "cmpl-");
      generate_reply(req, r, res, "call_", /*cap_max_tokens=*/false, [&](const Job&) {
        return std::make_shared<OpenAiReply>(endpoint, id, model_id_, echo, r.include_usage);
      });
    });
  }

  // llama.cpp's POST /completion: read into a text completion, answered in its shapes.
  void llama_completion(const httplib::Request& req, const std::string& body, httplib::Response& res) {
    guarded(req, res, [&] {
      const CompletionRequest r = parse_llama_completion_request(body);
      const std::string prompt = r.prompt_ids.empty() ? r.prompt : tok_.decode(r.prompt_ids);
      generate_reply(req, r, res, "call_", /*cap_max_tokens=*/false, [&](const Job&) {
        return std::make_shared<LlamaCompletionReply>(model_id_, prompt);
      });
    });
  }

  // llama.cpp's POST /infill (src/server/infill.h): the FIM prompt of a code model, answered
  // as /completion. Without max_tokens a quarter of the context (256 at most) stays free
  // for the reply; the inputs are cut to what is left.
  void infill(const httplib::Request& req, const std::string& body, httplib::Response& res) {
    guarded(req, res, [&] {
      if (!fim_.usable())
        throw ApiError(400, "this model has no fill-in-the-middle tokens (<|fim_prefix|>, <fim_prefix>, <PRE>, "
                            "[PREFIX]...): /infill needs a code model "
                            "trained for it");
      InfillRequest r = parse_infill_request(body);
      const int reserve = r.completion.max_tokens.value_or(std::min(256, context_ / 4));
      r.completion.prompt_ids = infill_prompt(tok_, fim_, r, std::max(8, context_ - reserve));
      generate_reply(req, r.completion, res, "call_", /*cap_max_tokens=*/false, [&](const Job&) {
        return std::make_shared<LlamaCompletionReply>(model_id_, r.prefix + r.typed);
      });
    });
  }

  // Anthropic's POST /v1/messages: read into a chat request, answered in its shapes.
  void messages(const httplib::Request& req, const std::string& body, httplib::Response& res) {
    guarded(req, res, [&] {
      const CompletionRequest r = parse_anthropic_request(body);
      const std::string id = random_id("msg_");
      generate_reply(req, r, res, "toolu_", /*cap_max_tokens=*/true, [&](const Job& job) {
        return std::make_shared<AnthropicReply>(id, model_id_, static_cast<int>(job.prompt.size()));
      });
    });
  }

  // OpenAI's POST /v1/responses: read into a chat request, answered in its shapes.
  void responses(const httplib::Request& req, const std::string& body, httplib::Response& res) {
    guarded(req, res, [&] {
      const ResponsesRequest r = parse_responses_request(body);
      const std::string id = random_id("resp_");
      generate_reply(req, r.chat, res, "call_", /*cap_max_tokens=*/true, [&](const Job&) {
        return std::make_shared<ResponsesReply>(id, model_id_, r.echoed);
      });
    });
  }

  // POST /v1/messages/count_tokens: the prompt's tokens as /v1/messages would run it.
  void count_tokens(const httplib::Request& req, const std::string& body, httplib::Response& res) {
    guarded(req, res, [&] {
      const CompletionRequest r = parse_anthropic_request(body);
      bool opens_thinking = false;
      res.set_content(dump({{"input_tokens", prompt_tokens(r, &opens_thinking).size()}}), "application/json");
    });
  }

  // Runs a chat or completion request on a worker and answers in the shape `make_shape`
  // gives for its job. Throws ApiError until the answer begins.
  template <class MakeShape>
  void generate_reply(const httplib::Request& req, const CompletionRequest& r, httplib::Response& res,
                      const char* call_id_prefix, bool cap_max_tokens, MakeShape make_shape) {
    bool opens_thinking = false;
    Job job = job_for(r, prompt_tokens(r, &opens_thinking), cap_max_tokens);
    const int client = find_client_socket(req);
    std::shared_ptr<WorkerPool::Lease> lease = pool_->acquire(job.prompt);
    if (!lease->send(job)) throw ApiError(500, "the worker process died; it is being restarted");
    ReplyReading reading;
    reading.tool_calls = r.offers_tools();
    reading.reply_start = reply_start(r);
    reading.parallel_tool_calls = r.parallel_tool_calls;
    reading.call_id_prefix = call_id_prefix;
    reading.reasoning = r.endpoint == Endpoint::ChatCompletions && r.separate_reasoning.value_or(opt_.separate_reasoning);
    reading.thinking_open = opens_thinking;
    reading.logprobs = r.logprobs >= 0;
    reading.harmony = harmony_ && r.endpoint == Endpoint::ChatCompletions;
    reading.endpoint = r.endpoint;
    std::shared_ptr<ReplyShape> shape = make_shape(job);
    // Wait for the first text (or the end) before answering, so a worker that dies
    // during the prompt is a 500 even for a stream.
    WorkerPool::Event first = wait_event(*lease, client);
    if (first.kind == WorkerPool::Event::Timeout) return;  // client gone; the lease cancels
    if (first.kind == WorkerPool::Event::Died) throw ApiError(500, "the worker process died; it is being restarted");
    if (first.kind == WorkerPool::Event::Error) throw ApiError(500, "generation failed: " + first.text);
    if (r.stream) stream(res, lease, reading, shape, std::move(first), client);
    else whole(res, *lease, reading, *shape, std::move(first), client);
  }

  // Each input tokenized as a prompt (BOS, and EOS where the tokenizer adds one), run by
  // one worker; the vectors come back in the order of the inputs.
  void embeddings(const httplib::Request& req, const std::string& body, httplib::Response& res) {
    guarded(req, res, [&] {
      const EmbeddingRequest r = parse_embedding_request(body);
      const int width = static_cast<int>(file_.hparams().dim);
      if (r.dimensions && *r.dimensions > width)
        throw ApiError(400, "'dimensions' " + std::to_string(*r.dimensions) + " exceeds the model's embedding width of " +
                                std::to_string(width), "dimensions");
      Job job;
      job.pooling = static_cast<int>(pooling_);
      for (size_t i = 0; i < r.inputs.size(); ++i) {
        const std::string field = r.inputs.size() == 1 ? "input" : "input[" + std::to_string(i) + "]";
        const EmbeddingInput& in = r.inputs[i];
        std::vector<int32_t> ids = in.ids.empty() ? tok_.encode(in.text, true, false) : in.ids;
        for (int32_t id : ids)
          if (id >= tok_.vocab_size())
            throw ApiError(400, "'" + field + "' token id " + std::to_string(id) + " is outside the vocabulary of " +
                                    std::to_string(tok_.vocab_size()), field);
        if (ids.empty() || static_cast<int>(ids.size()) > context_)
          throw ApiError(400, "'" + field + "' is " + std::to_string(ids.size()) + " tokens; the context is " +
                                  std::to_string(context_) + " (one input must fit it)", field);
        job.inputs.push_back(std::move(ids));
      }
      job.prompt = job.inputs.front();
      const int client = find_client_socket(req);
      std::unique_ptr<WorkerPool::Lease> lease = pool_->acquire(job.prompt);
      if (!lease->send(job)) throw ApiError(500, "the worker process died; it is being restarted");
      const WorkerPool::Event e = wait_event(*lease, client);
      if (e.kind == WorkerPool::Event::Timeout) return;  // client gone; the lease cancels
      if (e.kind == WorkerPool::Event::Died) throw ApiError(500, "the worker process died; it is being restarted");
      if (e.kind != WorkerPool::Event::Done) throw ApiError(500, "embedding failed: " + e.text);
      const json done = json::parse(e.json);
      json data = json::array();
      const json& vectors = done.at("embeddings");
      for (size_t i = 0; i < vectors.size(); ++i)
        data.push_back(embedding_entry(vectors[i].get<std::vector<float>>(), i, r.dimensions, r.base64));
      const int tokens = done.value("prompt_tokens", 0);
      metrics_.add_embedding(tokens);
      res.set_content(dump({{"object", "list"},
                            {"data", std::move(data)},
                            {"model", model_id_},
                            {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}}),
                      "application/json");
    });
  }

  // The next event from the worker; Timeout only when the client went away.
  WorkerPool::Event wait_event(WorkerPool::Lease& lease, int client) {
    while (true) {
      WorkerPool::Event e = lease.next(kPollMs);
      if (e.kind != WorkerPool::Event::Timeout) return e;
      if (client_gone(client)) return e;
    }
  }

  void whole(httplib::Response& res, WorkerPool::Lease& lease, const ReplyReading& reading, const ReplyShape& shape,
             WorkerPool::Event e, int client) {
    std::string text;
    json logprobs = json::array();
    while (e.kind == WorkerPool::Event::Text) {
      text += e.text;
      if (!e.json.empty())
        for (json& entry : json::parse(e.json)) logprobs.push_back(std::move(entry));
      if (client_gone(client)) return;  // the lease cancels
      e = wait_event(lease, client);
    }
    if (e.kind == WorkerPool::Event::Timeout) return;
    if (e.kind == WorkerPool::Event::Died) throw ApiError(500, "the worker process died; it is being restarted");
    if (e.kind == WorkerPool::Event::Error) throw ApiError(500, "generation failed: " + e.text);
    ReasoningSplit split;
    std::vector<ToolCall> calls;
    if (reading.harmony) {
      HarmonyReply h = read_harmony_reply(reading.reply_start + text, {reading.reasoning, reading.tool_calls});
      split = {std::move(h.reasoning), std::move(h.content)};
      calls = identified(std::move(h.calls), reading);
    } else {
      split = reading.reasoning ? split_reasoning(text, reading.thinking_open, think_tags_) : ReasoningSplit{{}, text};
      if (reading.tool_calls) {
        ParsedReply parsed = parse_tool_calls(reading.reply_start + split.content, tool_form_);
        calls = identified(std::move(parsed.calls), reading);
        if (!calls.empty()) split.content = std::move(parsed.content);
      }
    }
    const ReplyEnd end = reply_end(e.json);
    metrics_.add_generation(end);
    res.set_content(dump(shape.whole(split.content, split.reasoning, calls, end, reading.logprobs_field(logprobs, 0))),
                    "application/json");
  }

  void stream(httplib::Response& res, std::shared_ptr<WorkerPool::Lease> lease, ReplyReading reading,
              std::shared_ptr<ReplyShape> shape, WorkerPool::Event first, int client) {
    auto pending = std::make_shared<std::optional<WorkerPool::Event>>(std::move(first));
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, lease, reading, shape, pending, client](size_t, httplib::DataSink& sink) {
          auto send = [&](const std::string& s) { return s.empty() || sink.write(s.data(), s.size()); };
          if (!send(shape->open())) return false;
          ReasoningStream reasoning(reading.thinking_open, think_tags_);
          ToolCallStream tool_stream(reading.reply_start, tool_form_);
          HarmonyStream harmony({reading.reasoning, reading.tool_calls}, reading.reply_start);
          // The logprobs of the tokens since the last text chunk go with the next one.
          json unsent = json::array();
          size_t offset = 0;  // bytes of the tokens whose logprobs went out
          auto take_logprobs = [&] {
            const json field = reading.logprobs_field(unsent, offset);
            for (const json& entry : unsent) offset += entry["bytes"].size();
            unsent = json::array();
            return field;
          };
          // Reasoning goes out as it comes; the answer passes the tool-call reader first.
          auto forward = [&](ReasoningSplit piece) {
            if (!piece.reasoning.empty() && !send(shape->reasoning(piece.reasoning))) return false;
            const std::string text = reading.tool_calls && !reading.harmony ? tool_stream.feed(piece.content) : piece.content;
            return text.empty() || send(shape->text(text, take_logprobs()));
          };
          while (true) {
            WorkerPool::Event e = pending->has_value() ? std::move(**pending) : lease->next(kPollMs);
            pending->reset();
            if (e.kind == WorkerPool::Event::Timeout) {
              static const char kKeepAlive[] = ": keep-alive\n\n";
              if (client_gone(client) || !sink.write(kKeepAlive, sizeof kKeepAlive - 1)) return false;
              continue;
            }
            if (e.kind == WorkerPool::Event::Text) {
              if (!e.json.empty())
                for (json& entry : json::parse(e.json)) unsent.push_back(std::move(entry));
              if (!forward(reading.harmony     ? harmony.feed(e.text)
                           : reading.reasoning ? reasoning.feed(e.text)
                                               : ReasoningSplit{{}, e.text}))
                return false;
              continue;
            }
            if (e.kind == WorkerPool::Event::Done) {
              std::vector<ToolCall> calls;
              if (reading.harmony) {
                HarmonyReply h = harmony.finish();
                forward({std::move(h.reasoning), std::move(h.content)});
                calls = identified(std::move(h.calls), reading);
              } else if (reading.reasoning) {
                forward(reasoning.finish());
              }
              if (reading.tool_calls && !reading.harmony) {
                ParsedReply parsed = tool_stream.finish();
                if (!parsed.content.empty()) send(shape->text(parsed.content, take_logprobs()));
                calls = identified(std::move(parsed.calls), reading);
              }
              const ReplyEnd end = reply_end(e.json);
              metrics_.add_generation(end);
              send(shape->close(calls, end, unsent.empty() ? json(nullptr) : take_logprobs()));
            } else {  // died or failed after the answer began: say so in the stream
              send(shape->failed(e.kind == WorkerPool::Event::Died ? "the worker process died; it is being restarted"
                                                                   : "generation failed: " + e.text));
            }
            sink.done();
            return true;
          }
        });
  }

  ServerOptions opt_;
  ModelFile file_;
  Tokenizer tok_;
  int context_;
  std::string model_id_;
  std::optional<ChatFormatter> chat_;
  ToolCallForm tool_form_ = ToolCallForm::None;  // how the chat template writes calls
  std::vector<int32_t> call_marker_ids_;          // its markers that are special tokens: kept in replies
  ThinkTags think_tags_ = kThinkTags;             // what the template writes reasoning between
  bool harmony_ = false;                          // the template writes gpt-oss's channels (harmony_reply.h)
  std::vector<int32_t> reply_marker_ids_;         // think tags or harmony headers that are special tokens: kept in chat replies
  Pooling pooling_ = Pooling::Last;               // of /v1/embeddings: --pooling, else the model's
  FimTokens fim_;                                 // /infill: the vocabulary's fill-in-the-middle tokens
  std::unique_ptr<WorkerPool> pool_;
  ServerMetrics metrics_;
  std::mutex id_mutex_;
  std::mt19937_64 id_rng_{std::random_device{}()};
};

}  // namespace

int run_server(const ServerOptions& options) {
  // Signals go to one thread that stops the server; the others never see them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  Front front(options);
  httplib::Server svr;
  const size_t threads = static_cast<size_t>(options.workers + options.max_queue + 4);
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr.set_payload_max_length(options.max_body);
  // httplib's default adds SO_REUSEPORT, with which a second server on the same port
  // starts and takes half the requests; SO_REUSEADDR alone still allows a quick restart.
  svr.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  // Browser front ends on other origins may call the API, as llama.cpp's server allows;
  // preflight requests carry no credentials, so they are answered before the key check.
  svr.set_default_headers({{"Access-Control-Allow-Origin", "*"}});
  svr.set_pre_routing_handler([&front](const httplib::Request& req, httplib::Response& res) {
    if (req.method == "OPTIONS") {
      res.status = 204;
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type, x-api-key, anthropic-version");
      res.set_header("Access-Control-Max-Age", "86400");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (front.authorized(req)) return httplib::Server::HandlerResponse::Unhandled;
    send_error_for(req, res, 401, "invalid API key: send 'Authorization: Bearer KEY' (or 'x-api-key: KEY')");
    return httplib::Server::HandlerResponse::Handled;
  });
  svr.set_error_handler([max_body = options.max_body](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413) send_error_for(req, res, 413, "request body larger than --max-body (" + std::to_string(max_body) + " bytes)");
    else if (res.status == 404) send_error_for(req, res, 404, "no route " + req.method + " " + req.path);
    else send_error_for(req, res, res.status, "HTTP error " + std::to_string(res.status));
  });
  svr.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error_for(req, res, 500, what);
  });
  front.routes(svr);
  if (!svr.bind_to_port(options.host, options.port))
    throw Error("cannot listen on " + options.host + ":" + std::to_string(options.port) + " (in use, or not an address here)");
  std::thread stopper([&svr, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    svr.stop();
  });
  std::fprintf(stderr, "qserve: listening on http://%s:%d (%d worker%s, context %d)\n", options.host.c_str(),
               options.port, options.workers, options.workers == 1 ? "" : "s", front.context());
  svr.listen_after_bind();
  // Stopped by a signal: the stopper thread has returned. Stopped otherwise: wake it.
  pthread_kill(stopper.native_handle(), SIGTERM);
  stopper.join();
  return 0;
}

}  // namespace qrun::server
