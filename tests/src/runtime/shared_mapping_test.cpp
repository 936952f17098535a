// Several qrun processes on one model file share its pages: the sum of their
// proportional set size (Pss) for the model mapping is about one model, not N.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/synthetic_model.h"
#include "qrun/model_file.h"

namespace qrun {
namespace {

struct Child {
  pid_t pid;
  int out_fd;
};

// Starts qrun generating "forever" (greedy, EOS ignored); stdout goes to a pipe.
Child start_qrun(const std::string& model) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    const std::string qrun = (test::bin_dir() / "qrun").string();
    ::execl(qrun.c_str(), "qrun", "-m", model.c_str(), "-p", "Once upon a time", "-n", "-1", "--temp", "0",
            "--ignore-eos", "-t", "1", "-c", "2048", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  return {pid, fds[0]};
}

// Blocks until the child has written `bytes` bytes of stdout: the prompt echo and
// then generated text, i.e. it has run full forward passes over every weight.
std::string read_at_least(int fd, size_t bytes) {
  std::string got;
  char buf[256];
  while (got.size() < bytes) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// Pss and Rss (bytes) of the mappings of `file` in process pid, from /proc/PID/smaps.
std::pair<uint64_t, uint64_t> mapping_pss_rss(pid_t pid, const std::string& file) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps");
  std::string line;
  bool in_model = false;
  uint64_t pss = 0, rss = 0;
  while (std::getline(in, line)) {
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') != std::string::npos &&
        line.find(' ') != std::string::npos) {
      in_model = line.size() >= file.size() && line.compare(line.size() - file.size(), file.size(), file) == 0;
      continue;
    }
    if (!in_model) continue;
    std::istringstream ss(line);
    std::string key;
    uint64_t kb = 0;
    ss >> key >> kb;
    if (key == "Pss:") pss += kb << 10;
    if (key == "Rss:") rss += kb << 10;
  }
  return {pss, rss};
}

TEST(SharedMapping, FourProcessesShareOneCopyOfTheWeights) {
  std::string why;
  const std::string model = test::synthetic_model("smollm-135m", DType::F16, &why);
  if (model.empty()) GTEST_SKIP() << why;
  const uint64_t model_bytes = ModelFile(model).header().file_size;
  ASSERT_GE(model_bytes, 200ull << 20);
  const std::string canonical = std::filesystem::canonical(model).string();

  std::vector<Child> kids;
  for (int i = 0; i < 4; ++i) kids.push_back(start_qrun(model));
  std::vector<std::string> outputs;
  for (auto& k : kids) outputs.push_back(read_at_least(k.out_fd, 80));
  uint64_t pss_sum = 0, rss_sum = 0;
  for (auto& k : kids) {
    const auto [pss, rss] = mapping_pss_rss(k.pid, canonical);
    pss_sum += pss;
    rss_sum += rss;
  }
  // Collect a longer, identical-length prefix of each output before stopping them.
  for (size_t i = 0; i < kids.size(); ++i) outputs[i] += read_at_least(kids[i].out_fd, 40);
  for (auto& k : kids) {
    ::kill(k.pid, SIGKILL);
    ::waitpid(k.pid, nullptr, 0);
    ::close(k.out_fd);
  }
  std::printf("model %.1f MiB; 4 processes: sum Rss %.1f MiB, sum Pss %.1f MiB\n", model_bytes / 1048576.0,
              rss_sum / 1048576.0, pss_sum / 1048576.0);
  // Each process touched (nearly) the whole model...
  EXPECT_GT(rss_sum, 3 * model_bytes);
  // ...but together they hold about one copy.
  EXPECT_LT(pss_sum, model_bytes + model_bytes / 10);
  // Greedy generation from the same prompt: identical text in every process.
  const size_t common = std::min({outputs[0].size(), outputs[1].size(), outputs[2].size(), outputs[3].size()});
  for (size_t i = 1; i < outputs.size(); ++i) EXPECT_EQ(outputs[i].substr(0, common), outputs[0].substr(0, common));
}

}  // namespace
}  // namespace qrun
