// Builds Ethernet frames for tests: IPv4/IPv6 with UDP or TCP, optional
// VLAN tags, any TOS, valid IPv4 header checksums.  Plain bytes; the DPDK
// harness copies them into mbufs.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <arpa/inet.h>

namespace qos::test {

struct FrameSpec {
  std::string src = "198.18.1.10";
  std::string dst = "198.19.1.20";
  uint8_t protocol = 17;  ///< 17 udp, 6 tcp, 1 icmp
  uint16_t src_port = 40000;
  uint16_t dst_port = 5004;
  uint8_t tos = 0;              ///< DSCP << 2 | ECN
  uint16_t payload_bytes = 18;  ///< L4 payload
  std::vector<uint16_t> vlans;  ///< outermost first
};

inline uint16_t checksum16(const uint8_t* data, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) {
    sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  }
  if (len % 2 != 0) {
    sum += static_cast<uint32_t>(data[len - 1] << 8);
  }
  while (sum >> 16 != 0) {
    sum = (sum & 0xFFFF) + (sum >> 16);
  }
  return static_cast<uint16_t>(~sum);
}

inline void put16(std::vector<uint8_t>& f, uint16_t v) {
  f.push_back(static_cast<uint8_t>(v >> 8));
  f.push_back(static_cast<uint8_t>(v));
}

/** An Ethernet frame for @p spec; IPv6 if the addresses contain ':'. */
inline std::vector<uint8_t> buildFrame(const FrameSpec& spec) {
  const bool v6 = spec.src.find(':') != std::string::npos;
  std::vector<uint8_t> f = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01};
  for (size_t i = 0; i < spec.vlans.size(); ++i) {
    put16(f, i == 0 && spec.vlans.size() > 1 ? 0x88a8 : 0x8100);
    put16(f, spec.vlans[i]);
  }
  put16(f, v6 ? 0x86DD : 0x0800);
  const size_t l4_header = spec.protocol == 6 ? 20 : 8;
  const size_t l4_len = l4_header + spec.payload_bytes;
  const size_t ip_start = f.size();
  if (v6) {
    f.push_back(static_cast<uint8_t>(0x60 | (spec.tos >> 4)));
    f.push_back(static_cast<uint8_t>((spec.tos & 0x0F) << 4));
    put16(f, 0);
    put16(f, static_cast<uint16_t>(l4_len));
    f.push_back(spec.protocol);
    f.push_back(64);
    std::array<uint8_t, 16> a{};
    inet_pton(AF_INET6, spec.src.c_str(), a.data());
    f.insert(f.end(), a.begin(), a.end());
    inet_pton(AF_INET6, spec.dst.c_str(), a.data());
    f.insert(f.end(), a.begin(), a.end());
  } else {
    f.push_back(0x45);
    f.push_back(spec.tos);
    put16(f, static_cast<uint16_t>(20 + l4_len));
    put16(f, 0x1234);
    put16(f, 0x4000);
    f.push_back(64);
    f.push_back(spec.protocol);
    put16(f, 0);
    std::array<uint8_t, 4> a{};
    inet_pton(AF_INET, spec.src.c_str(), a.data());
    f.insert(f.end(), a.begin(), a.end());
    inet_pton(AF_INET, spec.dst.c_str(), a.data());
    f.insert(f.end(), a.begin(), a.end());
    const uint16_t sum = checksum16(&f[ip_start], 20);
    f[ip_start + 10] = static_cast<uint8_t>(sum >> 8);
    f[ip_start + 11] = static_cast<uint8_t>(sum);
  }
  put16(f, spec.src_port);
  put16(f, spec.dst_port);
  if (spec.protocol == 6) {
    put16(f, 0);
    put16(f, 0);  // seq
    put16(f, 0);
    put16(f, 0);  // ack
    f.push_back(0x50);
    f.push_back(0x02);
    put16(f, 1024);
    put16(f, 0);
    put16(f, 0);
  } else {
    put16(f, static_cast<uint16_t>(l4_len));
    put16(f, 0);
  }
  f.insert(f.end(), spec.payload_bytes, 0xAB);
  while (f.size() < 60) {
    f.push_back(0);  // Ethernet minimum (without FCS)
  }
  return f;
}

/** An ARP request frame (non-IP). */
inline std::vector<uint8_t> buildArp() {
  std::vector<uint8_t> f = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0,
                            0x01, 0x08, 0x06, 0,    1,    0x08, 0,    6, 4, 0, 1};
  f.resize(60, 0);
  return f;
}

/** Offset of the IP header in a frame built by buildFrame(). */
inline size_t ipOffset(const FrameSpec& spec) { return 14 + 4 * spec.vlans.size(); }

/** The DSCP of the IP header at @p ip_offset. */
inline uint8_t dscpOf(const std::vector<uint8_t>& f, size_t ip_offset) {
  if ((f[ip_offset] >> 4) == 6) {
    return static_cast<uint8_t>(((f[ip_offset] & 0x0F) << 2) | (f[ip_offset + 1] >> 6));
  }
  return static_cast<uint8_t>(f[ip_offset + 1] >> 2);
}

/** The ECN bits of the IP header at @p ip_offset. */
inline uint8_t ecnOf(const std::vector<uint8_t>& f, size_t ip_offset) {
  if ((f[ip_offset] >> 4) == 6) {
    return static_cast<uint8_t>((f[ip_offset + 1] >> 4) & 0x3);
  }
  return static_cast<uint8_t>(f[ip_offset + 1] & 0x3);
}

}  // namespace qos::test
