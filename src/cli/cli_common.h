// What every tool does the same way: exit codes for bad flags, and Ctrl-C.
#pragma once

#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include "qrun/lora.h"

namespace qrun::cli {

// CLI11 reports a bad flag with its own codes (105, 109...): print its message and
// exit 2, the usual code for a usage error; --help exits 0.
inline int usage_exit(const CLI::App& app, const CLI::ParseError& e) { return app.exit(e) == 0 ? 0 : 2; }

// A real number in [lo, hi] ((lo, hi] when lo_open). CLI::Range lets NaN through.
inline CLI::Validator FiniteRange(double lo, double hi, bool lo_open = false) {
  const std::string range = (lo_open ? "(" : "[") + CLI::detail::to_string(lo) + ", " + CLI::detail::to_string(hi) + "]";
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(text, v) || !std::isfinite(v) || v < lo || v > hi || (lo_open && v == lo))
          return "value " + text + " not in " + range;
        return {};
      },
      "NUMBER in " + range);
}

// An integer in [lo, hi], read exactly: CLI11 clamps an int64 that overflows to its
// limit, so --seed 18446744073709551615 ran as 9223372036854775807.
inline CLI::Validator IntegerRange(int64_t lo, int64_t hi) {
  const std::string range = "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        int64_t v = 0;
        const char* end = text.data() + text.size();
        const auto [p, ec] = std::from_chars(text.data(), end, v);
        if (ec != std::errc() || p != end || v < lo || v > hi) return "value " + text + " not an integer in " + range;
        return {};
      },
      "INT in " + range);
}

// llama.cpp's --logit-bias TOKEN_ID(+/-)BIAS: "15043+1", "15043-0.5", "2-inf" (never).
inline std::pair<int32_t, float> parse_logit_bias(const std::string& text) {
  const size_t sign = text.find_first_of("+-");
  int64_t id = -1;
  const char* end = text.data() + (sign == std::string::npos ? text.size() : sign);
  const auto [p, ec] = std::from_chars(text.data(), end, id);
  if (sign == std::string::npos || sign == 0 || ec != std::errc() || p != end || id < 0 || id > INT32_MAX)
    throw std::invalid_argument("'" + text + "' is not TOKEN_ID+BIAS or TOKEN_ID-BIAS (e.g. 15043+1, 2-inf)");
  const std::string bias = text.substr(sign);
  if (bias == "-inf") return {static_cast<int32_t>(id), -INFINITY};
  double v = 0;
  if (!CLI::detail::lexical_cast(bias, v) || !std::isfinite(v) || std::fabs(v) > 100)
    throw std::invalid_argument("'" + text + "': the bias is a number from -100 to 100, or -inf");
  return {static_cast<int32_t>(id), static_cast<float>(v)};
}

// A flag value the library's own parser accepts: its exception's text is the usage error.
template <class Parse>
CLI::Validator ParsedBy(Parse parse) {
  return CLI::Validator(
      [parse](std::string& text) -> std::string {
        try {
          parse(text);
          return {};
        } catch (const std::exception& e) {
          return e.what();
        }
      },
      "");
}

// --swa-full: RuntimeOptions::swa_full.
inline constexpr const char* kSwaFullHelp =
    "Sliding-window layers keep the whole context, not a ring of window + batch positions (more memory; a cached "
    "prefix is always reused)";

// --chat-template-kwargs JSON: ChatFormatter's kwargs.
inline constexpr const char* kChatTemplateKwargsHelp =
    "More chat-template variables, a JSON object, e.g. '{\"enable_thinking\": false}' for Qwen3 (as llama.cpp's)";

// --q8-activations BITS: RuntimeOptions::q8_activation_bits (0, the default: chosen).
inline void add_q8_activations_option(CLI::App& app, int& bits) {
  app.add_option("--q8-activations", bits,
                 "Bits of the activations q8 matrices multiply: 8, or 16 (half the KL divergence, slower prompts); "
                 "default: 16 in one-token steps where this CPU's kernel does them in one pass (AVX-512 VNNI), else 8")
      ->check(CLI::IsMember({8, 16}));
}

// -ctk/--cache-type-k, -ctv/--cache-type-v: RuntimeOptions::cache_type_k, cache_type_v
// (qrun::parse_kv_type reads the names).
inline void add_cache_type_options(CLI::App& app, std::string& k, std::string& v) {
  app.add_option("--cache-type-k", k,
                 "-ctk TYPE: how the KV cache stores keys: f16, q8_0 (47% less memory), q4_0 or iq4_nl (72% less; "
                 "iq4_nl's non-uniform levels err less)")
      ->check(CLI::IsMember({"f16", "q8_0", "q4_0", "iq4_nl"}))
      ->capture_default_str();
  app.add_option("--cache-type-v", v, "-ctv TYPE: how the KV cache stores values: f16, q8_0, q4_0 or iq4_nl")
      ->check(CLI::IsMember({"f16", "q8_0", "q4_0", "iq4_nl"}))
      ->capture_default_str();
}

// --lora ADAPTER / --lora-scaled ADAPTER SCALE (llama.cpp's flags), repeatable; `how` says what
// the tool does with the adapters. A scale that is not a number is a usage error.
struct LoraFlags {
  std::vector<std::string> dirs;
  std::vector<std::string> scaled;  // ADAPTER SCALE pairs, as given
  std::vector<LoraOption> adapters() const {  // --lora's, then --lora-scaled's
    std::vector<LoraOption> out;
    for (const std::string& d : dirs) out.push_back({d, 1.0f});
    for (size_t i = 0; i + 1 < scaled.size(); i += 2) out.push_back({scaled[i], std::stof(scaled[i + 1])});
    return out;
  }
};

inline void add_lora_options(CLI::App& app, LoraFlags& f, const std::string& how) {
  app.add_option("--lora", f.dirs, how + "; repeatable")->check(CLI::ExistingPath);
  app.add_option_function<std::vector<std::string>>(
         "--lora-scaled",
         [&f](const std::vector<std::string>& v) {
           for (size_t i = 0; i + 1 < v.size(); i += 2) {
             const std::string& text = v[i + 1];
             float scale = 0;
             const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), scale);
             if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(scale))
               throw CLI::ValidationError("--lora-scaled", v[i] + " " + text + ": the scale is not a number");
           }
           f.scaled = v;
         },
         "ADAPTER SCALE: as --lora, with the adapter's update times SCALE; repeatable")
      ->type_size(2)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->allow_extra_args(false);
}

// The run-time adapters of a model (RuntimeOptions::lora): null without --lora.
inline std::shared_ptr<const LoraUpdates> lora_updates_for(const std::string& model_path,
                                                           const std::vector<LoraOption>& adapters) {
  if (adapters.empty()) return nullptr;
  return std::make_shared<const LoraUpdates>(load_lora_updates(model_path, adapters));
}

// "14 matrices, rank 16, 24.0 MiB of f16 factors": what --lora loaded, for the log.
inline std::string describe_lora(const LoraUpdates& lora) {
  int64_t lo = 0, hi = 0;
  size_t bytes = 0;
  for (const auto& [name, u] : lora) {
    lo = lo == 0 ? u.rank : std::min(lo, u.rank);
    hi = std::max(hi, u.rank);
    bytes += 2 * (u.a.size() + u.b.size());
  }
  char buf[160];
  std::snprintf(buf, sizeof buf, "%zu matrices adapted at run time, rank %s, %.1f MiB of f16 factors", lora.size(),
                (lo == hi ? std::to_string(hi) : std::to_string(lo) + "-" + std::to_string(hi)).c_str(),
                static_cast<double>(bytes) / (1 << 20));
  return buf;
}

// llama.cpp's single-dash long flags, which CLI11 does not take as they are: argv with
// each alias spelled out (-ctk, -ctv and the tool's own `aliases`), reversed as
// CLI::App::parse(std::vector) wants it.
inline std::vector<std::string> spelled_out_args(
    int argc, char** argv, std::initializer_list<std::pair<std::string_view, const char*>> aliases = {}) {
  std::vector<std::string> args;
  for (int i = argc - 1; i >= 1; --i) {
    std::string arg = argv[i];
    if (arg == "-ctk") arg = "--cache-type-k";
    if (arg == "-ctv") arg = "--cache-type-v";
    for (const auto& [alias, name] : aliases)
      if (arg == alias) arg = name;
    args.push_back(std::move(arg));
  }
  return args;
}

// Ctrl-C asks the running generation to stop instead of killing the process (so the
// timings still print); a second Ctrl-C before the first was taken kills it.
void install_interrupt_handler();
// True once after each Ctrl-C.
bool take_interrupt();

}  // namespace qrun::cli
