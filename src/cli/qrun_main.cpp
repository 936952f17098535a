// qrun: generate text from a qrun model file. Text streams to stdout; timings to stderr.
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <sstream>

#include <CLI/CLI.hpp>

#include "qrun/embedding.h"
#include "qrun/error.h"
#include "qrun/generate.h"
#include "qrun/mapped_file.h"
#include "qrun/memory_estimate.h"
#include "qrun/memory_stats.h"
#include "qrun/model.h"
#include "qrun/sampler.h"
#include "qrun/tokenizer.h"
#include "simd/kernels.h"
#include "simd/prefetch.h"
#include "src/cli/cli_common.h"
#include "src/cli/qrun_reply.h"
#include "src/format/text_file.h"
#include "qrun/chat.h"

namespace {

struct Args {
  std::string model, prompt, prompt_file;
  qrun::cli::LoraFlags lora;
  int n_predict = 128, context = 0, threads = 0, batch = 0, q8_activations = 0;
  qrun::SamplerConfig sampling;
  int64_t seed = -1;
  std::string prefetch;
  bool no_blas = false, swa_full = false, mlock = false, no_mmap = false, ignore_eos = false, verbose_prompt = false, special = false;
  bool no_display_prompt = false, verify = false, estimate = false, verbose = false;
  std::string mem_budget;
  std::string cache_type_k = "f16", cache_type_v = "f16";
  std::string model_draft;  // speculative decoding's draft model
  int draft_max = 16;
  float draft_p_min = 0.75f;
  int n_gpu_layers = 0;
  std::string gpu_layers;
  bool chat = false, conversation = false, no_context_shift = false, json = false;
  int n_keep = 0;
  std::vector<std::string> reverse_prompts;
  std::string system_prompt, chat_template, chat_template_kwargs;
  std::string json_schema, json_schema_file;
  std::string grammar, grammar_file;
  bool has_json_schema = false, has_grammar = false;  // given, even as an empty text (an error)
  bool embedding = false;
  std::string pooling;  // empty: the model's, else last
  std::vector<std::string> logit_bias;
};

// --embedding: the prompt's unit-length embedding on one line, as a JSON array.
void print_embedding(qrun::Model& model, std::span<const int32_t> prompt, const std::string& pooling) {
  const qrun::Pooling p = qrun::resolve_pooling(model.hparams(), pooling);
  const auto t0 = std::chrono::steady_clock::now();
  const std::vector<float> v = qrun::embed(model, prompt, p);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::string line = "[";
  char number[32];
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) line += ", ";
    line.append(number, std::to_chars(number, number + sizeof number, v[i]).ptr);  // shortest text of the float
  }
  std::printf("%s]\n", line.c_str());
  std::fprintf(stderr, "qrun: embedding of %zu tokens, %zu dimensions, %s pooling, in %.2f ms (%.2f tokens per second)\n",
               prompt.size(), v.size(), qrun::pooling_name(p), ms, 1000.0 * static_cast<double>(prompt.size()) / ms);
}

// --chat: the prompt as one user turn (after an optional system turn), rendered with
// the model's chat template (or --chat-template).
std::vector<int32_t> chat_prompt(const Args& a, const qrun::ChatFormatter& fmt) {
  qrun::ChatHistory history(fmt, a.system_prompt);
  return fmt.encode(history.add_user(a.prompt), true);
}

// "A-B" with 0 <= A <= B -> {A, B}; anything else -> nothing.
std::optional<std::pair<int, int>> parse_layer_range(const std::string& text) {
  int first = -1, last = -1;
  char tail = 0;
  if (std::sscanf(text.c_str(), "%d-%d%c", &first, &last, &tail) != 2 || first < 0 || last < first) return {};
  return std::pair{first, last};
}

// "-ngl N": the last N layers, as llama.cpp offloads; "--gpu-layers A-B": that range.
void parse_gpu_layers(const Args& a, int n_layers, qrun::RuntimeOptions& ro) {
  if (!a.gpu_layers.empty()) {
    const auto [first, last] = *parse_layer_range(a.gpu_layers);  // checked when the flags were read
    ro.gpu_first_layer = first;
    ro.gpu_layer_count = last - first + 1;
  } else if (a.n_gpu_layers > 0) {
    ro.gpu_layer_count = std::min(a.n_gpu_layers, n_layers);
    ro.gpu_first_layer = n_layers - ro.gpu_layer_count;
  }
}

// "512M", "2G", "1.5G", "1048576" -> bytes (errors read after "--mem-budget: ").
uint64_t parse_size(const std::string& s) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    throw qrun::Error("cannot read size '" + s + "' (use e.g. 512M or 2G)");
  }
  const std::string unit = s.substr(used);
  double mult = 1;
  if (unit == "K" || unit == "k" || unit == "KiB") mult = 1 << 10;
  else if (unit == "M" || unit == "m" || unit == "MiB") mult = 1 << 20;
  else if (unit == "G" || unit == "g" || unit == "GiB") mult = double(1 << 30);
  else if (!unit.empty()) throw qrun::Error("unknown unit '" + unit + "' (use K, M or G)");
  const double bytes = v * mult;
  if (!(bytes >= 1) || !std::isfinite(bytes)) throw qrun::Error("'" + s + "' is not a positive size");
  if (bytes >= 0x1p64) throw qrun::Error("'" + s + "' is more bytes than a 64-bit size holds");
  return static_cast<uint64_t>(bytes);
}

double mib(uint64_t b) { return static_cast<double>(b) / (1 << 20); }

void print_timings(double load_ms, const qrun::GenerationStats& st, const qrun::Model& m, uint64_t disk_bytes) {
  auto rate = [](int n, double ms) { return ms > 0 ? 1000.0 * n / ms : 0.0; };
  const auto mem = qrun::read_memory_stats();
  std::fprintf(stderr, "\n");
  std::fprintf(stderr, "qrun: load time   = %10.2f ms\n", load_ms);
  std::fprintf(stderr, "qrun: prompt eval = %10.2f ms / %5d tokens (%8.2f ms per token, %9.2f tokens per second)\n",
               st.prompt_ms, st.prompt_tokens, st.prompt_tokens ? st.prompt_ms / st.prompt_tokens : 0.0,
               rate(st.prompt_tokens, st.prompt_ms));
  std::fprintf(stderr, "qrun: eval time   = %10.2f ms / %5d runs   (%8.2f ms per token, %9.2f tokens per second)\n",
               st.eval_ms, st.eval_tokens, st.eval_tokens ? st.eval_ms / st.eval_tokens : 0.0,
               rate(st.eval_tokens, st.eval_ms));
  std::fprintf(stderr, "qrun: memory      = peak RSS %.1f MiB; now %.1f MiB private + %.1f MiB mapped model (shared)\n",
               mib(mem.peak_rss), mib(mem.rss_anon), mib(mem.rss_file));
  std::string ring;
  if (const int r = m.plan().ring_positions()) ring = ", sliding layers keep " + std::to_string(r) + " positions";
  const auto& kv = m.kv_cache();
  std::fprintf(stderr, "qrun: threads     = %d, SIMD %s, %s, context %d, KV cache %s %.1f MiB%s\n", m.threads(),
               qrun::simd_target_name(), m.kernel_choice().c_str(), m.context_length(),
               qrun::describe_kv_types(kv.key_type(), kv.value_type()).c_str(), mib(kv.bytes()), ring.c_str());
  if (m.gpu_layers() > 0)
    std::fprintf(stderr, "qrun: gpu         = %d layers on %s\n", m.gpu_layers(), m.gpu_device().c_str());
  if (st.drafted_tokens > 0)
    std::fprintf(stderr, "qrun: draft       = %d guesses, %d accepted (%.1f%%), %.2f tokens per pass of the model\n",
                 st.drafted_tokens, st.accepted_tokens, 100.0 * st.accepted_tokens / st.drafted_tokens,
                 static_cast<double>(st.eval_tokens) / std::max(1, st.eval_tokens - st.accepted_tokens));
  const int runs = st.eval_tokens + 1;
  std::fprintf(stderr, "qrun: disk reads  = %.1f MiB during generation (%.2f MiB per token)", mib(disk_bytes),
               mib(disk_bytes) / runs);
  if (m.streamed_layers() > 0)
    std::fprintf(stderr, "; %d layers resident, %d streamed", m.resident_layers(), m.streamed_layers());
  std::fprintf(stderr, "\n");
}

}  // namespace

int main(int argc, char** argv) {
  // The model file truncated or rewritten under us: one line naming it, exit 1.
  qrun::install_mapping_fault_handler("qrun");
  CLI::App app{"qrun: run a quantized LLM from a qrun model file"};
  Args a;
  app.add_option("-m,--model", a.model, "Model file written by qconvert")->required();
  CLI::Option* prompt_text = app.add_option("-p,--prompt", a.prompt, "Prompt text");
  app.add_option("-f,--file", a.prompt_file, "Read the prompt from a file")->excludes(prompt_text);
  app.add_option("-n,--n-predict", a.n_predict, "Tokens to generate (-1: until EOS)")->check(CLI::Range(-1, 1 << 24));
  app.add_option("-c,--ctx-size", a.context, "Context size (default: min(trained context, 4096))")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("-t,--threads", a.threads, "Threads (default: physical cores; performance cores of a hybrid CPU)")->check(CLI::Range(0, 1024));
  app.add_option("-b,--batch-size", a.batch, "Prompt tokens per batch (default: 256 for float weights, 64 for q4/q8, up to 512 for mixture-of-experts models)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--temp", a.sampling.temperature, "Temperature (0: greedy)")->check(qrun::cli::FiniteRange(0.0, 100.0));
  app.add_option("--top-k", a.sampling.top_k, "Top-k (0: off)")->check(CLI::Range(0, 1 << 24));
  app.add_option("--top-p", a.sampling.top_p, "Top-p (1: off)")->check(qrun::cli::FiniteRange(0.0, 1.0));
  app.add_option("--min-p", a.sampling.min_p, "Min-p (0: off)")->check(qrun::cli::FiniteRange(0.0, 1.0));
  app.add_option("--repeat-penalty", a.sampling.repeat_penalty, "Repetition penalty (1: off)")
      ->check(qrun::cli::FiniteRange(0.0, 100.0, true));
  app.add_option("--frequency-penalty", a.sampling.frequency_penalty,
                 "Subtracted from a token's logit per occurrence in the last --repeat-last-n tokens (0: off)")
      ->check(qrun::cli::FiniteRange(-2.0, 2.0));
  app.add_option("--presence-penalty", a.sampling.presence_penalty,
                 "Subtracted once from the logit of a token in the last --repeat-last-n tokens (0: off)")
      ->check(qrun::cli::FiniteRange(-2.0, 2.0));
  app.add_option("-l,--logit-bias", a.logit_bias, "TOKEN_ID+BIAS or TOKEN_ID-BIAS added to that token's logit "
                                                  "(-inf: never), e.g. -l 15043+1 -l 2-inf")
      ->check(qrun::cli::ParsedBy(qrun::cli::parse_logit_bias));
  app.add_option("--repeat-last-n", a.sampling.repeat_last_n, "Tokens the penalties look back")
      ->check(CLI::Range(0, 1 << 24));
  app.add_option("-s,--seed", a.seed, "Random seed: same seed, same output (default -1: a random seed, "
                                      "printed with --verbose)")
      ->check(qrun::cli::IntegerRange(-1, INT64_MAX));
  app.add_option("--prefetch", a.prefetch, "Weight prefetch of the int8 kernels: none, l1:BYTES or l2:BYTES, "
                                           "BYTES/BYTES_WIDE for q8 and float rows apart, then optionally ,rows:1 or "
                                           ",rows:4 (q8/q6/q5 matvec rows side by side) (default: chosen for this CPU)")
      ->check(qrun::cli::ParsedBy(qrun::parse_prefetch_config));
  app.add_flag("--no-blas", a.no_blas, "Float-weight prompt batches on qrun's own kernels instead of OpenBLAS");
  qrun::cli::add_q8_activations_option(app, a.q8_activations);
  app.add_flag("--swa-full", a.swa_full, qrun::cli::kSwaFullHelp);
  qrun::cli::add_cache_type_options(app, a.cache_type_k, a.cache_type_v);
  qrun::cli::add_lora_options(app, a.lora, "Apply this LoRA adapter at run time, over the mapped weights: a PEFT folder (adapter_config.json, adapter_model.safetensors) or a llama.cpp GGUF adapter");
  app.add_flag("--mlock", a.mlock, "Lock the model in RAM (needs RLIMIT_MEMLOCK)");
  app.add_flag("--no-mmap", a.no_mmap, "Read the model into private memory instead of mapping it");
  app.add_flag("--ignore-eos", a.ignore_eos, "Keep generating past end-of-sequence");
  app.add_flag("--special", a.special, "Parse special-token text in the prompt as special tokens");
  app.add_flag("--verbose-prompt", a.verbose_prompt, "Print the prompt's tokens before generating");
  app.add_flag("--no-display-prompt", a.no_display_prompt, "Do not echo the prompt");
  app.add_flag("--verify", a.verify, "Verify every tensor checksum at load");
  app.add_option("--mem-budget", a.mem_budget,
                 "Memory budget, e.g. 512M or 2G: keep the layers that fit resident, stream the rest from disk")
      ->check(qrun::cli::ParsedBy(parse_size));
  app.add_option("--n-gpu-layers", a.n_gpu_layers, "-ngl N: run the last N layers on the GPU (CUDA builds)")
      ->check(CLI::Range(0, 1 << 16));
  app.add_option("--gpu-layers", a.gpu_layers, "Run this range of layers on the GPU, e.g. 0-9")
      ->excludes("--n-gpu-layers")
      ->check([](const std::string& s) {
        return parse_layer_range(s) ? std::string() : "expected a range like 0-9, got '" + s + "'";
      });
  app.add_option("--model-draft", a.model_draft,
                 "-md FILE: speculative decoding with this smaller model of the same vocabulary guessing tokens "
                 "(the output is the model's own)");
  app.add_option("--draft-max", a.draft_max, "Tokens the draft model guesses at most per pass of the model")
      ->check(CLI::Range(1, 64));
  app.add_option("--draft-p-min", a.draft_p_min, "The draft stops guessing where its top probability is below this")
      ->check(CLI::Range(0.0f, 1.0f));
  app.add_flag("--chat", a.chat, "Apply the model's chat template to the prompt (one user turn)");
  app.add_flag("--conversation", a.conversation,
               "-cnv: chat turn by turn, reading each user turn from stdin (a line; end it with \\ to go on)");
  app.add_option("--system-prompt", a.system_prompt, "-sys TEXT: system turn for --chat and -cnv");
  app.add_option("--chat-template", a.chat_template, "Chat template to use instead of the model's: a file or the text");
  app.add_option("--chat-template-kwargs", a.chat_template_kwargs, qrun::cli::kChatTemplateKwargsHelp);
  app.add_flag("--json", a.json,
               "Constrain the reply to one JSON object (as OpenAI's response_format json_object); it ends when the "
               "object closes");
  auto* schema = app.add_option("-j,--json-schema", a.json_schema,
                                "Constrain the reply to JSON that this JSON schema accepts (as OpenAI's response_format "
                                "json_schema; the subset is in the README); it ends when the value is whole");
  auto* schema_file = app.add_option("--json-schema-file", a.json_schema_file, "--json-schema read from a file");
  auto* grammar = app.add_option("--grammar", a.grammar,
                                 "Constrain the reply to text of this GBNF grammar (llama.cpp's notation, from rule root); "
                                 "it ends at EOS once the text is whole, or when nothing more can follow");
  auto* grammar_file = app.add_option("--grammar-file", a.grammar_file, "--grammar read from a file");
  const std::vector<CLI::Option*> constraints{app.get_option("--json"), schema, schema_file, grammar, grammar_file};
  for (CLI::Option* o : constraints)  // one constraint at a time
    for (CLI::Option* other : constraints)
      if (o != other) o->excludes(other);
  app.add_option("-r,--reverse-prompt", a.reverse_prompts, "Stop the reply at this text (repeatable)");
  app.add_option("--keep", a.n_keep, "Tokens of the prompt a context shift keeps (after BOS)")
      ->check(CLI::Range(0, 1 << 20));
  app.add_flag("--no-context-shift", a.no_context_shift,
               "Stop when the context is full instead of dropping half of the older tokens");
  app.add_flag("--embedding", a.embedding,
               "Print the prompt's embedding (final normed hidden states pooled, unit length) as a JSON array");
  app.add_option("--pooling", a.pooling, "Embedding pooling: mean, cls or last (default: the model's, else last)")
      ->check(CLI::IsMember({"mean", "cls", "last"}));
  app.add_flag("--estimate", a.estimate, "Print the predicted peak memory for these settings and exit");
  app.add_flag("--verbose", a.verbose, "Print the seed, per-turn token counts and the memory estimate beside the "
                                       "measured peak");
  try {
    app.parse(qrun::cli::spelled_out_args(argc, argv, {{"-ngl", "--n-gpu-layers"}, {"-md", "--model-draft"},
                                                       {"-sys", "--system-prompt"}, {"-cnv", "--conversation"}}));
  } catch (const CLI::ParseError& e) {
    return qrun::cli::usage_exit(app, e);
  }
  const std::vector<qrun::LoraOption> adapters = a.lora.adapters();

  try {
    if (a.mlock && a.no_mmap) throw qrun::Error("--mlock and --no-mmap cannot be combined");
    if (a.conversation && a.chat) throw qrun::Error("--chat and -cnv cannot be combined (-cnv is the multi-turn --chat)");
    if (a.embedding && (a.conversation || a.json || app.count("--json-schema") || app.count("--json-schema-file") ||
                        app.count("--grammar") || app.count("--grammar-file")))
      throw qrun::Error("--embedding generates nothing: it cannot be combined with -cnv, --json, --json-schema or --grammar");
    qrun::RuntimeOptions ro;
    ro.prefetch = a.prefetch;
    ro.blas = !a.no_blas;
    ro.load_mode = a.no_mmap ? qrun::LoadMode::ReadPrivate : a.mlock ? qrun::LoadMode::MmapLocked : qrun::LoadMode::Mmap;
    ro.threads = a.threads;
    ro.context = a.context;
    ro.batch = a.batch;
    ro.q8_activation_bits = a.q8_activations;
    ro.swa_full = a.swa_full;
    ro.cache_type_k = qrun::parse_kv_type(a.cache_type_k);
    ro.cache_type_v = qrun::parse_kv_type(a.cache_type_v);
    ro.verify_checksums = a.verify;
    ro.lora = qrun::cli::lora_updates_for(a.model, adapters);
    if (!a.mem_budget.empty()) ro.mem_budget = parse_size(a.mem_budget);
    if (a.n_gpu_layers > 0 || !a.gpu_layers.empty())
      parse_gpu_layers(a, static_cast<int>(qrun::ModelFile(a.model).hparams().n_layers), ro);
    if (a.estimate || a.verbose) {
      const auto est = qrun::estimate_memory(a.model, ro, a.embedding ? std::string() : a.model_draft);
      if (a.estimate) {
        std::printf("%s", qrun::format_estimate(est).c_str());
        return 0;
      }
      std::fprintf(stderr, "qrun: predicted peak memory %.1f MiB\n", mib(est.total()));
    }
    if (!a.prompt_file.empty()) {
      a.prompt = qrun::read_text_file(a.prompt_file, "prompt file");
      // The newline that ends the file's last line is not part of the prompt (llama.cpp's -f).
      if (!a.prompt.empty() && a.prompt.back() == '\n') a.prompt.pop_back();
    }
    if (a.prompt.empty() && !a.conversation) throw qrun::Error("empty prompt: give -p TEXT or -f FILE");
    // The constraint's text, checked before the model loads (an empty one is an error too).
    a.has_json_schema = app.count("--json-schema") > 0 || app.count("--json-schema-file") > 0;
    a.has_grammar = app.count("--grammar") > 0 || app.count("--grammar-file") > 0;
    if (app.count("--json-schema-file")) a.json_schema = qrun::read_text_file(a.json_schema_file, "JSON schema file");
    if (app.count("--grammar-file")) a.grammar = qrun::read_text_file(a.grammar_file, "grammar file");
    try {
      if (a.has_json_schema) qrun::GrammarConstraint::check_schema(a.json_schema);
      if (a.has_grammar) qrun::GrammarConstraint::check_gbnf(a.grammar);
    } catch (const qrun::Error& e) {
      const std::string source = a.has_json_schema ? (app.count("--json-schema-file") ? a.json_schema_file : "--json-schema")
                                                   : (app.count("--grammar-file") ? a.grammar_file : "--grammar");
      throw qrun::Error(source + ": " + e.what());
    }

    const auto t0 = std::chrono::steady_clock::now();
    qrun::Model model(a.model, ro);
    const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (ro.lora) std::fprintf(stderr, "qrun: lora: %s\n", qrun::cli::describe_lora(*ro.lora).c_str());
    const int trained = static_cast<int>(model.hparams().max_seq_len);
    if (model.context_length() > trained)
      std::fprintf(stderr, "qrun: warning: context %d is longer than the %d tokens the model was trained on; "
                           "expect degraded output past %d\n", model.context_length(), trained, trained);
    std::optional<qrun::Model> draft;
    if (!a.model_draft.empty() && !a.embedding) {
      draft.emplace(a.model_draft, qrun::draft_runtime_options(model.context_length(), ro));
      qrun::check_draft_vocabulary(model.tokenizer(), draft->tokenizer(), a.model_draft);
    }
    for (const std::string& b : a.logit_bias) {
      a.sampling.logit_bias.push_back(qrun::cli::parse_logit_bias(b));
      if (a.sampling.logit_bias.back().first >= model.tokenizer().vocab_size())
        throw qrun::Error("--logit-bias " + b + ": token id outside the vocabulary of " +
                          std::to_string(model.tokenizer().vocab_size()));
    }
    a.sampling.seed = a.seed >= 0 ? static_cast<uint64_t>(a.seed) : std::random_device{}();
    if (a.verbose) std::fprintf(stderr, "qrun: seed = %llu\n", static_cast<unsigned long long>(a.sampling.seed));

    qrun::cli::install_interrupt_handler();
    qrun::Sampler sampler(a.sampling);
    qrun::GenerateOptions go;
    go.n_predict = a.n_predict;
    go.ignore_eos = a.ignore_eos;
    go.context_shift = !a.no_context_shift;
    go.n_keep = a.n_keep;
    if (draft) go.draft = {&*draft, a.draft_max, a.draft_p_min};
    std::unique_ptr<qrun::GrammarConstraint> constraint;
    if (a.json || a.has_json_schema || a.has_grammar) {
      constraint = std::make_unique<qrun::GrammarConstraint>(model.tokenizer());
      if (a.has_json_schema) constraint->set_schema(a.json_schema);
      if (a.has_grammar) constraint->set_gbnf(a.grammar);
      go.constraint = constraint.get();
    }
    // A shift keeps BOS and --keep tokens and needs room for one more.
    if (go.context_shift && a.n_keep > 0 && a.n_keep + 2 > model.context_length())
      throw qrun::Error("--keep " + std::to_string(a.n_keep) + " leaves no room for a context shift in a context of " +
                        std::to_string(model.context_length()) + " (use at most " +
                        std::to_string(std::max(model.context_length() - 2, 0)) + ", or raise -c)");
    const uint64_t disk0 = qrun::storage_bytes_read();
    if (a.conversation) {
      qrun::cli::ConversationSettings cs{a.chat_template, a.chat_template_kwargs, a.system_prompt, a.reverse_prompts,
                                         a.verbose};
      const auto stats = qrun::cli::run_conversation(model, sampler, go, cs);
      print_timings(load_ms, stats, model, qrun::storage_bytes_read() - disk0);
      return 0;
    }

    const qrun::Tokenizer& tok = model.tokenizer();
    std::optional<qrun::ChatFormatter> fmt;
    if (a.chat) fmt.emplace(tok, qrun::resolve_chat_template(tok, a.chat_template), a.chat_template_kwargs);
    const std::vector<int32_t> prompt = fmt ? chat_prompt(a, *fmt) : tok.encode(a.prompt, true, a.special);
    if (prompt.empty()) throw qrun::Error("prompt encodes to no tokens");
    if (static_cast<int>(prompt.size()) > model.context_length())
      throw qrun::Error("prompt is " + std::to_string(prompt.size()) + " tokens, longer than the context of " +
                        std::to_string(model.context_length()) + " (raise -c)");
    if (a.verbose_prompt) {
      std::fprintf(stderr, "prompt: %zu tokens\n", prompt.size());
      for (int32_t id : prompt)
        std::fprintf(stderr, "%6d -> '%s'\n", id, std::string(tok.piece(id)).c_str());
    }
    if (a.embedding) {
      print_embedding(model, prompt, a.pooling);
      return 0;
    }
    if (!a.no_display_prompt) {  // what the user wrote, not the template's markup
      std::fwrite(a.prompt.data(), 1, a.prompt.size(), stdout);
      std::fputs(a.chat ? "\n" : "", stdout);
      std::fflush(stdout);
    }
    const auto reply = fmt ? qrun::cli::stream_chat_reply(model, prompt, sampler, go, a.reverse_prompts, *fmt)
                           : qrun::cli::stream_reply(model, prompt, sampler, go, a.reverse_prompts);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (reply.stats.stop == qrun::StopReason::ContextFull)
      std::fprintf(stderr, "qrun: context full (%d tokens): stopped after %d tokens (drop --no-context-shift to "
                           "keep going, or raise -c)\n", model.context_length(), reply.stats.generated_tokens);
    if (reply.stats.context_shifts > 0 && a.verbose)
      std::fprintf(stderr, "qrun: %d context shifts\n", reply.stats.context_shifts);
    print_timings(load_ms, reply.stats, model, qrun::storage_bytes_read() - disk0);
    return reply.interrupted ? 130 : 0;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "qrun: %s\n", e.what());
    return 1;
  }
}
