#include "convert/converter.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <vector>

#include "convert/hf_config.h"
#include "convert/safetensors.h"
#include "quant/type_policy.h"
#include "qrun/chat_template.h"
#include "qrun/error.h"
#include "qrun/model_layout.h"
#include "qrun/tokenizer.h"
#include "src/format/arch_table.h"
#include "src/format/layer_tensor_name.h"
#include "quant/quantize.h"

namespace qrun {

std::string hf_tensor_name(const std::string& name, uint32_t arch) { return source_tensor_name(name, arch, false); }

namespace {

// A multimodal checkpoint nests the language model: transformers 4.50 wrote
// "language_model.model.*" and "language_model.lm_head.*", later ones "model.language_model.*".
const SafeTensor* find_text_tensor(const SafetensorsCheckpoint& ckpt, const std::string& hf, bool multimodal,
                                   std::string* found) {
  std::vector<std::string> names{hf};
  if (multimodal) {
    names.push_back("language_model." + hf);
    if (hf.starts_with("model.")) names.push_back("model.language_model." + hf.substr(6));
  }
  for (const std::string& n : names)
    if (const SafeTensor* t = ckpt.find(n)) {
      *found = n;
      return t;
    }
  return nullptr;
}

// The vision tower and its projector beside a multimodal checkpoint's language model.
bool is_vision_tensor(const std::string& name) {
  for (const char* p : {"vision_tower.", "multi_modal_projector.", "model.vision_tower.", "model.multi_modal_projector."})
    if (name.starts_with(p)) return true;
  return false;
}

// The source must have the shape config.json implies: the spec's columns and, for a
// matrix, the rows of its whole fused tensor or of one expert (after the experts, when
// one tensor stacks them all); both swapped for a source stored [in, out].
void check_source_shape(const SafeTensor& src, const TensorSpec& spec, int64_t src_rows, int64_t stacked,
                        bool in_by_out) {
  std::vector<int64_t> want_shape{spec.cols};
  if (spec.n_dims == 2) want_shape.insert(in_by_out ? want_shape.end() : want_shape.begin(), src_rows);
  if (stacked > 0) want_shape.insert(want_shape.begin(), stacked);
  if (src.shape == want_shape) return;
  // A one-row matrix stored as a vector (Qwen2-MoE's shared_expert_gate, a Linear to 1).
  if (spec.n_dims == 1 && stacked == 0 && src.shape == std::vector<int64_t>{1, spec.cols}) return;
  throw Error(src.file, -1, "tensor '" + src.name + "' has shape " + shape_text(src.shape) + ", config.json implies " +
                                shape_text(want_shape));
}

// Rows [r, r + n) of expert x's matrix, stored [in, out] (x @ W) in a stacked source
// [experts, cols, src_rows]: its source columns first + (r..r+n) * step, read a source row
// span at a time and transposed into `rows` (n x cols).
void read_in_by_out_rows(const SafeTensor& src, int64_t x, int64_t cols, int64_t src_rows, int64_t first,
                         int64_t step, int64_t r, int64_t n, float* rows) {
  const int64_t c0 = first + r * step, span = (n - 1) * step + 1;
  std::vector<float> part(static_cast<size_t>(span));
  for (int64_t k = 0; k < cols; ++k) {
    src.read_f32((x * cols + k) * src_rows + c0, span, part.data());
    for (int64_t i = 0; i < n; ++i) rows[i * cols + k] = part[static_cast<size_t>(i * step)];
  }
}

}  // namespace

TypePolicy type_policy(const ConvertOptions& options) {
  TypePolicy policy{options.weight_type, options.mixed, {}};
  for (const std::string& rule : options.tensor_types) policy.rules.push_back(parse_tensor_type_rule(rule));
  return policy;
}

WriteSummary convert_hf_checkpoint(const std::string& hf_dir, const std::string& out_path,
                                   const ConvertOptions& options) {
  if (options.weight_type == DType::BF16) throw Error(out_path, -1, "bf16 output is not a converter type");
  const HfConfig config = read_hf_config_full(hf_dir);
  format::HParams hp = config.hp;
  hp.weight_type = static_cast<uint32_t>(options.weight_type);
  const SafetensorsCheckpoint ckpt(hf_dir);
  auto tokenizer = load_hf_tokenizer(hf_dir);
  // A template qrun cannot run does not stop the conversion (raw prompts work, and
  // --chat-template can replace it), but say so now rather than at the first --chat.
  const Tokenizer tok(tokenizer);
  if (!tok.chat_template().empty()) {
    try {
      check_chat_template(tok.chat_template());
    } catch (const Error& e) {
      std::fprintf(stderr, "qconvert: warning: %s: the chat template cannot be run (%s); qrun --chat will need "
                           "--chat-template\n", hf_dir.c_str(), e.what());
    }
  }
  // Ids past the embedding rows would make the file unloadable (qrun checks it too):
  // tokenizer files of another model, say so before converting.
  if (const int32_t n = tok.vocab_size(); static_cast<uint32_t>(n) > hp.vocab_size)
    throw Error(hf_dir, -1, "the tokenizer has " + std::to_string(n) + " tokens but config.json's vocab_size is " +
                                std::to_string(hp.vocab_size) + " (tokenizer files of another model?)");
  const std::vector<uint8_t> tok_blob = serialize_tokenizer(*tokenizer);

  // With --calibrate, each projection's column importance from its inputs on the text.
  const InputStats input_stats = options.calibration.text_file.empty()
                                     ? InputStats{}
                                     : calibrate_hf_checkpoint(hf_dir, options.calibration, options.threads,
                                                               options.lora);
  LoraAdapters lora(options.lora);

  // A checkpoint that says "untied" but ships no lm_head is tied in practice.
  std::string head_name = "lm_head.weight";
  const bool has_head = find_text_tensor(ckpt, head_name, config.multimodal, &head_name) != nullptr;
  if (!hp.tied_embeddings && !has_head) hp.tied_embeddings = 1;

  std::vector<TensorToWrite> out;
  std::set<std::string> used;
  const TypePolicy policy = type_policy(options);
  const std::vector<TensorSpec> tensors = expected_tensors(hp);
  check_rules_match(policy, tensors);
  for (const TensorSpec& spec : tensors) {
    int layer = -1;
    const TensorRecipe& recipe = find_recipe(spec.name, hp.arch, &layer);
    TensorToWrite t;
    t.name = spec.name;
    t.dtype = storage_type_for(spec.name, spec.cols, policy);
    t.cols = spec.cols;
    t.rows = spec.rows;
    t.n_dims = spec.n_dims;
    t.layer = spec.layer;
    if (recipe.need == Need::LongRope) {  // from config.json, not from a tensor
      const auto& factors = spec.name == "rope_factors_long" ? config.rope_long_factors : config.rope_short_factors;
      t.fill = [factors](int64_t, int64_t, uint8_t* dst) { std::memcpy(dst, factors.data(), factors.size() * 4); };
      out.push_back(std::move(t));
      continue;
    }
    // The source tensors: one, or one per expert (their rows stacked in expert order),
    // or one 3-D tensor holding every expert.
    const std::string name_pattern = hf_tensor_name(spec.name, hp.arch);
    const bool per_expert_files = is_experts(recipe.part) && name_pattern.find('*') != std::string::npos;
    const int n_sources = per_expert_files ? static_cast<int>(hp.n_experts) : 1;
    const int64_t stacked = is_experts(recipe.part) && !per_expert_files ? hp.n_experts : 0;
    const int64_t src_rows = source_rows(recipe, hp);
    std::vector<const SafeTensor*> sources;
    std::vector<std::vector<LoraDelta>> deltas;  // per source
    for (int e = 0; e < n_sources; ++e) {
      std::string src_name = expert_source_name(name_pattern, e);
      const SafeTensor* src = find_text_tensor(ckpt, src_name, config.multimodal, &src_name);
      if (!src)
        throw Error(hf_dir, -1, "checkpoint lacks tensor '" + src_name + "'" +
                                    (config.multimodal ? " (also looked for it under language_model. and model.language_model.)" : ""));
      used.insert(src_name);
      if (const SafeTensor* trained = lora.replacement_for(src_name)) src = trained;
      deltas.push_back(lora.deltas_for(*src));
      check_source_shape(*src, spec, src_rows, stacked, recipe.in_by_out && src->dtype != SafeDType::MXFP4);
      sources.push_back(src);
    }
    // MXFP4 sources (gpt-oss's experts) stay MXFP4, exactly, in any quantized file (as
    // llama.cpp keeps them), unless a --tensor-type rule names them.
    const bool mxfp4 = std::all_of(sources.begin(), sources.end(), [](const SafeTensor* s) { return s->dtype == SafeDType::MXFP4; });
    if (mxfp4 && dtype_is_quantized(t.dtype) && !rule_names(policy, spec.name)) t.dtype = DType::Mx4;
    // A fused source (Phi-3's qkv_proj, gate_up_proj) holds this tensor's rows after others'
    // (or between them, `step` apart); a stacked one holds `per` rows of each expert,
    // src_rows apart.
    const int64_t first_row = part_row_offset(recipe.part, hp), step = part_row_step(recipe.part);
    const int64_t per = stacked ? spec.rows / stacked : spec.rows;
    std::vector<float> importance;
    if (dtype_is_quantized(t.dtype)) importance = column_importance(input_stats, spec.name, spec.cols, hf_dir);
    const bool in_by_out = recipe.in_by_out && stacked && sources[0]->dtype != SafeDType::MXFP4;
    t.fill = [sources, deltas, src_rows, per, dtype = t.dtype, cols = spec.cols, first_row, step,
              plus_one = recipe.plus_one, in_by_out, importance = std::move(importance)](int64_t b, int64_t e,
                                                                                         uint8_t* dst) {
      // Rows come a block at a time from a source stored [in, out] (each of its rows
      // holds a value of every output row), else one at a time.
      constexpr int64_t kBlock = 64;
      std::vector<float> block(static_cast<size_t>((in_by_out ? kBlock : 1) * cols));
      const int64_t row_bytes = dtype_row_bytes(dtype, cols);
      std::vector<std::unique_ptr<LoraRowAdder>> adders(sources.size());  // made at a source's first row
      for (int64_t r = b, got = 0; r < e; ++r) {
        float* row = &block[static_cast<size_t>(((r - b) % kBlock) * cols)];
        const size_t si = sources.size() > 1 ? static_cast<size_t>(r / src_rows) : 0;
        const SafeTensor* src = sources[si];
        const int64_t src_row = sources.size() > 1 ? r % src_rows : r / per * src_rows + first_row + r % per * step;
        if (!in_by_out) {
          row = block.data();
          src->read_f32(src_row * cols, cols, row);
          if (!deltas[si].empty()) {
            if (!adders[si]) adders[si] = std::make_unique<LoraRowAdder>(deltas[si], cols);
            adders[si]->add(src_row, row);
          }
        } else if (r >= got) {  // the next block, within one expert
          const int64_t n = std::min({kBlock - (r - b) % kBlock, e - r, per - r % per});
          read_in_by_out_rows(*src, r / per, cols, src_rows, first_row, step, r % per, n, row);
          got = r + n;
        }
        // A NaN or infinite weight makes every output it touches NaN: refuse the
        // checkpoint rather than quantize garbage.
        for (int64_t c = 0; c < cols; ++c)
          if (!std::isfinite(row[c]))
            throw Error(src->file, -1, "tensor '" + src->name + "' has a non-finite value (" +
                                           (std::isnan(row[c]) ? "nan" : "inf") + ") at [" +
                                           (in_by_out ? std::to_string(r / per * cols + c) + ", " +
                                                            std::to_string(first_row + r % per * step)
                                                      : std::to_string(src_row) + ", " + std::to_string(c)) + "]");
        // Gemma's norms multiply by 1 + w: stored as that, the runtime's RMSNorm is one.
        if (plus_one)
          for (int64_t c = 0; c < cols; ++c) row[c] += 1.0f;
        quantize_row(dtype, row, cols, dst + (r - b) * row_bytes, importance.empty() ? nullptr : importance.data());
      }
    };
    out.push_back(std::move(t));
  }
  lora.check_all_used();
  // Every tensor of the checkpoint must be used: one left over means config.json
  // describes another model (num_hidden_layers too small drops a layer silently).
  for (const auto& [name, t] : ckpt.tensors()) {
    if (used.count(name) || name.ends_with(".rotary_emb.inv_freq")) continue;  // a buffer, recomputed at load
    if (name == head_name && hp.tied_embeddings) continue;                   // tied: the embedding is the head
    if (config.multimodal && is_vision_tensor(name)) continue;                // qrun runs the text model
    std::string why = "is not used by the model config.json describes";
    int layer = -1;
    std::string role;
    if (split_layer_name(name, "model.layers.", &layer, &role) && uint32_t(layer) >= hp.n_layers)
      why = "belongs to a layer beyond num_hidden_layers " + std::to_string(hp.n_layers) + " in config.json";
    throw Error(t.file, -1, "checkpoint tensor '" + name + "' " + why);
  }
  WriteOptions wo;
  wo.threads = options.threads;
  wo.progress = options.progress;
  return write_model_file(out_path, hp, tok_blob, out, wo);
}

}  // namespace qrun
