// A qserve process for tests: started on a free port with stories260K (or another
// model), ready once it has said so, stopped with SIGTERM; and the requests tests send it.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "common/child_process.h"
#include "common/test_paths.h"
#include "common/model_fixture.h"

namespace qrun::test {

inline int free_port() {
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

// A qserve process on a free port, ready when it has said so.
class Server {
 public:
  explicit Server(std::vector<std::string> flags, DType type = DType::Q8, const std::string& fault = {},
                  const std::filesystem::path& model = {})
      : port_(free_port()) {
    std::vector<std::string> argv = {(bin_dir() / "qserve").string(), "-m",
                                     (model.empty() ? converted_stories(type) : model).string(),
                                     "--port", std::to_string(port_), "-t", "1"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    if (!fault.empty()) ::setenv("QRUN_WORKER_FAULT", fault.c_str(), 1);
    proc_ = std::make_unique<ChildProcess>(argv);
    ::unsetenv("QRUN_WORKER_FAULT");
    ready_ = proc_->read_until("listening on").find("listening on") != std::string::npos;
  }
  ~Server() {
    proc_->signal(SIGTERM);
    proc_->read_to_end();
    proc_->wait();
  }
  bool ready() const { return ready_; }
  int port() const { return port_; }
  std::unique_ptr<httplib::Client> client() const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_read_timeout(120, 0);
    return c;
  }
  const std::string& log() const { return proc_->output(); }

 private:
  int port_;
  std::unique_ptr<ChildProcess> proc_;
  bool ready_ = false;
};

// Any nlohmann type: an ordered_json body keeps its keys in the order written.
template <class Json = nlohmann::json>
httplib::Result post(const Server& s, const std::string& path, const Json& body, const httplib::Headers& h = {}) {
  return s.client()->Post(path.c_str(), h, body.dump(), "application/json");
}

inline nlohmann::json health(const Server& s) { return nlohmann::json::parse(s.client()->Get("/health")->body); }

// Qwen3's chat template (tools in the Hermes form, <think> reasoning), from ../shared.
inline std::string qwen3_chat_template() {
  return nlohmann::json::parse(read_text(shared_dir() / "tokenizers" / "qwen3" / "tokenizer_config.json")).at("chat_template");
}

// Tests of a qserve process, skipped where qserve was not built.
class QserveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(bin_dir() / "qserve")) GTEST_SKIP() << "qserve not built (no cpp-httplib)";
  }
};

}  // namespace qrun::test
