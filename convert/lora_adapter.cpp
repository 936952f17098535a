#include "convert/lora_adapter.h"

#include <cmath>
#include <map>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

#include "qrun/error.h"
#include "src/format/json_file.h"

namespace qrun {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// PEFT drops the adapter's name ("default") when it saves; a file that kept it names
// "lora_A.default.weight", "lora_embedding_A.default", "modules_to_save.default.weight".
std::string without_adapter_name(const std::string& name) {
  std::string out;
  for (size_t begin = 0; begin <= name.size();) {
    size_t end = name.find('.', begin);
    if (end == std::string::npos) end = name.size();
    const std::string_view part(name.data() + begin, end - begin);
    if (part != "default" && part != "modules_to_save") out.append(out.empty() ? "" : ".").append(part);
    begin = end + 1;
  }
  return out;
}

}  // namespace

struct LoraAdapters::Adapter {
  struct Pair {
    const SafeTensor* a = nullptr;
    const SafeTensor* b = nullptr;
    bool embedding = false;
    std::string module;
  };
  fs::path dir;
  std::string config_file;
  std::unique_ptr<SafetensorsCheckpoint> weights;
  float user_scale = 1.0f, alpha = 8.0f;
  bool rslora = false;
  std::vector<std::pair<std::string, float>> alpha_pattern;  // module name or dotted suffix -> alpha
  std::map<std::string, Pair> pairs;                        // by the base tensor's name
  std::map<std::string, const SafeTensor*> replacements;    // modules_to_save
  std::set<std::string> used;

  explicit Adapter(const LoraOption& option) : dir(option.dir), user_scale(option.scale) {
    config_file = (dir / "adapter_config.json").string();
    if (fs::is_regular_file(dir))
      throw Error(dir.string(), -1, "a file, not a PEFT adapter folder (a llama.cpp GGUF adapter applies at run time: "
                                    "qrun --lora)");
    if (!fs::exists(config_file))
      throw Error(dir.string(), -1, "no adapter_config.json: not a PEFT LoRA adapter folder");
    read_config(read_json_file(config_file));
    const fs::path file = dir / "adapter_model.safetensors";
    if (!fs::exists(file)) {
      if (fs::exists(dir / "adapter_model.bin"))
        throw Error((dir / "adapter_model.bin").string(), -1,
                    "a PyTorch pickle; qconvert reads adapter_model.safetensors (save with safe_serialization=True)");
      throw Error(dir.string(), -1, "no adapter_model.safetensors");
    }
    weights = std::make_unique<SafetensorsCheckpoint>(file);
    for (const auto& [name, t] : weights->tensors()) add_tensor(name, t);
    for (const auto& [base, p] : pairs)
      if (!p.a || !p.b)
        throw Error(file.string(), -1, "LoRA module '" + p.module + "' has " + (p.a ? "A" : "B") + " but no " +
                                           (p.a ? "B" : "A") + " matrix");
  }

  void read_config(const json& j) {
    auto field = [&](const char* name) -> const json* { return j.contains(name) && !j[name].is_null() ? &j[name] : nullptr; };
    auto fail = [&](const std::string& why) { throw Error(config_file, -1, why); };
    if (!j.is_object()) fail("not a JSON object");
    if (const json* t = field("peft_type"); t && (!t->is_string() || t->get<std::string>() != "LORA"))
      fail("peft_type is " + t->dump() + "; qconvert merges LORA adapters");
    for (const char* flag : {"use_dora", "fan_in_fan_out", "lora_bias"}) {
      const json* f = field(flag);
      if (f && !f->is_boolean()) fail(std::string(flag) + " is not true or false");
      if (f && f->get<bool>())
        fail(std::string(flag) + " is true: " +
             (std::string(flag) == "use_dora" ? "DoRA adapters are not supported"
                                              : std::string(flag) == "lora_bias" ? "LoRA biases are not supported"
                                                                                 : "Conv1D (GPT-2) layouts are not supported"));
    }
    if (const json* a = field("lora_alpha")) {
      if (!a->is_number() || !std::isfinite(a->get<double>())) fail("lora_alpha is not a number");
      alpha = a->get<float>();
    }
    if (const json* r = field("use_rslora")) {
      if (!r->is_boolean()) fail("use_rslora is not true or false");
      rslora = r->get<bool>();
    }
    if (const json* p = field("alpha_pattern")) {
      if (!p->is_object()) fail("alpha_pattern is not an object");
      for (const auto& [key, value] : p->items()) {
        if (!value.is_number() || !std::isfinite(value.get<double>())) fail("alpha_pattern['" + key + "'] is not a number");
        // PEFT reads a key as a regular expression matched at the end of a module's
        // name, after a dot; keys are module names in practice. One that needs a regex
        // engine is refused rather than matched otherwise (or slowly: a stranger's file).
        if (key.empty() || key.find_first_of("\\^$*+?()[]{}|") != std::string::npos)
          fail("alpha_pattern key '" + key + "' is not a module name (regular expressions are not supported)");
        alpha_pattern.emplace_back(key, value.get<float>());
      }
    }
  }

  void add_tensor(const std::string& stored, const SafeTensor& t) {
    const std::string prefix = "base_model.model.";
    if (!stored.starts_with(prefix))
      throw Error(t.file, -1, "tensor '" + stored + "' is not under base_model.model. (not a PEFT adapter?)");
    const std::string name = without_adapter_name(stored.substr(prefix.size()));
    struct Suffix {
      const char* text;
      bool is_a, embedding;
    };
    for (const Suffix s : {Suffix{".lora_A.weight", true, false}, Suffix{".lora_B.weight", false, false},
                           Suffix{".lora_embedding_A", true, true}, Suffix{".lora_embedding_B", false, true}}) {
      if (!name.ends_with(s.text)) continue;
      Pair& p = pairs[name.substr(0, name.size() - std::string(s.text).size()) + ".weight"];
      p.module = name.substr(0, name.size() - std::string(s.text).size());
      p.embedding = s.embedding;
      (s.is_a ? p.a : p.b) = &t;
      if (t.shape.size() != 2) throw Error(t.file, -1, "LoRA tensor '" + stored + "' is not a matrix: " + shape_text(t.shape));
      return;
    }
    if (name.find("lora_") != std::string::npos)
      throw Error(t.file, -1, "tensor '" + stored + "' is a LoRA part qconvert does not merge (DoRA magnitudes, "
                                                    "LoRA biases)");
    replacements[name] = &t;  // modules_to_save: the whole trained tensor
  }

  float scale_of(const Pair& p) const {
    float a = alpha;
    for (const auto& [key, value] : alpha_pattern)
      if (p.module == key || p.module.ends_with("." + key)) {
        a = value;
        break;
      }
    const double r = static_cast<double>(p.a->shape[0]);
    return static_cast<float>(user_scale * a / (rslora ? std::sqrt(r) : r));
  }
};

LoraAdapters::LoraAdapters(const std::vector<LoraOption>& options) {
  for (const LoraOption& o : options) adapters_.push_back(std::make_unique<Adapter>(o));
}
LoraAdapters::LoraAdapters(LoraAdapters&&) noexcept = default;
LoraAdapters& LoraAdapters::operator=(LoraAdapters&&) noexcept = default;
LoraAdapters::~LoraAdapters() = default;

std::vector<LoraDelta> LoraAdapters::deltas_for(const SafeTensor& base) {
  std::vector<LoraDelta> out;
  for (const auto& ad : adapters_) {
    const auto it = ad->pairs.find(base.name);
    if (it == ad->pairs.end()) continue;
    const Adapter::Pair& p = it->second;
    const int64_t r = p.a->shape[0];
    if (base.shape.size() != 2)
      throw Error(p.a->file, -1, "LoRA on '" + base.name + "', stored " + shape_text(base.shape) +
                                     ": qconvert merges adapters of 2-D weights only");
    const int64_t rows = base.shape[0], cols = base.shape[1];
    const std::vector<int64_t> want_a = p.embedding ? std::vector<int64_t>{r, rows} : std::vector<int64_t>{r, cols};
    const std::vector<int64_t> want_b = p.embedding ? std::vector<int64_t>{cols, r} : std::vector<int64_t>{rows, r};
    if (r < 1 || p.a->shape != want_a || p.b->shape != want_b)
      throw Error(p.a->file, -1, "LoRA '" + p.module + "': A " + shape_text(p.a->shape) + " and B " +
                                     shape_text(p.b->shape) + " do not fit '" + base.name + "' " +
                                     shape_text(base.shape) + " (an adapter of another model?)");
    out.push_back({p.a, p.b, ad->scale_of(p), p.embedding, r});
    ad->used.insert(base.name);
  }
  return out;
}

const SafeTensor* LoraAdapters::replacement_for(const std::string& base_name) {
  const SafeTensor* found = nullptr;
  for (const auto& ad : adapters_)
    if (const auto it = ad->replacements.find(base_name); it != ad->replacements.end()) {
      found = it->second;  // the last adapter's copy wins, as applying them in order would
      ad->used.insert(base_name);
    }
  return found;
}

void LoraAdapters::check_all_used() const {
  for (const auto& ad : adapters_) {
    const std::string file = (ad->dir / "adapter_model.safetensors").string();
    for (const auto& [base, p] : ad->pairs)
      if (!ad->used.count(base))
        throw Error(file, -1, "LoRA module '" + p.module + "' changes '" + base +
                                  "', which the conversion does not read (an adapter of another model, or a "
                                  "weight tied to another)");
    for (const auto& [base, t] : ad->replacements)
      if (!ad->used.count(base))
        throw Error(file, -1, "tensor '" + t->name + "' replaces '" + base +
                                  "', which the conversion does not read (an adapter of another model, or a "
                                  "weight tied to another)");
  }
}

LoraRowAdder::LoraRowAdder(const std::vector<LoraDelta>& deltas, int64_t cols) : deltas_(deltas), cols_(cols) {
  for (const LoraDelta& d : deltas) {
    const SafeTensor& t = d.embedding ? *d.b : *d.a;
    std::vector<float> f(static_cast<size_t>(d.rank * cols));
    t.read_f32(0, d.rank * cols, f.data());
    shared_.push_back(std::move(f));
  }
}

void LoraRowAdder::add(int64_t r, float* row) const {
  for (size_t i = 0; i < deltas_.size(); ++i) {
    const LoraDelta& d = deltas_[i];
    const float* s = shared_[i].data();
    std::vector<float> factor(static_cast<size_t>(d.rank));
    if (!d.embedding) {  // row += scale * sum_k B[r, k] A[k, :]
      d.b->read_f32(r * d.rank, d.rank, factor.data());
      for (int64_t k = 0; k < d.rank; ++k) {
        const float c = d.scale * factor[static_cast<size_t>(k)];
        const float* a = s + k * cols_;
        for (int64_t j = 0; j < cols_; ++j) row[j] += c * a[j];
      }
    } else {  // row[j] += scale * sum_k B[j, k] A[k, r]
      const int64_t vocab = d.a->shape[1];
      for (int64_t k = 0; k < d.rank; ++k) d.a->read_f32(k * vocab + r, 1, &factor[static_cast<size_t>(k)]);
      for (int64_t j = 0; j < cols_; ++j) {
        float sum = 0.0f;
        for (int64_t k = 0; k < d.rank; ++k) sum += s[j * d.rank + k] * factor[static_cast<size_t>(k)];
        row[j] += d.scale * sum;
      }
    }
  }
}

}  // namespace qrun
