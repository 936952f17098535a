// load_lora_updates (include/qrun/lora.h): a PEFT adapter's factors for the projections
// of a qrun model file, found through the architecture's table (qrun name -> Hugging Face
// name, and the rows of a fused source such as Phi-3's qkv_proj).
#include <cstring>
#include <deque>

#include "convert/gguf_convert.h"
#include "convert/gguf_lora_adapter.h"
#include "convert/lora_adapter.h"
#include "qrun/error.h"
#include "qrun/lora.h"
#include "qrun/model_file.h"
#include "qrun/model_layout.h"
#include "quant/quantize.h"
#include "src/format/arch_table.h"

namespace qrun {

namespace {

// A multimodal checkpoint's language model: transformers 4.50 named it "language_model.",
// later ones "model.language_model." (the converter's find_text_tensor reads both).
std::vector<std::string> hf_names(const std::string& hf) {
  std::vector<std::string> names{hf, "language_model." + hf};
  if (hf.starts_with("model.")) names.push_back("model.language_model." + hf.substr(6));
  return names;
}

// The deltas' factors for `rows` rows of the source, from `first` `step` apart, stacked
// along the rank with each delta's scale in B.
LowRankUpdate stacked_update(const std::vector<LoraDelta>& deltas, int64_t rows, int64_t cols, int64_t first,
                             int64_t step) {
  LowRankUpdate u{rows, cols, 0, {}, {}};
  for (const LoraDelta& d : deltas) u.rank += d.rank;
  u.a.resize(static_cast<size_t>(u.rank * cols));
  u.b.resize(static_cast<size_t>(rows * u.rank));
  int64_t k0 = 0;
  std::vector<float> row;
  for (const LoraDelta& d : deltas) {
    row.resize(static_cast<size_t>(cols));
    for (int64_t k = 0; k < d.rank; ++k) {
      d.a->read_f32(k * cols, cols, row.data());
      for (int64_t c = 0; c < cols; ++c) u.a[static_cast<size_t>((k0 + k) * cols + c)] = f32_to_f16(row[size_t(c)]);
    }
    row.resize(static_cast<size_t>(d.rank));
    for (int64_t r = 0; r < rows; ++r) {
      d.b->read_f32((first + r * step) * d.rank, d.rank, row.data());
      for (int64_t k = 0; k < d.rank; ++k)
        u.b[static_cast<size_t>(r * u.rank + k0 + k)] = f32_to_f16(d.scale * row[size_t(k)]);
    }
    k0 += d.rank;
  }
  return u;
}

}  // namespace

LoraUpdates load_lora_updates(const std::string& model_path, const std::vector<LoraOption>& adapters) {
  LoraUpdates out;
  if (adapters.empty()) return out;
  const ModelFile file(model_path);
  const format::HParams& hp = file.hparams();
  // PEFT folders, and llama.cpp's GGUF adapter files.
  std::vector<LoraOption> peft;
  std::deque<GgufLoraAdapter> gguf;
  for (const LoraOption& o : adapters) {
    if (is_gguf_file(o.dir.string())) gguf.emplace_back(o, hp);
    else peft.push_back(o);
  }
  LoraAdapters lora(peft);
  auto merge_only = [](const std::string& file_name, const std::string& what) {
    throw Error(file_name, -1, what + ": only a merge applies it (qconvert --lora)");
  };
  for (const TensorSpec& spec : expected_tensors(hp)) {
    int layer = -1;
    const TensorRecipe& recipe = find_recipe(spec.name, hp.arch, &layer);
    if (recipe.need == Need::LongRope) continue;
    std::vector<LoraDelta> from_gguf;
    if (spec.n_dims == 2 && !is_experts(recipe.part) && spec.name != "tok_embeddings")
      for (GgufLoraAdapter& g : gguf) {
        const std::vector<LoraDelta> d = g.deltas_for(source_tensor_name(spec.name, hp.arch, true), spec.name,
                                                      source_rows(recipe, hp), spec.cols);
        from_gguf.insert(from_gguf.end(), d.begin(), d.end());
      }
    const std::string pattern = source_tensor_name(spec.name, hp.arch, false);
    const int n_sources = is_experts(recipe.part) && pattern.find('*') != std::string::npos ? int(hp.n_experts) : 1;
    for (int e = 0; e < n_sources; ++e) {
      for (const std::string& name : hf_names(expert_source_name(pattern, e))) {
        if (const SafeTensor* t = lora.replacement_for(name))
          merge_only(t->file, "tensor '" + t->name + "' replaces '" + name + "' whole (modules_to_save)");
        const int64_t src_rows = spec.n_dims == 2 ? source_rows(recipe, hp) : 1;
        const SafeTensor base{name, SafeDType::F32, {src_rows, spec.cols}, nullptr, 0, model_path};
        std::vector<LoraDelta> deltas = lora.deltas_for(base);
        if (name == pattern) deltas.insert(deltas.end(), from_gguf.begin(), from_gguf.end());
        if (deltas.empty()) continue;
        if (spec.n_dims != 2 || is_experts(recipe.part) || spec.name == "tok_embeddings" || deltas[0].embedding)
          merge_only(deltas[0].a->file, "the adapter changes '" + name + "' (qrun's " + spec.name +
                                            "), which qrun does not adapt at run time");
        out[spec.name] = stacked_update(deltas, spec.rows, spec.cols, part_row_offset(recipe.part, hp),
                                        part_row_step(recipe.part));
      }
    }
  }
  lora.check_all_used();
  for (const GgufLoraAdapter& g : gguf) g.check_all_used();
  return out;
}

}  // namespace qrun
