// Host enforcement against the real kernel, in a network namespace of the
// test's own (a thread that unshares its network namespace: nothing of the
// host's is touched): grants for IPv4 and IPv6 flows, with both ports, one
// or none, mark what loopback carries, the most specific grant first; a
// removed grant marks no more; the HTB tree is on lo and gone at the end.
// Skipped where the test may not make a namespace (not root).
#include "control/agent/enforce/host_kernel.h"

#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/agent/enforce/host_enforcer.h"
#include "control/common/ip_prefix.h"

namespace qos::agent {
namespace {

/** @p addr:@p port as a socket address of @p family; @p length is set to its size. */
sockaddr_storage addressOf(int family, const char* addr, uint16_t port, socklen_t& length) {
  sockaddr_storage out{};
  if (family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&out);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, addr, &a->sin_addr);
    length = sizeof(sockaddr_in);
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&out);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    inet_pton(AF_INET6, addr, &a->sin6_addr);
    length = sizeof(sockaddr_in6);
  }
  return out;
}

/** A UDP socket bound to @p addr:@p port that reads each datagram's TOS / traffic class. */
class Receiver {
public:
  Receiver(int family, const char* addr, uint16_t port) : family_(family) {
    fd_ = socket(family, SOCK_DGRAM, 0);
    const int on = 1;
    timeval timeout{1, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (family == AF_INET) {
      setsockopt(fd_, IPPROTO_IP, IP_RECVTOS, &on, sizeof on);
    } else {
      setsockopt(fd_, IPPROTO_IPV6, IPV6_RECVTCLASS, &on, sizeof on);
    }
    socklen_t length = 0;
    const sockaddr_storage a = addressOf(family, addr, port, length);
    bound_ = bind(fd_, reinterpret_cast<const sockaddr*>(&a), length) == 0;
  }
  ~Receiver() { close(fd_); }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;
  bool bound() const { return bound_; }

  /** The DSCP of the next datagram, or nullopt if none came within a second. */
  std::optional<int> nextDscp() {
    char data[64];
    char control[64];
    iovec iov{data, sizeof data};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    if (recvmsg(fd_, &msg, 0) < 0) {
      return std::nullopt;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if ((family_ == AF_INET && c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) ||
          (family_ == AF_INET6 && c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS)) {
        int tos = 0;
        std::memcpy(&tos, CMSG_DATA(c), family_ == AF_INET ? 1 : sizeof(int));
        return (tos & 0xFF) >> 2;
      }
    }
    return -1;
  }

private:
  int family_;
  int fd_ = -1;
  bool bound_ = false;
};

/** One unmarked datagram from @p src:@p sport to @p dst:@p dport. */
bool sendFrom(int family, const char* src, uint16_t sport, const char* dst, uint16_t dport) {
  const int fd = socket(family, SOCK_DGRAM, 0);
  socklen_t from_length = 0;
  socklen_t to_length = 0;
  const sockaddr_storage from = addressOf(family, src, sport, from_length);
  const sockaddr_storage to = addressOf(family, dst, dport, to_length);
  const bool sent = bind(fd, reinterpret_cast<const sockaddr*>(&from), from_length) == 0 &&
                    sendto(fd, "qos", 3, 0, reinterpret_cast<const sockaddr*>(&to), to_length) == 3;
  close(fd);
  return sent;
}

control::Grant grant(uint64_t id, const char* src, const char* dst, uint16_t sport, uint16_t dport,
                     uint8_t dscp) {
  control::Grant g;
  g.flow_id = id;
  g.flow.src = *parseIpAddress(src);
  g.flow.dst = *parseIpAddress(dst);
  g.flow.protocol = 17;
  g.flow.src_port = sport;
  g.flow.dst_port = dport;
  g.dscp = dscp;
  g.profile = {"AF41", 100'000'000, 64'000};  // far above what the test sends
  return g;
}

bool loopbackUp() {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  bool up = ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  up = up && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
  close(fd);
  return up;
}

TEST(HostKernelTest, GrantsMarkIPv4AndIPv6FlowsInARealKernelMostSpecificFirst) {
  bool skipped = false;
  std::thread in_namespace([&] {
    if (unshare(CLONE_NEWNET) != 0) {
      skipped = true;  // not root: no namespace of our own, and the host is not to be touched
      return;
    }
    ASSERT_TRUE(loopbackUp());
    Result<std::unique_ptr<HostKernel>> kernel = openHostKernel();
    ASSERT_TRUE(kernel.ok()) << kernel.error().message;
    HostKernel* k = kernel->get();
    EnforceConfig config;
    config.mode = EnforceMode::Nftables;
    config.limit = LimitMode::Police;
    config.interface = "lo";
    Result<std::unique_ptr<HostEnforcer>> enforcer =
        HostEnforcer::start(config, std::move(*kernel));
    ASSERT_TRUE(enforcer.ok()) << enforcer.error().message;
    HostEnforcer& e = **enforcer;
    EXPECT_TRUE(e.hasTree()) << e.summary();
    Result<RootQdisc> root = k->rootQdisc("lo");
    ASSERT_TRUE(root.ok());
    EXPECT_EQ(root->kind, "htb");
    EXPECT_EQ(root->handle, HostEnforcer::kHtbRoot);

    // IPv4, any source port; IPv6 with both ports, and IPv6 with none (the
    // exact one is found first).
    ASSERT_TRUE(e.apply(grant(1, "127.0.0.1", "127.0.0.1", 0, 41001, 34)).ok());
    ASSERT_TRUE(e.apply(grant(2, "::1", "::1", 42000, 41002, 46)).ok());
    ASSERT_TRUE(e.apply(grant(3, "::1", "::1", 0, 0, 10)).ok());
    Receiver v4(AF_INET, "127.0.0.1", 41001);
    Receiver v6(AF_INET6, "::1", 41002);
    Receiver other(AF_INET, "127.0.0.1", 41009);
    ASSERT_TRUE(v4.bound() && v6.bound() && other.bound());
    ASSERT_TRUE(sendFrom(AF_INET, "127.0.0.1", 43000, "127.0.0.1", 41001));
    EXPECT_EQ(v4.nextDscp(), 34) << "IPv4, any source port";
    ASSERT_TRUE(sendFrom(AF_INET6, "::1", 42000, "::1", 41002));
    EXPECT_EQ(v6.nextDscp(), 46) << "IPv6, both ports: the exact grant, not the port-less one";
    ASSERT_TRUE(sendFrom(AF_INET6, "::1", 42001, "::1", 41002));
    EXPECT_EQ(v6.nextDscp(), 10) << "IPv6, another source port: the port-less grant";
    ASSERT_TRUE(sendFrom(AF_INET, "127.0.0.1", 43000, "127.0.0.1", 41009));
    EXPECT_EQ(other.nextDscp(), 0) << "a flow no grant names is left alone";

    e.remove(1);
    ASSERT_TRUE(sendFrom(AF_INET, "127.0.0.1", 43000, "127.0.0.1", 41001));
    EXPECT_EQ(v4.nextDscp(), 0) << "a removed grant marks no more";

    enforcer->reset();  // and with it the kernel handle k
    Result<std::unique_ptr<HostKernel>> after = openHostKernel();
    ASSERT_TRUE(after.ok());
    Result<RootQdisc> back = (*after)->rootQdisc("lo");
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->handle, 0u) << "the kernel's default qdisc is back";
    EXPECT_FALSE((*after)->runNft("list table inet qos_agent").ok()) << "the table is gone";
  });
  in_namespace.join();
  if (skipped) {
    GTEST_SKIP() << "cannot unshare a network namespace (needs root)";
  }
}

}  // namespace
}  // namespace qos::agent
