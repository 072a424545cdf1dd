// Marking real sockets: the DSCP is written, the ECN bits are kept, and the
// socket is put back as it was.
#include "control/client/socket_marking.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace qos::client {
namespace {

class Socket {
public:
  Socket(int family, int type) : fd_(socket(family, type, 0)) {}
  ~Socket() {
    if (fd_ >= 0) {
      close(fd_);
    }
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int fd() const { return fd_; }

private:
  int fd_;
};

int readOption(int fd, int level, int name) {
  int value = -1;
  socklen_t length = sizeof(value);
  EXPECT_EQ(getsockopt(fd, level, name, &value, &length), 0);
  return value;
}

void writeOption(int fd, int level, int name, int value) {
  ASSERT_EQ(setsockopt(fd, level, name, &value, sizeof(value)), 0);
}

TEST(SocketMarkingTest, IPv4MarksTheDscpKeepsEcnAndRestores) {
  Socket udp(AF_INET, SOCK_DGRAM);
  ASSERT_GE(udp.fd(), 0);
  writeOption(udp.fd(), IPPROTO_IP, IP_TOS, (10 << 2) | 0x2);  // AF11, ECT(0)
  Result<SocketMark> mark = markSocket(udp.fd(), 46);
  ASSERT_TRUE(mark.ok()) << mark.error().message;
  EXPECT_EQ(readOption(udp.fd(), IPPROTO_IP, IP_TOS), (46 << 2) | 0x2);
  EXPECT_EQ(*socketDscp(udp.fd()), 46);
  writeOption(udp.fd(), IPPROTO_IP, IP_TOS, (46 << 2) | 0x1);  // the ECN bits changed meanwhile
  ASSERT_TRUE(restoreSocket(*mark).ok());
  EXPECT_EQ(readOption(udp.fd(), IPPROTO_IP, IP_TOS), (10 << 2) | 0x1)
      << "the DSCP as before, the ECN bits as they are now";
}

TEST(SocketMarkingTest, IPv6MarksTheTrafficClassAndIPv4MappedTraffic) {
  Socket tcp(AF_INET6, SOCK_STREAM);
  ASSERT_GE(tcp.fd(), 0);
  Result<SocketMark> mark = markSocket(tcp.fd(), 34);
  ASSERT_TRUE(mark.ok()) << mark.error().message;
  EXPECT_EQ(readOption(tcp.fd(), IPPROTO_IPV6, IPV6_TCLASS), 34 << 2);
  EXPECT_TRUE(mark->v4_mapped);
  EXPECT_EQ(readOption(tcp.fd(), IPPROTO_IP, IP_TOS), 34 << 2);
  ASSERT_TRUE(restoreSocket(*mark).ok());
  EXPECT_EQ(readOption(tcp.fd(), IPPROTO_IPV6, IPV6_TCLASS), 0);
  EXPECT_EQ(readOption(tcp.fd(), IPPROTO_IP, IP_TOS), 0);
}

TEST(SocketMarkingTest, ATcpSocketIsPacedAtItsRateAndPutBack) {
  Socket tcp(AF_INET, SOCK_STREAM);
  ASSERT_GE(tcp.fd(), 0);
  const uint64_t unpaced = *socketPacingRate(tcp.fd());
  Result<SocketMark> mark = markSocket(tcp.fd(), 34, 125'000);
  ASSERT_TRUE(mark.ok()) << mark.error().message;
  EXPECT_TRUE(mark->paced);
  EXPECT_EQ(*socketPacingRate(tcp.fd()), 125'000u);
  ASSERT_TRUE(restoreSocket(*mark).ok());
  EXPECT_EQ(*socketPacingRate(tcp.fd()), unpaced);

  Socket udp(AF_INET, SOCK_DGRAM);  // UDP is marked, not paced
  Result<SocketMark> udp_mark = markSocket(udp.fd(), 34, 125'000);
  ASSERT_TRUE(udp_mark.ok()) << udp_mark.error().message;
  EXPECT_FALSE(udp_mark->paced);
  Result<SocketMark> unpaced_tcp = markSocket(tcp.fd(), 34);
  ASSERT_TRUE(unpaced_tcp.ok());
  EXPECT_FALSE(unpaced_tcp->paced) << "no rate, no pacing";
}

TEST(SocketMarkingTest, RefusesWhatItCannotMark) {
  EXPECT_EQ(markSocket(-1, 46).error().code, ErrorCode::Invalid);
  Socket unix_socket(AF_UNIX, SOCK_DGRAM);
  const Result<SocketMark> not_ip = markSocket(unix_socket.fd(), 46);
  ASSERT_FALSE(not_ip.ok());
  EXPECT_NE(not_ip.error().message.find("not an IPv4 or IPv6 socket"), std::string::npos);
  Socket udp(AF_INET, SOCK_DGRAM);
  EXPECT_EQ(markSocket(udp.fd(), 64).error().code, ErrorCode::Invalid);
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  EXPECT_NE(markSocket(pipe_fds[0], 46).error().message.find("is not a socket"), std::string::npos);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

}  // namespace
}  // namespace qos::client
