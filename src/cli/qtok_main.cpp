// qtok: tokenize or detokenize with a model file's tokenizer or a Hugging Face folder.
//   qtok --tokenizer DIR -p TEXT [--pieces]      ids (and pieces)
//   qtok -m MODEL --jsonl < in.jsonl             {"text": ...} -> {"ids": [...]} per line
//   qtok -m MODEL --decode -p "1 403 407"        ids -> text (or one line of ids per stdin line)
//   --add-special adds BOS/EOS as configured; --special parses special-token text.
#include <iostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "src/cli/cli_common.h"
#include "qrun/error.h"
#include "qrun/mapped_file.h"
#include "qrun/model_file.h"
#include "qrun/tokenizer.h"

namespace {

std::shared_ptr<const qrun::TokenizerData> load(const std::string& model, const std::string& dir) {
  if (!dir.empty()) return qrun::load_hf_tokenizer(dir);
  return qrun::deserialize_tokenizer(qrun::ModelFile(model));
}

// Ids outside the vocabulary are an error, never silently dropped text.
void check_ids(const std::vector<int32_t>& ids, const qrun::Tokenizer& tok) {
  for (int32_t id : ids)
    if (id < 0 || id >= tok.vocab_size())
      throw qrun::Error("--decode: token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                        std::to_string(tok.vocab_size() - 1) + ")");
}

std::vector<int32_t> parse_ids(const std::string& s, const qrun::Tokenizer& tok) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (ss >> item) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v < INT32_MIN || v > INT32_MAX)
      throw qrun::Error("--decode: '" + item + "' is not a token id");
    ids.push_back(static_cast<int32_t>(v));
  }
  check_ids(ids, tok);
  return ids;
}

}  // namespace

int main(int argc, char** argv) {
  qrun::install_mapping_fault_handler("qtok");
  CLI::App app{"qtok: run a qrun tokenizer"};
  std::string model, dir, text;
  bool pieces = false, jsonl = false, add_special = false, decode = false, special = false;
  auto* m = app.add_option("-m,--model", model, "qrun model file (its embedded tokenizer)");
  app.add_option("--tokenizer", dir, "Hugging Face folder (tokenizer.json or tokenizer.model)")->excludes(m);
  auto* prompt = app.add_option("-p,--prompt", text, "Text to encode (or ids to decode)");
  app.add_flag("--pieces", pieces, "Print each id with its piece");
  app.add_flag("--jsonl", jsonl, "Read {\"text\": ...} lines on stdin, write {\"ids\": [...]} lines");
  app.add_flag("--add-special", add_special, "Add BOS/EOS as the tokenizer's config says");
  app.add_flag("--special", special, "Parse special-token text as special tokens");
  app.add_flag("--decode", decode, "Decode space-separated ids (from -p or stdin lines)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return qrun::cli::usage_exit(app, e);
  }
  try {
    if (model.empty() && dir.empty()) throw qrun::Error("need -m MODEL or --tokenizer DIR");
    if (!jsonl && !decode && prompt->count() == 0) throw qrun::Error("need -p TEXT (or --jsonl, or --decode, on stdin)");
    const qrun::Tokenizer tok(load(model, dir));
    if (jsonl) {
      std::string line;
      for (int line_no = 1; std::getline(std::cin, line); ++line_no) {
        if (line.empty()) continue;
        const std::string where = "line " + std::to_string(line_no) + ": ";
        nlohmann::json j;
        try {
          j = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception& e) {
          throw qrun::Error("stdin", -1, where + "malformed JSON: " + e.what());
        }
        const char* field = decode ? "ids" : "text";
        if (!j.is_object() || !j.contains(field) || !(decode ? j[field].is_array() : j[field].is_string()))
          throw qrun::Error("stdin", -1, where + "expected {\"" + field + "\": " + (decode ? "[ids...]" : "\"...\"") + "}");
        if (decode) {
          std::vector<int32_t> ids;
          try {
            ids = j["ids"].get<std::vector<int32_t>>();
          } catch (const nlohmann::json::exception&) {
            throw qrun::Error("stdin", -1, where + "\"ids\" must be integers");
          }
          check_ids(ids, tok);
          std::cout << nlohmann::json{{"text", tok.decode(ids)}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        } else {
          const auto ids = tok.encode(j["text"].get<std::string>(), add_special, special);
          std::cout << nlohmann::json{{"ids", ids}}.dump() << "\n";
        }
      }
      return 0;
    }
    if (decode) {
      if (!text.empty()) {
        std::cout << tok.decode(parse_ids(text, tok)) << "\n";
      } else {  // one line of ids per output line
        for (std::string line; std::getline(std::cin, line);) std::cout << tok.decode(parse_ids(line, tok)) << "\n";
      }
      return 0;
    }
    const auto ids = tok.encode(text, add_special, special);
    for (size_t i = 0; i < ids.size(); ++i) {
      if (pieces) std::cout << ids[i] << "\t" << tok.piece(ids[i]) << "\n";
      else std::cout << (i ? " " : "") << ids[i];
    }
    if (!pieces) std::cout << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "qtok: " << e.what() << "\n";
    return 1;
  }
}
