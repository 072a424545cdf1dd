// qosbench-gen: the benchmark's inputs, written fast enough for a million flows.
//
//   qosbench-gen pcap   --flows N --frame-bytes B [--packets P] --out FILE
//   qosbench-gen config --flows N --mbufs M [--max-flows F] [--cir RATE] --out FILE
//   qosbench-gen tsc-hz [--ms T]
//
// `pcap` writes P frames (default N) of exactly B captured bytes (no FCS),
// flow i = packet index modulo N, so every flow appears once per N packets.
// `config` writes the qosgate config that admits the same N flows, each with
// its own srTCM meter.  `tsc-hz` measures the TSC against CLOCK_MONOTONIC_RAW.
//
// Flow i (0 <= i < 2^24) is the UDP 5-tuple
//
//   src 198.18.(i>>8 & 255).(i & 255)   sport 1024 + (i >> 16)
//   dst 198.19.0.(i & 255)              dport 5004
//
// (RFC 2544's benchmark range).  The low byte of the destination address
// varies with i because DPDK's qos_meter example picks its meter (one of 256)
// from that byte.  The destination MAC ends in 0x00 because qos_meter reads
// frame byte 5 as the packet's input color and indexes a 3-row table with it.
#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

namespace qos::bench {
namespace {

constexpr uint32_t kMaxFlows = 1u << 24;
constexpr size_t kEthernetHeaderBytes = 14;
constexpr size_t kIpv4HeaderBytes = 20;
constexpr size_t kUdpHeaderBytes = 8;
constexpr size_t kMinFrameBytes = 60;    // Ethernet minimum without FCS
constexpr size_t kMaxFrameBytes = 1514;  // Ethernet maximum without FCS
constexpr uint16_t kDstPort = 5004;
constexpr uint16_t kFirstSrcPort = 1024;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kTtl = 64;
constexpr size_t kWriteBufferBytes = 8u << 20;

struct FlowTuple {
  std::array<uint8_t, 4> src_addr;
  std::array<uint8_t, 4> dst_addr;
  uint16_t src_port;
  uint16_t dst_port;
};

FlowTuple flowTuple(uint32_t i) {
  FlowTuple t{};
  t.src_addr = {198, 18, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
  t.dst_addr = {198, 19, 0, static_cast<uint8_t>(i)};
  t.src_port = static_cast<uint16_t>(kFirstSrcPort + (i >> 16));
  t.dst_port = kDstPort;
  return t;
}

std::string dotted(const std::array<uint8_t, 4>& a) {
  return std::to_string(a[0]) + "." + std::to_string(a[1]) + "." + std::to_string(a[2]) + "." +
         std::to_string(a[3]);
}

void storeBe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

uint32_t sumBe16(const uint8_t* p, size_t n_bytes) {
  uint32_t sum = 0;
  size_t i = 0;
  for (; i + 1 < n_bytes; i += 2) {
    sum += static_cast<uint32_t>((p[i] << 8) | p[i + 1]);
  }
  if (i < n_bytes) {
    sum += static_cast<uint32_t>(p[i] << 8);
  }
  return sum;
}

uint16_t foldComplement(uint32_t sum) {
  while ((sum >> 16) != 0) {
    sum = (sum & 0xFFFF) + (sum >> 16);
  }
  return static_cast<uint16_t>(~sum);
}

/** Fills @p frame (frame.size() bytes) with flow @p i's UDP packet, checksums included. */
void buildFrame(uint32_t i, uint32_t packet_index, std::vector<uint8_t>& frame) {
  static constexpr std::array<uint8_t, 6> kDstMac = {0x02, 0, 0, 0, 0x02, 0x00};
  static constexpr std::array<uint8_t, 6> kSrcMac = {0x02, 0, 0, 0, 0x01, 0x00};
  const FlowTuple t = flowTuple(i);
  uint8_t* eth = frame.data();
  std::memcpy(eth, kDstMac.data(), 6);
  std::memcpy(eth + 6, kSrcMac.data(), 6);
  storeBe16(eth + 12, 0x0800);

  const size_t ip_bytes = frame.size() - kEthernetHeaderBytes;
  const size_t udp_bytes = ip_bytes - kIpv4HeaderBytes;
  uint8_t* ip = eth + kEthernetHeaderBytes;
  ip[0] = 0x45;  // version 4, 20-byte header
  ip[1] = 0;     // DSCP 0 (best effort): qosgate re-marks admitted flows
  storeBe16(ip + 2, static_cast<uint16_t>(ip_bytes));
  storeBe16(ip + 4, static_cast<uint16_t>(packet_index));
  storeBe16(ip + 6, 0x4000);  // don't fragment
  ip[8] = kTtl;
  ip[9] = kProtoUdp;
  storeBe16(ip + 10, 0);
  std::memcpy(ip + 12, t.src_addr.data(), 4);
  std::memcpy(ip + 16, t.dst_addr.data(), 4);
  storeBe16(ip + 10, foldComplement(sumBe16(ip, kIpv4HeaderBytes)));

  uint8_t* udp = ip + kIpv4HeaderBytes;
  storeBe16(udp, t.src_port);
  storeBe16(udp + 2, t.dst_port);
  storeBe16(udp + 4, static_cast<uint16_t>(udp_bytes));
  storeBe16(udp + 6, 0);
  for (size_t k = kUdpHeaderBytes; k < udp_bytes; ++k) {
    udp[k] = static_cast<uint8_t>(k);
  }
  // Pseudo-header: addresses, protocol, UDP length.
  uint32_t sum = sumBe16(ip + 12, 8) + kProtoUdp + static_cast<uint32_t>(udp_bytes);
  sum += sumBe16(udp, udp_bytes);
  uint16_t checksum = foldComplement(sum);
  storeBe16(udp + 6, checksum == 0 ? 0xFFFF : checksum);  // 0 would mean "no checksum"
}

class Writer {
public:
  explicit Writer(const std::string& path) : path_(path), file_(std::fopen(path.c_str(), "wb")) {
    buffer_.reserve(kWriteBufferBytes);
  }
  ~Writer() {
    if (file_ != nullptr) {
      std::fclose(file_);
    }
  }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  bool isOpen() const { return file_ != nullptr; }
  void put(const void* data, size_t n_bytes) {
    const auto* p = static_cast<const uint8_t*>(data);
    buffer_.insert(buffer_.end(), p, p + n_bytes);
    if (buffer_.size() >= kWriteBufferBytes) {
      flush();
    }
  }
  void put(std::string_view text) { put(text.data(), text.size()); }
  /** @return false (with a message on stderr) if anything failed to reach the file. */
  bool close() {
    flush();
    const bool ok = ok_ && std::fclose(file_) == 0;
    file_ = nullptr;
    if (!ok) {
      std::fprintf(stderr, "qosbench-gen: cannot write %s: %s\n", path_.c_str(),
                   std::strerror(errno));
    }
    return ok;
  }

private:
  void flush() {
    if (!buffer_.empty() &&
        std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size()) {
      ok_ = false;
    }
    buffer_.clear();
  }

  std::string path_;
  std::FILE* file_;
  std::vector<uint8_t> buffer_;
  bool ok_ = true;
};

template <typename T>
void putLe(Writer& w, T value) {
  std::array<uint8_t, sizeof(T)> bytes;
  for (size_t k = 0; k < sizeof(T); ++k) {
    bytes[k] = static_cast<uint8_t>(static_cast<uint64_t>(value) >> (8 * k));
  }
  w.put(bytes.data(), bytes.size());
}

int writePcap(uint32_t n_flows, uint32_t n_packets, size_t frame_bytes, const std::string& path) {
  Writer w(path);
  if (!w.isOpen()) {
    std::fprintf(stderr, "qosbench-gen: cannot create %s: %s\n", path.c_str(),
                 std::strerror(errno));
    return 1;
  }
  // Classic pcap, microsecond timestamps, little endian, LINKTYPE_ETHERNET.
  putLe<uint32_t>(w, 0xA1B2C3D4);
  putLe<uint16_t>(w, 2);
  putLe<uint16_t>(w, 4);
  putLe<int32_t>(w, 0);
  putLe<uint32_t>(w, 0);
  putLe<uint32_t>(w, 65535);
  putLe<uint32_t>(w, 1);
  std::vector<uint8_t> frame(frame_bytes);
  for (uint32_t p = 0; p < n_packets; ++p) {
    buildFrame(p % n_flows, p, frame);
    putLe<uint32_t>(w, p / 1000000);  // 1 us apart; net_pcap ignores them in infinite_rx
    putLe<uint32_t>(w, p % 1000000);
    putLe<uint32_t>(w, static_cast<uint32_t>(frame_bytes));
    putLe<uint32_t>(w, static_cast<uint32_t>(frame_bytes));
    w.put(frame.data(), frame.size());
  }
  return w.close() ? 0 : 1;
}

int writeConfig(uint32_t n_flows, uint64_t n_mbufs, uint64_t max_flows, const std::string& cir,
                const std::string& path) {
  Writer w(path);
  if (!w.isOpen()) {
    std::fprintf(stderr, "qosbench-gen: cannot create %s: %s\n", path.c_str(),
                 std::strerror(errno));
    return 1;
  }
  w.put("# Generated by qosbench-gen (tools/bench): " + std::to_string(n_flows) +
        " admitted UDP flows, each with its own srTCM meter.\n");
  w.put("# No [eal] section: tools/bench passes the EAL args after \"--\".\n");
  w.put("[[pair]]\ninside = \"net_pcap0\"\noutside = \"net_null0\"\n\n");
  w.put("[policy]\nunmatched = \"remark\"\ndefault_dscp = 0\n\n");
  w.put("[dataplane]\nmax_flows = " + std::to_string(max_flows) + "\n");
  w.put("# net_pcap's infinite_rx holds the whole capture in mbufs of this pool.\n");
  w.put("mbufs = " + std::to_string(n_mbufs) + "\n");
  const std::string meter = "meter = { mode = \"srtcm\", cir = \"" + cir +
                            "\", cbs = \"64kB\", ebs = \"64kB\", yellow = \"pass\", red = "
                            "\"drop\" }\n";
  for (uint32_t i = 0; i < n_flows; ++i) {
    const FlowTuple t = flowTuple(i);
    w.put("\n[[flow]]\nsrc = \"" + dotted(t.src_addr) + "\"\ndst = \"" + dotted(t.dst_addr) +
          "\"\nproto = \"udp\"\nsport = " + std::to_string(t.src_port) +
          "\ndport = " + std::to_string(t.dst_port) + "\ndscp = 46\n");
    w.put(meter);
  }
  return w.close() ? 0 : 1;
}

int measureTscHz(int64_t window_ms) {
#if defined(__x86_64__) || defined(__i386__)
  timespec t0{};
  timespec t1{};
  clock_gettime(CLOCK_MONOTONIC_RAW, &t0);
  const uint64_t c0 = __rdtsc();
  std::this_thread::sleep_for(std::chrono::milliseconds(window_ms));
  clock_gettime(CLOCK_MONOTONIC_RAW, &t1);
  const uint64_t c1 = __rdtsc();
  const double seconds = static_cast<double>(t1.tv_sec - t0.tv_sec) +
                         static_cast<double>(t1.tv_nsec - t0.tv_nsec) / 1e9;
  std::printf("%.0f\n", static_cast<double>(c1 - c0) / seconds);
  return 0;
#else
  (void)window_ms;
  std::fprintf(stderr, "qosbench-gen: tsc-hz needs x86\n");
  return 1;
#endif
}

int usage() {
  std::fprintf(stderr,
               "usage: qosbench-gen pcap   --flows N --frame-bytes B [--packets P] --out FILE\n"
               "       qosbench-gen config --flows N --mbufs M [--max-flows F] [--cir RATE] "
               "--out FILE\n"
               "       qosbench-gen tsc-hz [--ms T]\n");
  return 2;
}

/** "--name value" pairs after the subcommand; false on a stray argument. */
bool parseOptions(int argc, char** argv, std::map<std::string, std::string>& options) {
  for (int i = 2; i < argc; i += 2) {
    const std::string_view name(argv[i]);
    if (!name.starts_with("--") || i + 1 >= argc) {
      return false;
    }
    options[std::string(name.substr(2))] = argv[i + 1];
  }
  return true;
}

bool number(const std::map<std::string, std::string>& options, const std::string& name,
            uint64_t min, uint64_t max, uint64_t& out) {
  const auto it = options.find(name);
  if (it == options.end()) {
    return false;
  }
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(it->second.c_str(), &end, 10);
  if (errno != 0 || end == it->second.c_str() || *end != '\0' || v < min || v > max) {
    std::fprintf(stderr, "qosbench-gen: --%s must be %llu..%llu\n", name.c_str(),
                 static_cast<unsigned long long>(min), static_cast<unsigned long long>(max));
    return false;
  }
  out = v;
  return true;
}

int run(int argc, char** argv) {
  if (argc < 2) {
    return usage();
  }
  const std::string_view command(argv[1]);
  std::map<std::string, std::string> options;
  if (!parseOptions(argc, argv, options)) {
    return usage();
  }
  if (command == "tsc-hz") {
    uint64_t window_ms = 500;
    if (options.count("ms") != 0 && !number(options, "ms", 10, 10000, window_ms)) {
      return usage();
    }
    return measureTscHz(static_cast<int64_t>(window_ms));
  }
  uint64_t n_flows = 0;
  if (!number(options, "flows", 1, kMaxFlows, n_flows) || options.count("out") == 0) {
    return usage();
  }
  const std::string& out = options["out"];
  if (command == "pcap") {
    uint64_t frame_bytes = 0;
    uint64_t n_packets = n_flows;
    if (!number(options, "frame-bytes", kMinFrameBytes, kMaxFrameBytes, frame_bytes)) {
      return usage();
    }
    if (options.count("packets") != 0 && !number(options, "packets", 1, kMaxFlows, n_packets)) {
      return usage();
    }
    return writePcap(static_cast<uint32_t>(n_flows), static_cast<uint32_t>(n_packets),
                     static_cast<size_t>(frame_bytes), out);
  }
  if (command == "config") {
    uint64_t n_mbufs = 0;
    uint64_t max_flows = 1u << 20;
    if (!number(options, "mbufs", 1023, 1u << 24, n_mbufs)) {
      return usage();
    }
    if (options.count("max-flows") != 0 &&
        !number(options, "max-flows", n_flows, 1u << 26, max_flows)) {
      return usage();
    }
    const std::string cir = options.count("cir") != 0 ? options["cir"] : "100gbit";
    return writeConfig(static_cast<uint32_t>(n_flows), n_mbufs, std::max(max_flows, n_flows), cir,
                       out);
  }
  return usage();
}

}  // namespace
}  // namespace qos::bench

int main(int argc, char** argv) { return qos::bench::run(argc, argv); }
