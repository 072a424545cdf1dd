// qos-call's signaling links: a TCP connection carries one line per message
// whatever the reads cut it into, skips a malformed line, refuses a line
// too long to be a message, and tells a closed peer; UDP hears its peer only.
#include <string>

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tools/qos-call/signal_link.h"

namespace qos::call {
namespace {

// A connected pair of stream sockets: [0] for the link, [1] for the test.
struct StreamPair {
  int fd[2] = {-1, -1};
  StreamPair() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd), 0); }
  ~StreamPair() {
    if (fd[1] >= 0) {
      close(fd[1]);
    }
  }
  void write(const std::string& text) const {
    ASSERT_EQ(::write(fd[1], text.data(), text.size()), static_cast<ssize_t>(text.size()));
  }
};

TEST(QosCallSignalLinkTest, TcpReadsOneMessagePerLineHoweverTheBytesCome) {
  StreamPair pair;
  auto link = tcpLink(pair.fd[0]);
  EXPECT_TRUE(link->reliable());
  EXPECT_STREQ(link->transport(), "tcp");
  pair.write("INVITE call=a1 media=198.18.1.10:4000");
  EXPECT_FALSE(link->receive(20).has_value()) << "half a line is not a message";
  pair.write("0 rate=64000\nACK call=a1 reverse_dscp=40\nBYE ");
  auto first = link->receive(100);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->verb, "INVITE");
  EXPECT_EQ(first->fields.at("media"), "198.18.1.10:40000");
  auto second = link->receive(0);
  ASSERT_TRUE(second.has_value()) << "the second line was already read";
  EXPECT_EQ(second->fields.at("reverse_dscp"), "40");
  pair.write("call=a1 sent=7\n");
  auto third = link->receive(100);
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(third->verb, "BYE");
  EXPECT_FALSE(link->closed());
}

TEST(QosCallSignalLinkTest, TcpSkipsAMalformedLineAndRefusesAnOverlongOne) {
  StreamPair pair;
  auto link = tcpLink(pair.fd[0]);
  pair.write("HELLO call=1\nOK call=1 media_port=5004\n");
  auto ok = link->receive(100);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->verb, "OK");
  pair.write(std::string(kMaxLineBytes + 10, 'x'));
  EXPECT_FALSE(link->receive(100).has_value());
  EXPECT_TRUE(link->closed()) << "a line longer than any message hangs up";
}

TEST(QosCallSignalLinkTest, TcpTellsWhenThePeerHasGoneAndWritesLines) {
  StreamPair pair;
  auto link = tcpLink(pair.fd[0]);
  link->send(Message{"ACK-OK", "c9", {}});
  char buf[64] = {};
  const ssize_t n = read(pair.fd[1], buf, sizeof buf);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(std::max<ssize_t>(n, 0))), "ACK-OK call=c9\n");
  close(pair.fd[1]);
  pair.fd[1] = -1;
  EXPECT_FALSE(link->receive(100).has_value());
  EXPECT_TRUE(link->closed());
  EXPECT_FALSE(exchange(*link, Message{"BYE", "c9", {}}, "BYE-OK").has_value());
}

TEST(QosCallSignalLinkTest, UdpHearsItsPeerOnlyAndAnExchangeTriesAgain) {
  Socket a(AF_INET, SOCK_DGRAM);
  Socket b(AF_INET, SOCK_DGRAM);
  Socket stranger(AF_INET, SOCK_DGRAM);
  Result<IpAddress> loopback = parseIpAddress("127.0.0.1");
  ASSERT_TRUE(loopback.ok());
  for (int fd : {a.fd, b.fd, stranger.fd}) {
    ASSERT_TRUE(bindTo(fd, Endpoint{*loopback, 0}));
  }
  auto a_to_b = udpLink(a.fd, localOf(b.fd));
  auto b_to_a = udpLink(b.fd, localOf(a.fd));
  auto stranger_to_b = udpLink(stranger.fd, localOf(b.fd));
  EXPECT_FALSE(a_to_b->reliable());
  stranger_to_b->send(Message{"BYE", "x1", {}});
  a_to_b->send(Message{"INVITE", "x1", {{"media", "127.0.0.1:9"}}});
  auto got = b_to_a->receive(200);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->verb, "INVITE") << "the stranger's BYE is not part of this call";
  // Nobody answers: every try is sent, then the exchange gives up.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(exchange(*a_to_b, Message{"BYE", "x1", {}}, "BYE-OK").has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(kTries * kRetryMs));
  int heard = 0;
  while (b_to_a->receive(0)) {
    ++heard;
  }
  EXPECT_EQ(heard, kTries);
}

}  // namespace
}  // namespace qos::call
