// Loading a tokenizer from a Hugging Face folder: tokenizer.json (preferred) or
// tokenizer.model, then special tokens and flags from tokenizer_config.json,
// generation_config.json and config.json.
#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "qrun/error.h"
#include "qrun/tokenizer.h"
#include "src/format/json_file.h"
#include "src/tokenizer/sentencepiece_model.h"
#include "src/tokenizer/split_patterns.h"
#include "src/tokenizer/tokenizer_data.h"

namespace qrun {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string short_dump(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

// Visits a pre-tokenizer / normalizer / post-processor and the members of a Sequence.
// Each stage is an object with a string "type": anything else (a string, a list, a
// Sequence without its list) would otherwise be skipped and silently change the ids.
template <class F>
void visit(const json& node, const char* what, const char* list_key, const std::string& file, F&& f) {
  if (!node.is_object() || !node.contains("type") || !node["type"].is_string())
    throw Error(file, -1, std::string(what) + " " + short_dump(node) + " is not an object with a string \"type\"");
  if (node["type"] == "Sequence") {
    if (!node.contains(list_key) || !node[list_key].is_array())
      throw Error(file, -1, std::string(what) + " Sequence without a \"" + list_key + "\" list");
    for (const auto& n : node[list_key]) visit(n, what, list_key, file, f);
  } else {
    f(node);
  }
}

void load_tokenizer_json(const fs::path& path, TokenizerData& d, int32_t* appended) {
  const json j = read_json_file(path);
  const std::string file = path.string();
  try {
    const json& model = j.at("model");
    if (model.value("type", "") != "BPE")
      throw Error(file, -1, "tokenizer model type '" + model.value("type", "") + "' is not supported (only BPE)");
    const json& vocab = model.at("vocab");
    size_t n = 0;
    // Ids come from strangers: integers in [0, 2^22) only, before anything is indexed.
    auto token_index = [&](const json& id) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= (int64_t{1} << 22))
        throw Error(file, -1, "token id " + id.dump() + " is not an integer in [0, 4194304)");
      return static_cast<size_t>(id.get<int64_t>());
    };
    if (!vocab.is_object()) throw Error(file, -1, "model.vocab is not an object");
    for (const auto& [piece, id] : vocab.items()) n = std::max<size_t>(n, token_index(id) + 1);
    if (j.contains("added_tokens"))
      for (const auto& t : j["added_tokens"]) n = std::max<size_t>(n, token_index(t.at("id")) + 1);
    if (n == 0 || n > (1u << 22)) throw Error(file, -1, "bad vocabulary size " + std::to_string(n));
    d.pieces.assign(n, std::string());
    d.types.assign(n, PieceType::Unused);
    d.scores.assign(n, 0.0f);
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (model.contains(key) && !model[key].is_null() && model[key] != "")
        throw Error(file, -1, std::string("BPE ") + key + " is not supported");
    d.byte_fallback = model.value("byte_fallback", false);
    d.ignore_merges = model.value("ignore_merges", false);
    for (const auto& [piece, id] : vocab.items()) {
      const size_t i = token_index(id);
      d.pieces[i] = piece;
      // Hugging Face's byte fallback looks up exactly format!("<0x{:02X}>", byte); any
      // other spelling is an ordinary piece.
      const bool byte = d.byte_fallback && byte_piece_value(piece) >= 0;
      d.types[i] = byte ? PieceType::Byte : PieceType::Normal;
    }
    if (j.contains("added_tokens")) {
      for (const auto& t : j["added_tokens"]) {
        const size_t i = token_index(t.at("id"));
        d.pieces[i] = t.at("content").get<std::string>();
        d.types[i] = t.value("special", false) ? PieceType::Control : PieceType::UserDefined;
      }
    }
    std::unordered_map<std::string, int32_t> ids;
    for (size_t i = 0; i < n; ++i) ids.emplace(d.pieces[i], static_cast<int32_t>(i));
    auto id_of = [&](const std::string& s) {
      auto it = ids.find(s);
      if (it == ids.end()) throw Error(file, -1, "merge names unknown piece '" + s + "'");
      return it->second;
    };
    for (const auto& m : model.at("merges")) {
      std::string a, b;
      if (m.is_array() && m.size() == 2) {
        a = m[0].get<std::string>();
        b = m[1].get<std::string>();
      } else {
        const std::string s = m.get<std::string>();
        const size_t sp = s.find(' ', 1);
        if (sp == std::string::npos) throw Error(file, -1, "malformed merge '" + s + "'");
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      }
      d.merges.emplace_back(id_of(a), id_of(b));
    }
    if (model.contains("unk_token") && model["unk_token"].is_string()) {
      auto it = ids.find(model["unk_token"].get<std::string>());
      d.unk = it == ids.end() ? -1 : it->second;
    }

    bool byte_level = false, split_found = false, space_split = false, digits = false;
    if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null()) {
      visit(j["pre_tokenizer"], "pre_tokenizer", "pretokenizers", file, [&](const json& p) {
        const std::string type = p.value("type", "");
        if (type == "ByteLevel") {
          byte_level = true;
          // A prefix space would change every first word; no supported model sets it.
          if (p.value("add_prefix_space", false))
            throw Error(file, -1, "ByteLevel pre-tokenizer with add_prefix_space is not supported");
          if (p.value("use_regex", true)) {
            if (split_found) throw Error(file, -1, "a Split pre-tokenizer before a regex ByteLevel one is not supported");
            d.pretokenizer_regex = digits ? kGpt2IndividualDigitsRegex : kGpt2Regex;
          } else if (digits) {
            throw Error(file, -1, "a Digits pre-tokenizer before a ByteLevel one without its regex is not supported");
          }
        } else if (type == "Digits") {
          // StarCoder's and Granite's: each digit its own piece, before GPT-2's split.
          if (!p.value("individual_digits", false))
            throw Error(file, -1, "Digits pre-tokenizer without individual_digits is not supported");
          if (byte_level || split_found) throw Error(file, -1, "a Digits pre-tokenizer after another stage is not supported");
          digits = true;
        } else if (type == "Split" && p.contains("pattern") && p["pattern"].contains("Regex")) {
          // Only one split stage that keeps every piece (matches and the text between).
          if (split_found || !d.pretokenizer_regex.empty())
            throw Error(file, -1, "more than one regex pre-tokenizer stage is not supported");
          if (p.value("behavior", "Isolated") != "Isolated" || p.value("invert", false))
            throw Error(file, -1, "Split pre-tokenizer behavior '" + p.value("behavior", "") + "' is not supported");
          d.pretokenizer_regex = p["pattern"]["Regex"].get<std::string>();
          split_found = true;
        } else if (type == "Split" && p.contains("pattern") && p["pattern"].value("String", "") == " ") {
          // Gemma's: split at spaces, but the normalizer has already turned every space
          // into U+2581, so nothing is left to split (checked below).
          space_split = true;
        } else if (type == "Metaspace") {
          d.add_dummy_prefix = p.value("add_prefix_space", true) && p.value("prepend_scheme", "always") != "never";
          d.dummy_prefix_every_segment = p.value("prepend_scheme", "always") == "always";
        } else {
          // Digits, Punctuation, Whitespace, BertPreTokenizer...: silently skipping one
          // would give ids that differ from the reference, so refuse.
          throw Error(file, -1, "pre-tokenizer '" + type + "' is not supported");
        }
      });
    }
    if (digits && !byte_level) throw Error(file, -1, "a Digits pre-tokenizer without a ByteLevel one is not supported");
    if (byte_level) {
      d.kind = TokenizerKind::ByteLevel;
      if (d.pretokenizer_regex.empty()) d.pretokenizer_regex = R"([\s\S]+)";
    } else {
      d.kind = TokenizerKind::SentencePiece;
      bool prepend = false;
      if (j.contains("normalizer") && !j["normalizer"].is_null()) {
        visit(j["normalizer"], "normalizer", "normalizers", file,
              [&](const json& nrm) { prepend |= nrm.value("type", "") == "Prepend"; });
        d.add_dummy_prefix = prepend;
      }
    }
    bool spaces_replaced = false;
    if (j.contains("normalizer") && !j["normalizer"].is_null())
      visit(j["normalizer"], "normalizer", "normalizers", file, [&](const json& nrm) {
        const std::string type = nrm.value("type", "");
        if (type == "NFC") {
          d.nfc = true;
        } else if (type == "Prepend") {
          if (nrm.value("prepend", "") != "\xE2\x96\x81")
            throw Error(file, -1, "Prepend normalizer with anything but \"\xE2\x96\x81\" is not supported");
        } else if (type == "Replace") {
          const json& pat = nrm.contains("pattern") ? nrm["pattern"] : json();
          if (!pat.is_object() || pat.value("String", "") != " " || nrm.value("content", "") != "\xE2\x96\x81")
            throw Error(file, -1, "Replace normalizer other than ' ' -> '\xE2\x96\x81' is not supported");
          spaces_replaced = true;
        } else {
          throw Error(file, -1, "normalizer '" + type + "' is not supported");
        }
      });
    if (space_split && (byte_level || !spaces_replaced))
      throw Error(file, -1, "a Split pre-tokenizer on \" \" is supported only after a ' ' -> '\xE2\x96\x81' normalizer");
    // A post-processor that puts BOS first means encode adds it; one that puts a special
    // token last (Qwen3-Embedding's <|endoftext|>, which its last-token pooling reads)
    // means encode appends it (see load_hf_tokenizer).
    if (j.contains("post_processor") && !j["post_processor"].is_null()) {
      const json& pp = j["post_processor"];
      visit(pp, "post_processor", "processors", file, [&](const json& p) {
        if (p.value("type", "") != "TemplateProcessing" || !p.contains("single")) return;
        const json& single = p["single"];
        if (!single.empty() && single[0].contains("SpecialToken")) {
          auto it = ids.find(single[0]["SpecialToken"].value("id", ""));
          if (it != ids.end()) {
            d.bos = it->second;
            d.add_bos = true;
          }
        }
        if (single.size() >= 2 && single.back().contains("SpecialToken")) {
          auto it = ids.find(single.back()["SpecialToken"].value("id", ""));
          if (it != ids.end()) {
            *appended = it->second;
            d.add_eos = true;
          }
        }
      });
    }
  } catch (const json::exception& e) {
    throw Error(file, -1, std::string("unexpected structure: ") + e.what());
  }
}

int32_t token_id(const TokenizerData& d, const json& v) {
  std::string s;
  if (v.is_string()) s = v.get<std::string>();
  else if (v.is_object() && v.contains("content") && v["content"].is_string()) s = v["content"].get<std::string>();
  else return -1;
  for (size_t i = 0; i < d.pieces.size(); ++i)
    if (d.pieces[i] == s) return static_cast<int32_t>(i);
  return -1;
}

void apply_tokenizer_config(const fs::path& path, TokenizerData& d) {
  const json j = read_json_file(path);
  if (!j.is_object()) throw Error(path.string(), -1, "top level is not a JSON object");
  auto set_id = [&](const char* key, int32_t& id) {
    if (j.contains(key)) {
      if (j[key].is_null()) id = -1;
      else if (const int32_t v = token_id(d, j[key]); v >= 0) id = v;
    }
  };
  set_id("bos_token", d.bos);
  set_id("eos_token", d.eos);
  set_id("unk_token", d.unk);
  set_id("pad_token", d.pad);
  if (j.contains("add_bos_token") && j["add_bos_token"].is_boolean()) {
    d.add_bos = j["add_bos_token"].get<bool>();
  } else if (j.contains("bos_token") && !j["bos_token"].is_null()) {
    // A declared BOS without a flag: models trained with it (Llama 3) expect it first,
    // as llama.cpp assumes too; tokenizers without one (Qwen2) declare none.
    d.add_bos = d.bos >= 0;
  }
  if (j.contains("add_eos_token") && j["add_eos_token"].is_boolean()) d.add_eos = j["add_eos_token"].get<bool>();
  if (d.bos < 0) d.add_bos = false;
  if (j.contains("chat_template")) {
    const json& t = j["chat_template"];
    if (t.is_string()) {
      d.chat_template = t.get<std::string>();
    } else if (t.is_array()) {  // named templates: take "default"
      for (const auto& e : t)
        if (e.value("name", "") == "default" && e.contains("template")) d.chat_template = e["template"].get<std::string>();
    }
  }
}

// Newer checkpoints keep the template beside tokenizer_config.json: chat_template.jinja
// (transformers' own file, preferred as transformers does) or a processor's
// chat_template.json ({"chat_template": "..."}, multimodal models such as Gemma 3).
void apply_chat_template_files(const fs::path& dir, TokenizerData& d) {
  const fs::path json_file = dir / "chat_template.json", jinja_file = dir / "chat_template.jinja";
  std::string from_json;
  if (fs::exists(json_file)) {
    const json j = read_json_file(json_file);
    if (!j.is_object() || !j.contains("chat_template") || !j["chat_template"].is_string())
      throw Error(json_file.string(), -1, "no \"chat_template\" string");
    from_json = j["chat_template"].get<std::string>();
  }
  if (fs::exists(jinja_file)) {
    std::ifstream in(jinja_file, std::ios::binary);
    if (!fs::is_regular_file(jinja_file) || !in) throw Error(jinja_file.string(), -1, "cannot read: not a readable file");
    d.chat_template.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) throw Error(jinja_file.string(), -1, "read error");
  } else if (d.chat_template.empty()) {
    d.chat_template = from_json;
  }
}

// eos_token_id in generation_config.json / config.json: one id or a list (end of turn).
void apply_eos_ids(const fs::path& path, TokenizerData& d) {
  const json j = read_json_file(path);
  if (!j.is_object()) return;
  const auto n = static_cast<int64_t>(d.pieces.size());
  auto take = [&](const json& v) {
    if (!v.is_number_integer()) return;
    const int64_t id = v.get<int64_t>();
    if (id < 0 || id >= n) return;
    if (d.eos < 0) d.eos = static_cast<int32_t>(id);
    else if (id != d.eos) d.extra_eos.push_back(static_cast<int32_t>(id));
  };
  if (j.contains("eos_token_id")) {
    if (j["eos_token_id"].is_array()) for (const auto& v : j["eos_token_id"]) take(v);
    else take(j["eos_token_id"]);
  }
}

}  // namespace

std::shared_ptr<const TokenizerData> load_hf_tokenizer(const fs::path& dir) {
  auto d = std::make_shared<TokenizerData>();
  if (fs::is_regular_file(dir)) throw Error(dir.string(), -1, "is a file: give the folder that holds tokenizer.json or tokenizer.model");
  int32_t appended = -1;  // the special token tokenizer.json's post-processor puts last
  if (fs::exists(dir / "tokenizer.json")) {
    load_tokenizer_json(dir / "tokenizer.json", *d, &appended);
  } else if (fs::exists(dir / "tokenizer.model")) {
    *d = read_sentencepiece_model((dir / "tokenizer.model").string());
  } else {
    throw Error(dir.string(), -1, "no tokenizer: neither tokenizer.json nor tokenizer.model is present");
  }
  // A field of an unexpected JSON type is the file's fault: report it as such.
  auto guarded = [&](const fs::path& p, auto&& apply) {
    if (!fs::exists(p)) return;
    try {
      apply(p, *d);
    } catch (const json::exception& e) {
      throw Error(p.string(), -1, std::string("unexpected structure: ") + e.what());
    }
  };
  guarded(dir / "tokenizer_config.json", apply_tokenizer_config);
  guarded(dir, apply_chat_template_files);
  for (const char* f : {"generation_config.json", "config.json"}) guarded(dir / f, apply_eos_ids);
  // encode appends `eos` when add_eos: a post-processor's last token that is not the
  // configured EOS becomes it, and the configured one stays an end of generation.
  if (appended >= 0 && d->add_eos && appended != d->eos) {
    std::erase(d->extra_eos, appended);
    if (d->eos >= 0) d->extra_eos.push_back(d->eos);
    d->eos = appended;
  }
  validate_tokenizer_data(*d, dir.string(), -1);
  return d;
}

}  // namespace qrun
