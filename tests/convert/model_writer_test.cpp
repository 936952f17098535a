// How a conversion ends when it cannot finish (issue 15): killed with SIGKILL it leaves
// no temporary file beside the destination (nor does an earlier killed one survive the
// next conversion), and a full disk is one clear error with no partial output.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <filesystem>

#include "common/run_command.h"
#include "common/test_paths.h"
#include "convert/converter.h"
#include "qrun/error.h"
#include "qrun/model_file.h"

namespace qrun {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// The files process `pid` has open under `dir` (an O_TMPFILE shows as "dir/#N (deleted)").
std::vector<std::string> open_files_under(pid_t pid, const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& fd : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    std::error_code ec;
    const std::string target = fs::read_symlink(fd.path(), ec).string();
    if (!ec && target.rfind(dir.string() + "/", 0) == 0) out.push_back(target);
  }
  return out;
}

// A child process converts stories260K to `out` and stops for good inside the writer
// (at its first progress report: the output file is open and sized, nothing is
// written yet); the parent learns that through a pipe, then kills it with SIGKILL.
void convert_and_kill(const fs::path& out, std::vector<std::string>* open_in_child) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(ready[0]);
    ConvertOptions opt;
    opt.weight_type = DType::Q8;
    opt.progress = [&](const WriteProgress&) {
      const char c = 1;
      if (::write(ready[1], &c, 1) != 1) ::_exit(3);
      for (;;) ::pause();  // until SIGKILL
    };
    try {
      convert_hf_checkpoint(test::stories_dir().string(), out.string(), opt);
    } catch (...) {
    }
    ::_exit(2);  // the progress callback never returned: not reached
  }
  ::close(ready[1]);
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1) << "the child did not reach the writer";
  ::close(ready[0]);
  *open_in_child = open_files_under(pid, out.parent_path());
  ::kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

TEST(ModelWriter, SigkillMidConversionLeavesNoTemporary) {
  test::ScratchDir dir;
  const fs::path out = dir / "stories.q8";
  for (int round = 0; round < 3; ++round) {
    std::vector<std::string> open;
    convert_and_kill(out, &open);
    ASSERT_EQ(open.size(), 1u) << "the child was not writing its output when killed";
    if (open[0].ends_with(" (deleted)")) {  // an O_TMPFILE: gone with the process
      EXPECT_TRUE(entries(dir.path()).empty()) << "left behind: " << entries(dir.path())[0];
    } else {  // a file system without O_TMPFILE: the next conversion removes it
      EXPECT_EQ(entries(dir.path()), std::vector<std::string>{fs::path(open[0]).filename().string()});
    }
  }
  // The next conversion to the same place works and leaves just its output.
  convert_hf_checkpoint(test::stories_dir().string(), out.string(), {});
  EXPECT_EQ(entries(dir.path()), std::vector<std::string>{"stories.q8"});
  ModelFile m(out.string());
  m.verify_checksums();
}

// Where no O_TMPFILE is to be had, a killed writer's named temporary is removed by the
// next conversion to the same destination, unless a live writer still holds it.
TEST(ModelWriter, NextConversionRemovesStaleTemporariesOfItsDestination) {
  test::ScratchDir dir;
  test::write_text(dir / ".stories.q8.tmp.AbC123", "left by a killed qconvert");
  test::write_text(dir / ".stories.q8.tmp.LiVe99", "being written by a live qconvert");
  test::write_text(dir / ".other.q8.tmp.AbC123", "another destination's");
  test::write_text(dir / ".stories.q8.tmp.notours", "not a temporary's name");
  const int live = ::open((dir / ".stories.q8.tmp.LiVe99").c_str(), O_RDONLY);
  ASSERT_GE(live, 0);
  ASSERT_EQ(::flock(live, LOCK_EX), 0);
  convert_hf_checkpoint(test::stories_dir().string(), (dir / "stories.q8").string(), {});
  ::close(live);
  EXPECT_EQ(entries(dir.path()), (std::vector<std::string>{".other.q8.tmp.AbC123", ".stories.q8.tmp.LiVe99",
                                                           ".stories.q8.tmp.notours", "stories.q8"}));
}

// A tmpfs smaller than the model stands for a full disk.
class SmallTmpfs {
 public:
  explicit SmallTmpfs(const fs::path& at, const char* size) : at_(at) {
    fs::create_directory(at);
    if (::mount("tmpfs", at.c_str(), "tmpfs", 0, (std::string("size=") + size).c_str()) != 0)
      why_ = std::string("cannot mount a tmpfs here: ") + std::strerror(errno);
  }
  ~SmallTmpfs() {
    if (why_.empty()) ::umount2(at_.c_str(), MNT_DETACH);
  }
  bool ok() const { return why_.empty(); }
  const std::string& why() const { return why_; }
  uint64_t free_bytes() const {
    struct statvfs s {};
    ::statvfs(at_.c_str(), &s);
    return uint64_t{s.f_bavail} * s.f_frsize;
  }

 private:
  fs::path at_;
  std::string why_;
};

TEST(ModelWriter, DiskFullIsAClearErrorAndLeavesNothing) {
  test::ScratchDir dir;
  const SmallTmpfs disk(dir / "disk", "512k");
  if (!disk.ok()) GTEST_SKIP() << disk.why();
  const uint64_t free_before = disk.free_bytes();
  const fs::path out = dir / "disk" / "stories.f32";
  ConvertOptions opt;
  opt.weight_type = DType::F32;  // about 1 MiB
  try {
    convert_hf_checkpoint(test::stories_dir().string(), out.string(), opt);
    FAIL() << "a 1 MiB model fit in a 512 KiB file system";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind(out.string() + ": ", 0), 0u) << what;
    EXPECT_NE(what.find("No space left on device"), std::string::npos) << what;
  }
  EXPECT_TRUE(entries(dir / "disk").empty());
  EXPECT_EQ(disk.free_bytes(), free_before) << "space still held by a partial output";

  // qconvert says it once and exits non-zero.
  const auto r = test::run_command((test::bin_dir() / "qconvert").string() + " " +
                                   test::quoted(test::stories_dir().string()) + " -o " + test::quoted(out.string()) +
                                   " --type f32 -t 1");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("qconvert: " + out.string() + ": cannot reserve"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("No space left on device"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_TRUE(entries(dir / "disk").empty());
  // The same file system takes a model that fits (q4: 324 KiB).
  ConvertOptions small;
  small.weight_type = DType::Q4;
  const fs::path q4 = dir / "disk" / "stories.q4";
  const auto s = convert_hf_checkpoint(test::stories_dir().string(), q4.string(), small);
  EXPECT_EQ(entries(dir / "disk"), std::vector<std::string>{"stories.q4"});
  EXPECT_EQ(fs::file_size(q4), s.file_size);
  ModelFile(q4.string()).verify_checksums();
}

}  // namespace
}  // namespace qrun
