// Stop strings on streamed text (qrun's -r/--reverse-prompt, the server's "stop"): text
// that might be the start of a stop string is held back until it is known not to be,
// so a stop string never reaches the output, even when it arrives split over tokens.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "qrun/tokenizer.h"

namespace qrun {

class StopStrings {
 public:
  explicit StopStrings(std::vector<std::string> stops);

  // Adds generated text; returns the part that is safe to show. Once a stop string is
  // complete, returns the text before it and stopped() becomes true (later pushes: "").
  std::string push(std::string_view text);
  // The held-back text, when generation ended for another reason.
  std::string flush();
  bool stopped() const { return stopped_; }
  const std::string& matched() const { return matched_; }  // the stop string found

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
  std::string matched_;
};

// A reply's token ids as text to show: whole UTF-8 characters, stop strings held back
// and never shown. The one pipeline qrun's replies and the server's jobs both stream.
class ReplyText {
 public:
  ReplyText(const Tokenizer& tok, std::vector<std::string> stops, std::vector<int32_t> kept = {})
      : decoder_(tok, /*at_text_start=*/false, std::move(kept)), stops_(std::move(stops)) {}
  std::string push(int32_t id) { return stops_.push(decoder_.push(id)); }
  // What is still held when generation ends for another reason than a stop string.
  std::string finish() { return stops_.stopped() ? std::string() : stops_.push(decoder_.flush()) + stops_.flush(); }
  bool stopped() const { return stops_.stopped(); }
  const std::string& matched() const { return stops_.matched(); }  // the stop string found

 private:
  StreamingDecoder decoder_;
  StopStrings stops_;
};

}  // namespace qrun
