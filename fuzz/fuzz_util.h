// Shared by the libFuzzer targets (fuzz/*_fuzz.cpp): a per-process scratch folder for
// APIs that take a path, and the inputs the tokenizer targets encode.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "qrun/error.h"
#include "qrun/tokenizer.h"
#include "src/tokenizer/tokenizer_data.h"

namespace qrun::fuzz {

// In /dev/shm where there is one, so writing the input for every run costs no disk I/O;
// one folder per process so parallel fuzzers do not share files; removed at exit.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    namespace fs = std::filesystem;
    const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    fs::path d = base / ("qrun-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return d;
  }();
  return dir;
}

// Writes the bytes to scratch_dir()/name (replacing it) and returns the path.
inline std::filesystem::path write_input(const std::string& name, const uint8_t* data, size_t size) {
  const std::filesystem::path p = scratch_dir() / name;
  const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) std::abort();  // the harness's fault, not the input's
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n <= 0) std::abort();
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return p;
}

// Texts each tokenizer target encodes: plain words, space runs, special-token
// spellings, invalid UTF-8, multi-byte characters, digits, a long repeated word.
inline const std::vector<std::string>& sample_texts() {
  static const std::vector<std::string> texts = {
      "Once upon a time, there was a little girl.",
      "  two  spaces\tand\ttabs\n\nnew lines  ",
      "<s>[INST] hi [/INST]</s><|im_start|>user\nhello<|im_end|><|begin_of_text|>",
      "bad \xff\xfe utf-8 \xc3 cut \xe2\x82 \xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf",
      "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xe2\x98\x83 \xf0\x9f\x8e\x89 e\xcc\x81 \xe2\x96\x81x",
      "12345 67.89 1,000,000 don't I'll we've",
      std::string("nul\0inside", 10),
      std::string(300, 'a') + " " + std::string(200, ' ') + "b",
  };
  return texts;
}

// Everything a loaded tokenizer offers, on the sample texts and on its own pieces.
// Throws only qrun::Error; anything else (or a sanitizer report) is a finding.
inline void exercise_tokenizer(std::shared_ptr<const TokenizerData> data) {
  // What a reader accepted, the converter stores: serializing and reading it back must work.
  const std::vector<uint8_t> blob = serialize_tokenizer(*data);
  try {
    deserialize_tokenizer(blob, "roundtrip", 0);
  } catch (const Error&) {
    std::abort();  // a tokenizer the converter would write but the runtime refuses
  }
  const Tokenizer tok(std::move(data));
  std::string joined;  // the first pieces' text, so merges between real pieces run
  const int32_t n = tok.vocab_size();
  std::vector<int32_t> first;
  for (int32_t id = 0; id < n && id < 256; ++id) first.push_back(id);
  joined = tok.decode(first, true);
  std::vector<std::string> texts = sample_texts();
  texts.push_back(joined.substr(0, 4096));
  for (const std::string& text : texts) {
    for (int mode = 0; mode < 4; ++mode) {
      const std::vector<int32_t> ids = tok.encode(text, mode & 1, mode & 2);
      for (int32_t id : ids)
        if (id < 0 || id >= n) std::abort();  // an id outside the vocabulary
      (void)tok.decode(ids, mode & 1);
      StreamingDecoder stream(tok, true);
      std::string streamed;
      for (int32_t id : ids) streamed += stream.push(id);
      streamed += stream.flush();
    }
  }
  for (int32_t id : {-1, n, n + 1, INT32_MAX, INT32_MIN}) {
    (void)tok.piece(id);
    (void)tok.token_text(id, true);
    const int32_t one[1] = {id};
    (void)tok.decode(one, true);
  }
  (void)tok.eos_ids();
  (void)tok.is_eos(0);
  (void)tok.kind_name();
}

}  // namespace qrun::fuzz
