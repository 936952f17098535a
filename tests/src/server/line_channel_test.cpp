// JSON lines between qserve's front and its workers (src/server/line_channel.h): a line
// split over many reads, several lines in one read, and a partial line across a timeout.
#include "src/server/line_channel.h"

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace qrun::server {
namespace {

TEST(LineChannel, WholeLinesWhateverTheReads) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  LineChannel reader(fds[0]), writer(fds[1]);
  std::string big(3 << 20, 'x');  // an embedding job's answer is megabytes long
  for (size_t i = 0; i < big.size(); i += 4099) big[i] = static_cast<char>('a' + i % 26);
  std::thread send([&] {
    EXPECT_TRUE(writer.write_line(big));
    EXPECT_TRUE(writer.write_line("two"));
    EXPECT_TRUE(writer.write_line(""));
  });
  std::string line;
  ASSERT_EQ(reader.read_line(line, -1), LineChannel::Read::Line);
  EXPECT_EQ(line, big);
  ASSERT_EQ(reader.read_line(line, -1), LineChannel::Read::Line);
  EXPECT_EQ(line, "two");
  ASSERT_EQ(reader.read_line(line, -1), LineChannel::Read::Line);
  EXPECT_EQ(line, "");
  send.join();

  // A line's first part, a timeout, then its rest: the line whole.
  ASSERT_EQ(::send(fds[1], "par", 3, 0), 3);
  EXPECT_EQ(reader.read_line(line, 0), LineChannel::Read::Timeout);
  ASSERT_EQ(::send(fds[1], "tial\nnext\n", 10, 0), 10);
  ASSERT_EQ(reader.read_line(line, -1), LineChannel::Read::Line);
  EXPECT_EQ(line, "partial");
  ASSERT_EQ(reader.read_line(line, 0), LineChannel::Read::Line);
  EXPECT_EQ(line, "next");
  ::shutdown(fds[1], SHUT_WR);
  EXPECT_EQ(reader.read_line(line, -1), LineChannel::Read::Closed);
}

}  // namespace
}  // namespace qrun::server
