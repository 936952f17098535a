// Text embeddings on the qrun library: each text's unit-length vector (the model's
// pooling, else the last token's state), then the cosine similarity of every pair, as a
// retrieval tool would rank passages against a query.
//
//   example_embed MODEL TEXT TEXT...
#include <cstdio>
#include <string>
#include <vector>

#include "qrun/embedding.h"
#include "qrun/error.h"
#include "qrun/model.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL TEXT TEXT...\n", argv[0]);
    return 2;
  }
  try {
    qrun::Model model(argv[1], qrun::RuntimeOptions{});
    const qrun::Pooling pooling = qrun::resolve_pooling(model.hparams());
    std::vector<std::vector<float>> vectors;
    for (int i = 2; i < argc; ++i)
      vectors.push_back(qrun::embed(model, model.tokenizer().encode(argv[i], /*add_special=*/true,
                                                                    /*parse_special=*/false), pooling));
    std::printf("%zu texts, %zu dimensions, %s pooling; cosine similarity:\n", vectors.size(), vectors[0].size(),
                qrun::pooling_name(pooling));
    for (size_t a = 0; a < vectors.size(); ++a) {
      for (size_t b = 0; b < vectors.size(); ++b) {
        double dot = 0.0;  // unit vectors: the dot product is the cosine
        for (size_t d = 0; d < vectors[a].size(); ++d) dot += double{vectors[a][d]} * vectors[b][d];
        std::printf(" %6.3f", dot);
      }
      std::printf("   %s\n", argv[a + 2]);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "example_embed: %s\n", e.what());
    return 1;
  }
}
