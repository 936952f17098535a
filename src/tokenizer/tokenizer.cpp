// Encoding and decoding for both tokenizer kinds (src/tokenizer/tokenizer_data.h).
#include "qrun/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <optional>
#include <unordered_map>

#include <utf8proc.h>

#include "qrun/error.h"
#include "src/tokenizer/bpe_merge.h"
#include "src/tokenizer/byte_level.h"
#include "src/tokenizer/tokenizer_data.h"

namespace qrun {

namespace {
constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // "▁", SentencePiece's visible space

std::string replace_spaces(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  for (char c : text) {
    if (c == ' ') out += kSpaceMark;
    else out += c;
  }
  return out;
}

// SentencePiece's remove_extra_whitespaces: no leading or trailing spaces, and each run
// of spaces inside becomes one. A continuation is inside its text: leading spaces
// become one.
std::string collapse_spaces(std::string_view text, bool continuation) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  for (char c : text) {
    if (c == ' ') {
      pending_space = continuation || !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += c;
  }
  return out;
}

// Unicode NFC of each maximal run of valid UTF-8; bytes outside valid characters are
// kept as they are (they are then encoded as raw bytes). ASCII is NFC already.
std::string nfc_valid_runs(std::string_view text) {
  if (std::all_of(text.begin(), text.end(), [](char c) { return static_cast<uint8_t>(c) < 0x80; }))
    return std::string(text);
  std::string out;
  out.reserve(text.size());
  auto normalize = [&](std::string_view run) {
    if (run.empty()) return;
    utf8proc_uint8_t* n = nullptr;
    const utf8proc_ssize_t len =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(run.data()), static_cast<utf8proc_ssize_t>(run.size()),
                     &n, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    if (len >= 0 && n) out.append(reinterpret_cast<const char*>(n), static_cast<size_t>(len));
    else out.append(run);  // cannot happen for valid UTF-8; keep the text rather than lose it
    std::free(n);
  };
  size_t run_start = 0;
  for (const Segment& sym : utf8_symbols(text)) {
    const auto c = static_cast<uint8_t>(text[sym.start]);
    // utf8_symbols accepts some invalid sequences (overlong, surrogates); utf8proc
    // would reject the whole run, so such characters are kept raw as well.
    bool valid = sym.len > 1 || c < 0x80;
    if (valid && sym.len > 1) {
      utf8proc_int32_t cp;
      valid = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(text.data() + sym.start), sym.len, &cp) ==
              static_cast<utf8proc_ssize_t>(sym.len);
    }
    if (!valid) {
      normalize(text.substr(run_start, sym.start - run_start));
      out.append(text.substr(sym.start, sym.len));
      run_start = sym.start + sym.len;
    }
  }
  normalize(text.substr(run_start));
  return out;
}

uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

// Printable form of a piece for error messages: control bytes and quotes escaped,
// long pieces cut.
std::string printable(std::string_view p) {
  std::string out;
  for (size_t i = 0; i < p.size() && i < 64; ++i) {
    const auto c = static_cast<unsigned char>(p[i]);
    if (c < 0x20 || c == 0x7f || c == '\\' || c == '\'') {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (p.size() > 64) out += "...";
  return out;
}

struct MatchDataFree {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};
using MatchData = std::unique_ptr<pcre2_match_data, MatchDataFree>;
}  // namespace

int byte_piece_value(std::string_view p) {
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
  auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; };
  const int hi = hex(p[3]), lo = hex(p[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

void validate_tokenizer_data(const TokenizerData& d, const std::string& file, int64_t offset) {
  if (d.scores.size() != d.pieces.size() || d.types.size() != d.pieces.size())
    throw Error(file, offset, "tokenizer: " + std::to_string(d.pieces.size()) + " pieces but " +
                                  std::to_string(d.scores.size()) + " scores and " + std::to_string(d.types.size()) +
                                  " types");
  for (size_t i = 0; i < d.pieces.size(); ++i)
    if (d.types[i] == PieceType::Byte && byte_piece_value(d.pieces[i]) < 0)
      throw Error(file, offset, "tokenizer: byte piece " + std::to_string(i) + " '" + printable(d.pieces[i]) +
                                    "' is not of the form <0xHH> (two upper-case hex digits)");
}

struct Tokenizer::Impl {
  const TokenizerData& d;
  std::unordered_map<std::string_view, int32_t> piece_id;
  std::unordered_map<uint64_t, int32_t> merge_rank;
  std::vector<int32_t> specials;       // matched in text when parse_special (longest first)
  std::vector<int32_t> always_added;   // user-defined / non-special added tokens (longest first)
  int32_t byte_piece[256];             // SentencePiece <0xNN> ids, -1 when absent
  // SentencePiece text can be cut into words ("▁"s then other characters) and each
  // word merged alone when no piece has a "▁" after another character; the same word
  // then merges the same way every time, so repeated words are looked up, not merged.
  bool split_words = true;
  // The compiled pattern is read-only once JIT-compiled and may be shared by threads;
  // match data is written by every match, so each encode call makes its own.
  pcre2_code* regex = nullptr;

  explicit Impl(const TokenizerData& data) : d(data) {
    validate_tokenizer_data(d, "", -1);
    // Most lookups during merging are misses (pairs that form no piece), and a miss walks
    // its whole bucket: keep buckets short.
    piece_id.max_load_factor(0.25f);
    piece_id.reserve(d.pieces.size());
    for (size_t i = 0; i < d.pieces.size(); ++i) piece_id.emplace(d.pieces[i], static_cast<int32_t>(i));
    for (size_t r = 0; r < d.merges.size(); ++r)
      merge_rank.emplace(pair_key(d.merges[r].first, d.merges[r].second), static_cast<int32_t>(r));
    std::fill(std::begin(byte_piece), std::end(byte_piece), -1);
    for (size_t i = 0; i < d.pieces.size(); ++i) {
      const std::string& p = d.pieces[i];
      if (d.types[i] == PieceType::Byte) {
        byte_piece[byte_piece_value(p)] = static_cast<int32_t>(i);  // validated above: 0..255
      }
      if (p.empty()) continue;
      // <unk> is special text too (Hugging Face lists it among the special tokens,
      // llama.cpp matches UNKNOWN pieces with the control ones).
      if (d.types[i] == PieceType::Control || d.types[i] == PieceType::Unknown) specials.push_back(static_cast<int32_t>(i));
      // User-defined pieces (Hugging Face non-special added tokens, SentencePiece
      // user_defined symbols) are cut out of the text whole, before any merging.
      if (d.types[i] == PieceType::UserDefined) always_added.push_back(static_cast<int32_t>(i));
    }
    // A "▁" that follows anything but another "▁" (also one at byte 1 or 2, after a
    // shorter character: "a▁bc") lets a piece span a word boundary. Such pieces are
    // legal (SentencePiece's BPE merges over the whole text, not word by word; a
    // trainer run with split_by_whitespace=false makes them), so the text is then
    // merged whole, as SentencePiece does.
    for (size_t i = 0; i < d.pieces.size() && split_words; ++i) {
      const std::string& p = d.pieces[i];
      for (size_t at = p.find(kSpaceMark, 1); at != std::string::npos && split_words; at = p.find(kSpaceMark, at + 1))
        if (at < kSpaceMark.size() || p.compare(at - kSpaceMark.size(), kSpaceMark.size(), kSpaceMark) != 0)
          split_words = false;
    }
    auto longest_first = [&](int32_t a, int32_t b) { return d.pieces[size_t(a)].size() > d.pieces[size_t(b)].size(); };
    std::sort(specials.begin(), specials.end(), longest_first);
    std::sort(always_added.begin(), always_added.end(), longest_first);
    if (d.kind == TokenizerKind::ByteLevel) {
      int err;
      PCRE2_SIZE at;
      regex = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(d.pretokenizer_regex.data()), d.pretokenizer_regex.size(),
                            PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &at, nullptr);
      if (!regex) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        throw Error("tokenizer pre-split regex does not compile at " + std::to_string(at) + ": " +
                    reinterpret_cast<const char*>(msg));
      }
      pcre2_jit_compile(regex, PCRE2_JIT_COMPLETE);
    }
  }
  ~Impl() {
    if (regex) pcre2_code_free(regex);
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  int32_t find(std::string_view s) const {
    auto it = piece_id.find(s);
    return it == piece_id.end() ? -1 : it->second;
  }

  // Priority of merging two adjacent symbols: merge rank when the vocabulary has merge
  // rules, else minus the merged piece's score (SentencePiece BPE).
  std::optional<double> priority(std::string_view left, std::string_view right) const {
    if (!d.merges.empty()) {
      const int32_t a = find(left), b = find(right);
      if (a < 0 || b < 0) return std::nullopt;
      auto it = merge_rank.find(pair_key(a, b));
      if (it == merge_rank.end()) return std::nullopt;
      return static_cast<double>(it->second);
    }
    // Adjacent symbols are adjacent in the text, so the pair is one view of it.
    const std::string_view joined(left.data(), left.size() + right.size());
    const int32_t id = find(joined);
    if (id < 0) return std::nullopt;
    const PieceType t = d.types[size_t(id)];
    if (t != PieceType::Normal && t != PieceType::UserDefined) return std::nullopt;
    return -static_cast<double>(d.scores[size_t(id)]);
  }

  void emit_unknown_bytes(std::string_view piece, std::vector<int32_t>& out) const {
    if (d.byte_fallback) {
      bool all = true;
      for (unsigned char c : piece) all = all && byte_piece[c] >= 0;
      if (all) {
        for (unsigned char c : piece) out.push_back(byte_piece[c]);
        return;
      }
    }
    if (d.unk >= 0) out.push_back(d.unk);
  }

  // BPE over one pre-split word (already normalized / byte-mapped).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const {
    if (word.empty()) return;
    if (d.ignore_merges) {
      const int32_t id = find(word);
      if (id >= 0) {
        out.push_back(id);
        return;
      }
    }
    const auto segs = bpe_merge(word, utf8_symbols(word),
                                [this](std::string_view l, std::string_view r) { return priority(l, r); });
    for (const Segment& s : segs) {
      const std::string_view piece = word.substr(s.start, s.len);
      const int32_t id = find(piece);
      if (id >= 0) out.push_back(id);
      else emit_unknown_bytes(piece, out);
    }
  }

  void encode_sentencepiece(std::string_view text, bool first, std::vector<int32_t>& out) const {
    if (text.empty()) return;
    std::string norm = (d.add_dummy_prefix && first) ? std::string(kSpaceMark) : std::string();
    norm += replace_spaces(text);
    if (!split_words) {
      encode_word(norm, out);
      return;
    }
    const std::string_view all(norm);
    std::unordered_map<std::string_view, std::pair<size_t, size_t>> seen;  // word -> its ids in out
    seen.max_load_factor(0.5f);
    size_t i = 0;
    while (i < all.size()) {
      size_t j = i;
      while (all.compare(j, kSpaceMark.size(), kSpaceMark) == 0) j += kSpaceMark.size();
      while (j < all.size() && all.compare(j, kSpaceMark.size(), kSpaceMark) != 0) ++j;
      const std::string_view word = all.substr(i, j - i);
      if (auto it = seen.find(word); it != seen.end()) {
        const auto [at, n] = it->second;
        for (size_t k = 0; k < n; ++k) out.push_back(out[at + k]);
      } else {
        const size_t at = out.size();
        encode_word(word, out);
        seen.emplace(word, std::make_pair(at, out.size() - at));
      }
      i = j;
    }
  }

  void encode_byte_level(std::string_view text, std::vector<int32_t>& out) const {
    if (text.empty()) return;
    const MatchData match(pcre2_match_data_create_from_pattern(regex, nullptr));
    if (!match) throw std::bad_alloc();
    PCRE2_SIZE offset = 0;
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    std::unordered_map<std::string_view, std::pair<size_t, size_t>> seen;  // word -> its ids in out
    seen.max_load_factor(0.5f);
    auto word = [&](size_t b, size_t e) {
      if (e <= b) return;
      const std::string_view w = text.substr(b, e - b);
      if (auto it = seen.find(w); it != seen.end()) {
        const auto [at, n] = it->second;
        for (size_t k = 0; k < n; ++k) out.push_back(out[at + k]);
        return;
      }
      const size_t at = out.size();
      encode_word(bytes_to_byte_level(w), out);
      seen.emplace(w, std::make_pair(at, out.size() - at));
    };
    while (offset < text.size()) {
      const int rc = pcre2_match(regex, subject, text.size(), offset, 0, match.get(), nullptr);
      if (rc < 0) {  // no further match (or only invalid UTF-8 left): the rest is one word
        word(offset, text.size());
        return;
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(match.get());
      word(offset, ov[0]);  // bytes the pattern skipped (invalid UTF-8)
      if (ov[1] == ov[0]) {  // empty match: step one byte to make progress
        word(ov[0], ov[0] + 1);
        offset = ov[0] + 1;
        continue;
      }
      word(ov[0], ov[1]);
      offset = ov[1];
    }
  }

  // Splits text at special / added tokens, encoding the text between them.
  void encode(std::string_view raw, bool parse_special, bool continuation, std::vector<int32_t>& out) const {
    std::string normalized;
    std::string_view text = raw;
    if (d.remove_extra_whitespaces) {
      normalized = collapse_spaces(raw, continuation);
      text = normalized;
    }
    if (d.nfc && !text.empty()) {
      normalized = nfc_valid_runs(text);
      text = normalized;
    }
    bool first = !continuation;
    size_t start = 0, i = 0;
    auto flush = [&](size_t end) {
      const std::string_view part = text.substr(start, end - start);
      if (d.kind == TokenizerKind::SentencePiece) encode_sentencepiece(part, first, out);
      else encode_byte_level(part, out);
      if (!part.empty()) first = false;
    };
    while (i < text.size()) {
      int32_t hit = -1;
      auto try_list = [&](const std::vector<int32_t>& list) {
        for (int32_t id : list) {
          const std::string& p = d.pieces[size_t(id)];
          if (text.compare(i, p.size(), p) == 0) {
            hit = id;
            return;
          }
        }
      };
      if (parse_special) try_list(specials);
      if (hit < 0) try_list(always_added);
      if (hit < 0) {
        ++i;
        continue;
      }
      flush(i);
      out.push_back(hit);
      first = d.dummy_prefix_every_segment;
      i += d.pieces[size_t(hit)].size();
      start = i;
    }
    flush(text.size());
  }

  // The bytes a token stands for (before the decoder's leading-space strip).
  std::string token_bytes(int32_t id, bool keep_special) const {
    if (id < 0 || static_cast<size_t>(id) >= d.pieces.size()) return {};
    const std::string& p = d.pieces[size_t(id)];
    const PieceType t = d.types[size_t(id)];
    if (t == PieceType::Control) return keep_special ? p : std::string();
    if (d.kind == TokenizerKind::SentencePiece) {
      if (t == PieceType::Byte) {
        for (int b = 0; b < 256; ++b)
          if (byte_piece[b] == id) return std::string(1, static_cast<char>(b));
      }
      if (t == PieceType::Unknown) return " \xE2\x81\x87 ";  // " ⁇ ", as SentencePiece prints it
      std::string out;
      for (size_t k = 0; k < p.size();) {
        if (p.compare(k, kSpaceMark.size(), kSpaceMark) == 0) {
          out += ' ';
          k += kSpaceMark.size();
        } else {
          out += p[k++];
        }
      }
      return out;
    }
    if (t == PieceType::UserDefined) return p;
    std::string out;
    if (!byte_level_to_bytes(p, &out)) return p;
    return out;
  }

  bool strips_leading_space() const { return d.kind == TokenizerKind::SentencePiece && d.add_dummy_prefix; }
};

Tokenizer::Tokenizer(std::shared_ptr<const TokenizerData> data)
    : data_(std::move(data)), impl_(std::make_unique<Impl>(*data_)) {}

Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  if (add_special && data_->add_bos && data_->bos >= 0) out.push_back(data_->bos);
  impl_->encode(text, parse_special, false, out);
  if (add_special && data_->add_eos && data_->eos >= 0) out.push_back(data_->eos);
  return out;
}

std::vector<int32_t> Tokenizer::encode_continuation(std::string_view text, bool parse_special) const {
  std::vector<int32_t> out;
  impl_->encode(text, parse_special, true, out);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool keep_special) const {
  std::string out;
  for (int32_t id : ids) out += impl_->token_bytes(id, keep_special);
  if (impl_->strips_leading_space() && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(data_->pieces.size()); }
int32_t Tokenizer::bos_id() const { return data_->bos; }

bool Tokenizer::is_eos(int32_t id) const {
  return id == data_->eos || std::find(data_->extra_eos.begin(), data_->extra_eos.end(), id) != data_->extra_eos.end();
}

std::vector<int32_t> Tokenizer::eos_ids() const {
  std::vector<int32_t> out;
  if (data_->eos >= 0) out.push_back(data_->eos);
  for (int32_t id : data_->extra_eos)
    if (id != data_->eos) out.push_back(id);
  return out;
}

std::string_view Tokenizer::piece(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return data_->pieces[size_t(id)];
}

const std::string& Tokenizer::chat_template() const { return data_->chat_template; }

std::string Tokenizer::kind_name() const {
  return data_->kind == TokenizerKind::SentencePiece ? "sentencepiece-bpe" : "byte-level-bpe";
}

std::string Tokenizer::token_text(int32_t id, bool keep_special) const { return impl_->token_bytes(id, keep_special); }
std::string Tokenizer::token_text(int32_t id, std::span<const int32_t> kept) const {
  return token_text(id, std::find(kept.begin(), kept.end(), id) != kept.end());
}
bool Tokenizer::strips_leading_space() const { return impl_->strips_leading_space(); }

StreamingDecoder::StreamingDecoder(const Tokenizer& tok, bool at_text_start, std::vector<int32_t> kept)
    : tok_(tok), kept_(std::move(kept)), first_(at_text_start) {}

std::string StreamingDecoder::push(int32_t id) {
  std::string bytes = tok_.token_text(id, kept_);
  if (first_ && !bytes.empty()) {
    if (tok_.strips_leading_space() && bytes[0] == ' ') bytes.erase(0, 1);
    first_ = false;
  }
  pending_ += bytes;
  // Emit every complete character; hold a trailing incomplete one; replace bytes that
  // can never become valid with U+FFFD so the output is always valid UTF-8.
  std::string out;
  size_t i = 0;
  while (i < pending_.size()) {
    const auto c = static_cast<uint8_t>(pending_[i]);
    const int len = utf8_len(c);
    const bool lead_ok = c < 0x80 || (c >= 0xC2 && c <= 0xF4);
    if (!lead_ok) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    if (i + static_cast<size_t>(len) > pending_.size()) {
      bool cont = true;
      for (size_t k = i + 1; k < pending_.size(); ++k) cont = cont && (static_cast<uint8_t>(pending_[k]) & 0xC0) == 0x80;
      if (cont) break;  // may still complete
    }
    bool ok = i + static_cast<size_t>(len) <= pending_.size();
    for (int k = 1; ok && k < len; ++k) ok = (static_cast<uint8_t>(pending_[i + size_t(k)]) & 0xC0) == 0x80;
    if (!ok) {
      out += "\xEF\xBF\xBD";
      ++i;
      continue;
    }
    out.append(pending_, i, static_cast<size_t>(len));
    i += static_cast<size_t>(len);
  }
  pending_.erase(0, i);
  return out;
}

std::string StreamingDecoder::flush() {
  std::string out;
  if (!pending_.empty()) out = "\xEF\xBF\xBD";
  pending_.clear();
  return out;
}

}  // namespace qrun
