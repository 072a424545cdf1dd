// udp_flows: UDP datagrams from one address to N destination ports in turn,
// at a fixed packet rate, for enforce_bench.sh: the traffic of N flows a
// host enforces.  Prints what it sent and the CPU it used.
//
//   udp_flows SRC DST FIRST_PORT N_FLOWS PPS SECONDS [BYTES]
//
// Paced by the steady clock in bursts of up to 32 datagrams (sendmmsg), so
// the rate holds without a sleep per packet.  A datagram the kernel refuses
// (a full queue, ENOBUFS) is counted, not retried.
#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

constexpr unsigned kBurst = 32;

int usage() {
  std::fprintf(stderr, "usage: udp_flows SRC DST FIRST_PORT N_FLOWS PPS SECONDS [BYTES]\n");
  return 2;
}

double cpuSeconds(const timeval& t) {
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 7 || argc > 8) {
    return usage();
  }
  sockaddr_in src{};
  sockaddr_in dst{};
  src.sin_family = dst.sin_family = AF_INET;
  if (inet_pton(AF_INET, argv[1], &src.sin_addr) != 1 ||
      inet_pton(AF_INET, argv[2], &dst.sin_addr) != 1) {
    return usage();
  }
  const auto first_port = static_cast<unsigned>(std::strtoul(argv[3], nullptr, 10));
  const auto n_flows = static_cast<unsigned>(std::strtoul(argv[4], nullptr, 10));
  const double pps = std::strtod(argv[5], nullptr);
  const double seconds = std::strtod(argv[6], nullptr);
  const size_t bytes = argc == 8 ? std::strtoul(argv[7], nullptr, 10) : 172;
  if (n_flows == 0 || first_port + n_flows > 65536 || pps <= 0 || seconds <= 0 || bytes > 1472) {
    return usage();
  }
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0 || bind(fd, reinterpret_cast<const sockaddr*>(&src), sizeof src) != 0) {
    std::fprintf(stderr, "udp_flows: socket/bind: %s\n", std::strerror(errno));
    return 1;
  }
  std::vector<char> payload(bytes, 'q');
  std::vector<sockaddr_in> to(n_flows, dst);
  for (unsigned i = 0; i < n_flows; ++i) {
    to[i].sin_port = htons(static_cast<uint16_t>(first_port + i));
  }
  std::array<mmsghdr, kBurst> msgs{};
  std::array<iovec, kBurst> iov{};
  for (unsigned i = 0; i < kBurst; ++i) {
    iov[i] = {payload.data(), payload.size()};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_in);
  }

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  uint64_t sent = 0;
  uint64_t refused = 0;
  unsigned next = 0;
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  for (auto now = start; now < end; now = Clock::now()) {
    const double due = std::chrono::duration<double>(now - start).count() * pps;
    const uint64_t owed =
        due > static_cast<double>(sent + refused) ? static_cast<uint64_t>(due) - sent - refused : 0;
    if (owed == 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      continue;
    }
    const unsigned n = static_cast<unsigned>(std::min<uint64_t>(owed, kBurst));
    for (unsigned i = 0; i < n; ++i) {
      msgs[i].msg_hdr.msg_name = &to[next];
      next = next + 1 == n_flows ? 0 : next + 1;
    }
    const int done = sendmmsg(fd, msgs.data(), n, 0);
    if (done < 0) {
      ++refused;  // the first of the burst; the rest go again
      continue;
    }
    sent += static_cast<uint64_t>(done);
    refused += done < static_cast<int>(n) ? 1 : 0;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  std::printf("sent %lu refused %lu seconds %.3f pps %.0f user_s %.3f sys_s %.3f\n",
              static_cast<unsigned long>(sent), static_cast<unsigned long>(refused), elapsed,
              static_cast<double>(sent) / elapsed,
              cpuSeconds(after.ru_utime) - cpuSeconds(before.ru_utime),
              cpuSeconds(after.ru_stime) - cpuSeconds(before.ru_stime));
  close(fd);
  return 0;
}
