#include "src/server/reply_shape.h"

namespace qrun::server {

ReplyEnd reply_end(const std::string& done_line) {
  const nlohmann::json d = nlohmann::json::parse(done_line, nullptr, false);
  ReplyEnd end;
  if (!d.is_object()) return end;
  end.finish = d.value("finish_reason", "stop");
  end.stop_string = d.value("stop_string", "");
  end.usage.prompt = d.value("prompt_tokens", 0);
  end.usage.completion = d.value("completion_tokens", 0);
  end.usage.cached = d.value("cached_tokens", 0);
  end.prompt_ms = d.value("prompt_ms", 0.0);
  end.eval_ms = d.value("eval_ms", 0.0);
  return end;
}

}  // namespace qrun::server
