// llama.cpp's POST /infill, fill-in-the-middle for code editors (llama.vim, llama.vscode):
// the code before and after the cursor, and other files for context, as the prompt a FIM
// model was trained on, prefix first (llama.cpp's layout):
//   [BOS] [<repo_name> "myproject\n"] ([<file_sep> filename "\n"] text)... [<file_sep> "filename\n"]
//   <fim_prefix> prefix prompt <fim_suffix> suffix <fim_middle>
// The FIM tokens are found in the vocabulary by their texts in the families that have
// them (Qwen2.5-Coder, StarCoder, CodeLlama, DeepSeek-Coder, Codestral).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qrun/tokenizer.h"
#include "src/server/request.h"

namespace qrun::server {

struct FimTokens {
  int32_t prefix = -1, suffix = -1, middle = -1;  // all three, or the model cannot infill
  int32_t repo = -1, file_sep = -1;               // repository-level context, where the model has them
  bool usable() const { return prefix >= 0 && suffix >= 0 && middle >= 0; }
};
FimTokens find_fim_tokens(const Tokenizer& tok);

struct InfillRequest {
  CompletionRequest completion;  // /completion's sampling fields and reply; the prompt is built
  std::string prefix, suffix;    // input_prefix, input_suffix
  std::string typed;             // "prompt": text after the prefix (what is being typed)
  std::vector<std::pair<std::string, std::string>> extra;  // input_extra: (filename, text)
};
// Throws ApiError(400) naming the field.
InfillRequest parse_infill_request(std::string_view body);

// The prompt's tokens. `room`: at most this many tokens; the prefix keeps its end and the
// suffix its start (3:1, as llama.cpp splits them), the extra context its end.
std::vector<int32_t> infill_prompt(const Tokenizer& tok, const FimTokens& fim, const InfillRequest& r, int room);

}  // namespace qrun::server
