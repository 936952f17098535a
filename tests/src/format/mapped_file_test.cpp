// A model file truncated under a running process (issue 15): the next read of a lost
// page raised SIGBUS and qrun died without a word. With the mapping fault handler the
// tools name the file, say what to do, and exit 1. Every wait here is on the child's
// output or exit, never on time.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "common/child_process.h"
#include "common/model_fixture.h"
#include "common/test_paths.h"
#include "qrun/mapped_file.h"

namespace qrun {
namespace {

namespace fs = std::filesystem;

const std::string kAdvice = " changed while mapped; replace model files by rename, never in place";

TEST(MappingFault, ModelTruncatedWhileQrunGeneratesIsNamedNotASigbus) {
  test::ScratchDir dir;
  const fs::path model = dir / "stories.q8";
  fs::copy_file(test::converted_stories(DType::Q8), model);
  const std::string prompt = "Once upon a time";
  // 100k tokens of output (the context shifts) cannot pass a one-page pipe unread: the
  // child is still generating when the file is cut, however fast it is.
  test::ChildProcess qrun({(test::bin_dir() / "qrun").string(), "-m", model.string(), "-p", prompt, "-n", "100000",
                           "--ignore-eos", "--temp", "0", "-t", "1"});
  ASSERT_TRUE(qrun.started());
  std::string out = qrun.read_bytes(prompt.size() + 24);  // the prompt, then generated text
  ASSERT_GT(out.size(), prompt.size()) << out;
  ASSERT_EQ(out.rfind(prompt, 0), 0u) << out;
  ASSERT_EQ(::truncate(model.c_str(), 4096), 0);
  out = qrun.read_to_end();
  const int status = qrun.wait();
  ASSERT_FALSE(WIFSIGNALED(status)) << "qrun died of signal " << WTERMSIG(status) << "; output:\n" << out;
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1) << out;
  EXPECT_NE(out.find("\nqrun: " + model.string() + kAdvice + "\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("load time"), std::string::npos) << "it went on to finish:\n" << out;
}

std::string read_to_end(int fd) {
  std::string got;
  char buf[512];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// The handler in the library: a fault inside a MappedFile names that file; one outside
// every MappedFile (a mapping made directly) keeps SIGBUS's default action.
TEST(MappingFault, OnlyFaultsInsideAMappedFileAreCaught) {
  test::ScratchDir dir;
  const fs::path path = dir / "data.bin";
  test::write_bytes(path, std::vector<uint8_t>(3 * 4096, 7));
  for (const bool through_mapped_file : {true, false}) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::dup2(fds[1], 2);
      install_mapping_fault_handler("probe");
      const uint8_t* p = nullptr;
      MappedFile mapped;
      if (through_mapped_file) {
        mapped = MappedFile(path.string(), LoadMode::Mmap);
        p = mapped.data();
      } else {
        const int fd = ::open(path.c_str(), O_RDONLY);
        p = static_cast<const uint8_t*>(::mmap(nullptr, 3 * 4096, PROT_READ, MAP_SHARED, fd, 0));
      }
      if (::truncate(path.c_str(), 4096) != 0) ::_exit(3);
      volatile uint8_t v = p[2 * 4096];  // a page the file no longer has
      (void)v;
      ::_exit(4);
    }
    ::close(fds[1]);
    const std::string err = read_to_end(fds[0]);
    ::close(fds[0]);
    const int status = wait_for(pid);
    if (through_mapped_file) {
      ASSERT_TRUE(WIFEXITED(status)) << err;
      EXPECT_EQ(WEXITSTATUS(status), 1);
      EXPECT_EQ(err, "\nprobe: " + path.string() + kAdvice + "\n");
    } else {
      ASSERT_TRUE(WIFSIGNALED(status)) << err;
      EXPECT_EQ(WTERMSIG(status), SIGBUS);
      EXPECT_EQ(err, "");
    }
    test::write_bytes(path, std::vector<uint8_t>(3 * 4096, 7));
  }
}

}  // namespace
}  // namespace qrun
