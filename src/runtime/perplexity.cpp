#include "qrun/perplexity.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "qrun/error.h"

namespace qrun {

namespace {

// KL base file: header, the token ids (so a comparison run can check it scores the
// same text), then for each scored position `vocab` f32 log-probabilities.
struct KlBaseHeader {
  char magic[8];        // "QRUNKLB\0"
  uint32_t version;     // 1
  uint32_t vocab;
  uint32_t context;
  uint32_t n_tokens;    // tokens of the whole text
  uint32_t n_scored;    // positions stored
  uint32_t reserved;
};
constexpr char kKlMagic[8] = {'Q', 'R', 'U', 'N', 'K', 'L', 'B', '\0'};

// log-softmax of logits into out; returns nothing, numerically stable.
void log_softmax(const float* logits, int n, float* out) {
  const float m = *std::max_element(logits, logits + n);
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp(static_cast<double>(logits[i] - m));
  const float lse = m + static_cast<float>(std::log(sum));
  for (int i = 0; i < n; ++i) out[i] = logits[i] - lse;
}

double mean_and_err(const std::vector<double>& v, double* err) {
  double s = 0, s2 = 0;
  for (double x : v) s += x, s2 += x * x;
  const double n = static_cast<double>(v.size());
  const double mean = s / n;
  *err = n > 1 ? std::sqrt(std::max(0.0, s2 / n - mean * mean) / (n - 1)) : 0.0;
  return mean;
}

class KlBaseReader {
 public:
  KlBaseReader(const std::string& path, const std::vector<int32_t>& tokens, int vocab, int context) : path_(path) {
    in_.open(path, std::ios::binary);
    if (!in_) throw Error(path, -1, "cannot open KL base file");
    KlBaseHeader h{};
    in_.read(reinterpret_cast<char*>(&h), sizeof h);
    if (!in_ || std::memcmp(h.magic, kKlMagic, 8) != 0 || h.version != 1)
      throw Error(path, 0, "not a qrun KL base file (wrong magic or version)");
    if (static_cast<int>(h.vocab) != vocab) throw Error(path, 12, "vocabulary size differs from the model's");
    if (static_cast<int>(h.context) != context)
      throw Error(path, 16, "saved with context " + std::to_string(h.context) + ", this run uses " + std::to_string(context));
    std::vector<int32_t> saved(h.n_tokens);
    in_.read(reinterpret_cast<char*>(saved.data()), static_cast<std::streamsize>(saved.size() * 4));
    if (!in_ || saved != tokens) throw Error(path, sizeof h, "saved for a different text or tokenizer");
    n_scored_ = h.n_scored;
  }
  void next(float* out, int vocab) {
    in_.read(reinterpret_cast<char*>(out), static_cast<std::streamsize>(vocab) * 4);
    if (!in_) throw Error(path_, -1, "KL base file is truncated");
  }
  uint32_t n_scored() const { return n_scored_; }

 private:
  std::string path_;
  std::ifstream in_;
  uint32_t n_scored_ = 0;
};

// The KL base file is written beside its destination as DEST.partial and renamed when
// complete, so an interrupted run leaves no file at DEST that looks like a base.
class PendingFile {
 public:
  explicit PendingFile(std::string dest) : dest_(std::move(dest)), temp_(dest_ + ".partial") {
    out_.open(temp_, std::ios::binary | std::ios::trunc);
    if (!out_) throw Error(temp_, -1, "cannot create KL base file");
  }
  ~PendingFile() {
    if (!committed_) std::remove(temp_.c_str());
  }
  std::ofstream& out() { return out_; }
  void commit() {
    out_.close();
    if (!out_) throw Error(temp_, -1, "write failed");
    const int fd = ::open(temp_.c_str(), O_RDONLY);
    const bool synced = fd >= 0 && ::fsync(fd) == 0;
    if (fd >= 0) ::close(fd);
    if (!synced) throw Error(temp_, -1, "fsync failed");
    if (std::rename(temp_.c_str(), dest_.c_str()) != 0) throw Error(dest_, -1, "cannot rename " + temp_ + " to it");
    committed_ = true;
  }

 private:
  std::string dest_, temp_;
  std::ofstream out_;
  bool committed_ = false;
};

}  // namespace

PerplexityResult run_perplexity(Model& model, const std::string& text, const PerplexityOptions& options,
                                const std::function<void(int, int, double)>& progress) {
  const int ctx = options.context;
  const int vocab = static_cast<int>(model.hparams().vocab_size);
  if (ctx < 8 || ctx > model.context_length())
    throw Error("perplexity context " + std::to_string(ctx) + " must be between 8 and the model context " +
                std::to_string(model.context_length()));
  // As llama-perplexity: the text is tokenized with the tokenizer's own BOS (and EOS),
  // and each window's first token becomes BOS when the tokenizer adds one, so the two
  // tools score the same windows.
  const std::vector<int32_t> tokens = model.tokenizer().encode(text, true, false);
  int n_chunks = static_cast<int>(tokens.size()) / ctx;
  if (options.max_chunks > 0) n_chunks = std::min(n_chunks, options.max_chunks);
  if (n_chunks < 1)
    throw Error("text has " + std::to_string(tokens.size()) + " tokens, fewer than one window of " + std::to_string(ctx));
  const int first = ctx / 2;
  const int32_t bos = model.tokenizer().bos_id();
  const bool adds_bos = bos >= 0 && tokens.front() == bos;

  std::unique_ptr<PendingFile> pending;
  if (!options.save_kl_base.empty()) pending = std::make_unique<PendingFile>(options.save_kl_base);
  std::ofstream* save = pending ? &pending->out() : nullptr;
  if (save) {
    KlBaseHeader h{};
    std::memcpy(h.magic, kKlMagic, 8);
    h.version = 1;
    h.vocab = static_cast<uint32_t>(vocab);
    h.context = static_cast<uint32_t>(ctx);
    h.n_tokens = static_cast<uint32_t>(tokens.size());
    h.n_scored = static_cast<uint32_t>(n_chunks * (ctx - 1 - first));
    save->write(reinterpret_cast<const char*>(&h), sizeof h);
    save->write(reinterpret_cast<const char*>(tokens.data()), static_cast<std::streamsize>(tokens.size() * 4));
  }
  std::unique_ptr<KlBaseReader> base;
  if (!options.kl_base.empty()) base = std::make_unique<KlBaseReader>(options.kl_base, tokens, vocab, ctx);

  PerplexityResult r;
  std::vector<float> logits(static_cast<size_t>(ctx) * vocab), lp(static_cast<size_t>(vocab)),
      base_lp(static_cast<size_t>(vocab));
  std::vector<double> nll, kld, base_nll;
  std::vector<int32_t> window(static_cast<size_t>(ctx));
  for (int c = 0; c < n_chunks; ++c) {
    std::copy(tokens.begin() + c * ctx, tokens.begin() + (c + 1) * ctx, window.begin());
    if (adds_bos) window[0] = bos;
    model.reset();
    model.forward(window, logits.data(), true);
    for (int j = first; j < ctx - 1; ++j) {
      log_softmax(&logits[static_cast<size_t>(j) * vocab], vocab, lp.data());
      const int32_t target = tokens[static_cast<size_t>(c * ctx + j + 1)];
      nll.push_back(-lp[static_cast<size_t>(target)]);
      if (save) save->write(reinterpret_cast<const char*>(lp.data()), static_cast<std::streamsize>(vocab) * 4);
      if (base) {
        base->next(base_lp.data(), vocab);
        double kl = 0;
        for (int i = 0; i < vocab; ++i) {
          const double p = std::exp(static_cast<double>(base_lp[i]));
          kl += p * (base_lp[i] - lp[i]);
        }
        kld.push_back(std::max(0.0, kl));
        base_nll.push_back(-base_lp[static_cast<size_t>(target)]);
        const auto a = std::max_element(lp.begin(), lp.end()) - lp.begin();
        const auto b = std::max_element(base_lp.begin(), base_lp.end()) - base_lp.begin();
        r.top1_agreement += a == b;
      }
    }
    double err;
    const double mean = mean_and_err(nll, &err);
    if (progress) progress(c + 1, n_chunks, std::exp(mean));
  }
  if (pending) pending->commit();
  r.chunks = n_chunks;
  r.scored_tokens = static_cast<int>(nll.size());
  double err;
  const double mean = mean_and_err(nll, &err);
  r.ppl = std::exp(mean);
  r.ppl_err = r.ppl * err;  // delta method: d exp(x) = exp(x) dx
  if (base) {
    r.has_kl = true;
    r.kld_mean = mean_and_err(kld, &r.kld_err);
    std::vector<double> sorted = kld;
    std::sort(sorted.begin(), sorted.end());
    r.kld_p99 = sorted[std::min(sorted.size() - 1, static_cast<size_t>(0.99 * static_cast<double>(sorted.size())))];
    r.top1_agreement /= static_cast<double>(kld.size());
    double unused;
    r.ppl_base = std::exp(mean_and_err(base_nll, &unused));
  }
  return r;
}

}  // namespace qrun
