#include "qrun/embedding.h"

#include <algorithm>
#include <cmath>

#include "qrun/error.h"

namespace qrun {

Pooling parse_pooling(std::string_view name) {
  if (name == "mean") return Pooling::Mean;
  if (name == "cls") return Pooling::First;
  if (name == "last") return Pooling::Last;
  throw Error("pooling '" + std::string(name) + "' is not one of mean, cls, last");
}

const char* pooling_name(Pooling pooling) {
  switch (pooling) {
    case Pooling::Mean: return "mean";
    case Pooling::First: return "cls";
    case Pooling::Last: return "last";
    case Pooling::Unspecified: break;
  }
  return "unspecified";
}

Pooling resolve_pooling(const format::HParams& hp, std::string_view requested) {
  if (!requested.empty()) return parse_pooling(requested);
  const auto stored = static_cast<Pooling>(hp.pooling);
  return stored == Pooling::Unspecified ? Pooling::Last : stored;
}

std::vector<float> embed(Model& model, std::span<const int32_t> tokens, Pooling pooling) {
  if (tokens.empty()) throw Error("embedding: no tokens to embed");
  if (tokens.size() > static_cast<size_t>(model.context_length()))
    throw Error("embedding: " + std::to_string(tokens.size()) + " tokens exceed the context of " +
                std::to_string(model.context_length()));
  const size_t dim = model.hparams().dim;
  // Mean pooling needs every state, the others one: run only up to it where it is the first.
  const size_t n = pooling == Pooling::First ? 1 : tokens.size();
  // States held at once: one forward batch's, so float models keep their wide batches.
  const size_t chunk = static_cast<size_t>(std::max(1, model.plan().batch));
  std::vector<float> states(chunk * dim);
  std::vector<double> sum(dim, 0.0);
  // The last token's state needs no other: a cached prefix (an instruction that every
  // query repeats) is kept, as a prompt's is (Model::truncate).
  size_t start = 0;
  if (pooling == Pooling::Last) {
    const std::span<const int32_t> cached = model.tokens();
    while (start + 1 < n && start < cached.size() && cached[start] == tokens[start]) ++start;
    model.truncate(static_cast<int>(start));
    start = static_cast<size_t>(model.position());  // 0 where a sliding layer's ring cannot keep it
  } else {
    model.reset();
  }
  for (; start < n; start += chunk) {
    const size_t m = std::min(chunk, n - start);
    model.forward_hidden(tokens.subspan(start, m), states.data());
    if (pooling == Pooling::Mean) {
      for (size_t i = 0; i < m; ++i)
        for (size_t d = 0; d < dim; ++d) sum[d] += states[i * dim + d];
    } else if (start + m == n) {
      const float* pick = pooling == Pooling::First ? states.data() : states.data() + (m - 1) * dim;
      for (size_t d = 0; d < dim; ++d) sum[d] = pick[d];
    }
  }
  double norm = 0.0;
  for (double v : sum) norm += v * v;
  norm = std::sqrt(norm);
  std::vector<float> out(dim);
  for (size_t d = 0; d < dim; ++d) out[d] = static_cast<float>(norm > 0.0 ? sum[d] / norm : 0.0);
  return out;
}

}  // namespace qrun
