#include "convert/gguf_lora_adapter.h"

#include <cstring>

#include "convert/gguf_rope_order.h"
#include "convert/gguf_quants.h"
#include "qrun/error.h"

namespace qrun {

GgufLoraAdapter::GgufLoraAdapter(const LoraOption& option, const format::HParams& model)
    : file_(option.dir.string()),
      user_scale_(option.scale),
      permute_qk_(gguf_permutes_qk(model.arch)),
      head_dim_(model.head_dim) {
  const std::string type = file_.get_string_or("general.type", "");
  if (type != "adapter" || file_.get_string_or("adapter.type", "") != "lora")
    file_.fail(0, "not a LoRA adapter (general.type \"" + type + "\", adapter.type \"" +
                      file_.get_string_or("adapter.type", "") + "\"; want \"adapter\" and \"lora\")");
  alpha_ = static_cast<float>(file_.get_float_or("adapter.lora.alpha", 0.0));
  for (const GgufTensorInfo& t : file_.tensors())
    if (!t.name.ends_with(".lora_a") && !t.name.ends_with(".lora_b"))
      file_.fail(t.info_offset, "tensor '" + t.name + "' is not a LoRA factor (NAME.lora_a or NAME.lora_b)");
}

// A view of the factor as `rows` x `cols` values: the file's bytes where they are F32, F16
// or BF16 in order, else rows converted to f32 (Q8_0 and the like, or B rows unpermuted).
const SafeTensor& GgufLoraAdapter::view(const GgufTensorInfo& t, int64_t rows, int64_t cols, int64_t head_dim_permuted) {
  const uint8_t* data = file_.tensor_data(t);
  SafeDType direct = SafeDType::U8;
  if (t.type == static_cast<uint32_t>(GgmlType::F32)) direct = SafeDType::F32;
  if (t.type == static_cast<uint32_t>(GgmlType::F16)) direct = SafeDType::F16;
  if (t.type == static_cast<uint32_t>(GgmlType::BF16)) direct = SafeDType::BF16;
  if (direct != SafeDType::U8 && head_dim_permuted == 0) {
    views_.push_back({t.name, direct, {rows, cols}, data, t.size, file_.path()});
    return views_.back();
  }
  if (!gguf_can_dequantize(t.type)) file_.fail(t.info_offset, "tensor '" + t.name + "' has a type qrun cannot read");
  const uint64_t row_bytes = t.size / static_cast<uint64_t>(rows);
  std::vector<float>& f = owned_.emplace_back(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t from = head_dim_permuted ? gguf_unpermuted_row(r, head_dim_permuted) : r;
    gguf_dequantize_row(t.type, data + static_cast<uint64_t>(from) * row_bytes, cols, &f[size_t(r * cols)]);
  }
  views_.push_back({t.name, SafeDType::F32, {rows, cols}, reinterpret_cast<const uint8_t*>(f.data()), f.size() * 4,
                    file_.path()});
  return views_.back();
}

std::vector<LoraDelta> GgufLoraAdapter::deltas_for(const std::string& gguf_name, const std::string& qrun_name,
                                                   int64_t rows, int64_t cols) {
  const GgufTensorInfo* a = file_.tensor(gguf_name + ".lora_a");
  const GgufTensorInfo* b = file_.tensor(gguf_name + ".lora_b");
  if (!a && !b) return {};
  if (!a || !b) file_.fail((a ? a : b)->info_offset, "'" + gguf_name + "' has lora_" + (a ? "a" : "b") + " but no lora_" + (a ? "b" : "a"));
  const int64_t r = a->ne[1];
  if (a->n_dims != 2 || b->n_dims != 2 || a->ne[0] != cols || b->ne[0] != r || b->ne[1] != rows || r < 1)
    file_.fail(a->info_offset, "LoRA of '" + gguf_name + "': lora_a [" + std::to_string(a->ne[0]) + ", " +
                                   std::to_string(a->ne[1]) + "] and lora_b [" + std::to_string(b->ne[0]) + ", " +
                                   std::to_string(b->ne[1]) + "] do not fit its [" + std::to_string(cols) + ", " +
                                   std::to_string(rows) + "] (an adapter of another model?)");
  const bool permuted = permute_qk_ && (qrun_name.ends_with(".wq") || qrun_name.ends_with(".wk"));
  used_.insert(a->name);
  used_.insert(b->name);
  // llama.cpp scales by alpha / rank where the file has an alpha, else by 1.
  const float scale = user_scale_ * (alpha_ != 0.0f ? alpha_ / static_cast<float>(r) : 1.0f);
  return {LoraDelta{&view(*a, r, cols, 0), &view(*b, rows, r, permuted ? head_dim_ : 0), scale, false, r}};
}

void GgufLoraAdapter::check_all_used() const {
  for (const GgufTensorInfo& t : file_.tensors())
    if (!used_.count(t.name))
      file_.fail(t.info_offset, "LoRA tensor '" + t.name + "' changes a weight this model does not have (an adapter "
                                "of another model, or of a weight qrun does not adapt at run time)");
}

}  // namespace qrun
