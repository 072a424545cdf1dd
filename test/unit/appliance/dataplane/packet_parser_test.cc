#include "appliance/dataplane/packet_parser.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "appliance/dataplane/dscp_marking.h"

namespace qos::appliance {
namespace {

// Frame builders.  Each returns the bytes of one header (plus what follows it
// when given), so a test reads as the stack it sends:
//   ethernet(kIpv4) + ipv4(kUdp, udp(1000, 53, 10))
using Bytes = std::vector<uint8_t>;

constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeIpv6 = 0x86DD;
constexpr uint16_t kEtherTypeArp = 0x0806;
constexpr uint16_t kEtherTypeLldp = 0x88CC;
constexpr uint16_t kTpid8021Q = 0x8100;
constexpr uint16_t kTpid8021Ad = 0x88A8;
constexpr uint16_t kTpidQinQLegacy = 0x9100;

constexpr uint8_t kProtoHopByHop = 0;
constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoRouting = 43;
constexpr uint8_t kProtoFragment = 44;
constexpr uint8_t kProtoGre = 47;
constexpr uint8_t kProtoEsp = 50;
constexpr uint8_t kProtoAh = 51;
constexpr uint8_t kProtoIcmpv6 = 58;
constexpr uint8_t kProtoNoNextHeader = 59;
constexpr uint8_t kProtoDestinationOptions = 60;
constexpr uint8_t kProtoSctp = 132;
constexpr uint8_t kProtoMobility = 135;
constexpr uint8_t kProtoHip = 139;
constexpr uint8_t kProtoShim6 = 140;

constexpr std::array<uint8_t, 4> kSrc4 = {192, 0, 2, 1};
constexpr std::array<uint8_t, 4> kDst4 = {198, 51, 100, 7};
constexpr std::array<uint8_t, 16> kSrc6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                           0,    0,    0,    0,    0, 0, 0, 1};
constexpr std::array<uint8_t, 16> kDst6 = {0x20, 0x01, 0x0d, 0xb8, 0xff, 0, 0,    0,
                                           0,    0,    0,    0,    0,    0, 0x12, 0x34};

void put16(Bytes& bytes, uint16_t value) {
  bytes.push_back(static_cast<uint8_t>(value >> 8));
  bytes.push_back(static_cast<uint8_t>(value));
}

Bytes operator+(Bytes head, const Bytes& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

/** Destination and source MAC, then one (TPID, TCI) pair per tag, then the EtherType. */
Bytes ethernet(uint16_t ether_type, const std::vector<uint16_t>& tpids = {}) {
  Bytes bytes = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01};
  uint16_t vlan_id = 100;
  for (uint16_t tpid : tpids) {
    put16(bytes, tpid);
    put16(bytes, vlan_id++);
  }
  put16(bytes, ether_type);
  return bytes;
}

struct Ipv4Fields {
  uint8_t tos = 0;
  uint8_t ihl = 5;        // header length in 32-bit words; options are NOPs
  uint16_t fragment = 0;  // flags and fragment offset, as on the wire
  uint8_t version = 4;
};

void writeIpv4Checksum(uint8_t* header, size_t header_bytes) {
  header[10] = 0;
  header[11] = 0;
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < header_bytes; i += 2) {
    sum += static_cast<uint32_t>((header[i] << 8) | header[i + 1]);
  }
  while ((sum >> 16) != 0) {
    sum = (sum & 0xFFFF) + (sum >> 16);
  }
  header[10] = static_cast<uint8_t>(~sum >> 8);
  header[11] = static_cast<uint8_t>(~sum);
}

Bytes ipv4(uint8_t protocol, const Bytes& payload, const Ipv4Fields& fields = {}) {
  const size_t header_bytes = size_t{fields.ihl} * 4;
  Bytes bytes;
  bytes.push_back(static_cast<uint8_t>((fields.version << 4) | fields.ihl));
  bytes.push_back(fields.tos);
  put16(bytes, static_cast<uint16_t>(header_bytes + payload.size()));
  put16(bytes, 0x1234);  // identification
  put16(bytes, fields.fragment);
  bytes.push_back(64);  // TTL
  bytes.push_back(protocol);
  put16(bytes, 0);  // checksum, written below
  bytes.insert(bytes.end(), kSrc4.begin(), kSrc4.end());
  bytes.insert(bytes.end(), kDst4.begin(), kDst4.end());
  bytes.resize(std::max<size_t>(header_bytes, 20), 1);  // NOP options
  writeIpv4Checksum(bytes.data(), bytes.size());
  return bytes + payload;
}

Bytes ipv6(uint8_t next_header, const Bytes& payload, uint8_t traffic_class = 0,
           uint32_t flow_label = 0x12345) {
  Bytes bytes;
  bytes.push_back(static_cast<uint8_t>(0x60 | (traffic_class >> 4)));
  bytes.push_back(static_cast<uint8_t>((traffic_class << 4) | ((flow_label >> 16) & 0x0F)));
  put16(bytes, static_cast<uint16_t>(flow_label));
  put16(bytes, static_cast<uint16_t>(payload.size()));
  bytes.push_back(next_header);
  bytes.push_back(64);  // hop limit
  bytes.insert(bytes.end(), kSrc6.begin(), kSrc6.end());
  bytes.insert(bytes.end(), kDst6.begin(), kDst6.end());
  return bytes + payload;
}

/** A generic extension header (hop-by-hop, routing, ...) of (len_units + 1) * 8 bytes. */
Bytes extension(uint8_t next_header, const Bytes& rest, uint8_t len_units = 0) {
  Bytes bytes = {next_header, len_units};
  bytes.resize((size_t{len_units} + 1) * 8, 0);
  return bytes + rest;
}

/** An IPv6 fragment header; offset in 8-byte units. */
Bytes fragment6(uint8_t next_header, const Bytes& rest, uint16_t offset_units, bool more) {
  Bytes bytes = {next_header, 0};
  put16(bytes, static_cast<uint16_t>((offset_units << 3) | (more ? 1 : 0)));
  put16(bytes, 0xabcd);  // identification
  put16(bytes, 0x0001);
  return bytes + rest;
}

/** An authentication header of (payload_len + 2) * 4 bytes. */
Bytes ah(uint8_t next_header, const Bytes& rest, uint8_t payload_len = 4) {
  Bytes bytes = {next_header, payload_len};
  bytes.resize((size_t{payload_len} + 2) * 4, 0x5a);
  return bytes + rest;
}

Bytes udp(uint16_t src_port, uint16_t dst_port, size_t payload_bytes = 0) {
  Bytes bytes;
  put16(bytes, src_port);
  put16(bytes, dst_port);
  put16(bytes, static_cast<uint16_t>(8 + payload_bytes));
  put16(bytes, 0);
  bytes.resize(8 + payload_bytes, 0xee);
  return bytes;
}

Bytes tcp(uint16_t src_port, uint16_t dst_port, uint8_t data_offset_words = 5,
          size_t payload_bytes = 0) {
  Bytes bytes;
  put16(bytes, src_port);
  put16(bytes, dst_port);
  put16(bytes, 0x0102);  // sequence number
  put16(bytes, 0x0304);
  put16(bytes, 0);  // acknowledgement number
  put16(bytes, 0);
  bytes.push_back(static_cast<uint8_t>(data_offset_words << 4));
  bytes.push_back(0x02);                                                 // SYN
  put16(bytes, 65535);                                                   // window
  put16(bytes, 0);                                                       // checksum
  put16(bytes, 0);                                                       // urgent pointer
  bytes.resize(std::max<size_t>(size_t{data_offset_words} * 4, 20), 1);  // NOP options
  bytes.resize(bytes.size() + payload_bytes, 0xdd);
  return bytes;
}

Bytes sctp(uint16_t src_port, uint16_t dst_port) {
  Bytes bytes;
  put16(bytes, src_port);
  put16(bytes, dst_port);
  bytes.resize(12, 0x11);            // verification tag, checksum
  return bytes + Bytes{1, 0, 0, 4};  // an INIT chunk header
}

Bytes icmp(uint8_t type) { return Bytes{type, 0, 0x12, 0x34, 0, 1, 0, 1}; }

FlowKey key4(uint8_t protocol, uint16_t src_port = 0, uint16_t dst_port = 0) {
  FlowKey key;
  std::copy(kSrc4.begin(), kSrc4.end(), key.src_addr.begin());
  std::copy(kDst4.begin(), kDst4.end(), key.dst_addr.begin());
  key.src_port = src_port;
  key.dst_port = dst_port;
  key.protocol = protocol;
  key.family = IpFamily::V4;
  return key;
}

FlowKey key6(uint8_t protocol, uint16_t src_port = 0, uint16_t dst_port = 0) {
  FlowKey key;
  key.src_addr = kSrc6;
  key.dst_addr = kDst6;
  key.src_port = src_port;
  key.dst_port = dst_port;
  key.protocol = protocol;
  key.family = IpFamily::V6;
  return key;
}

/**
 * Parses a copy of @p frame held in a heap buffer of exactly its size, so
 * AddressSanitizer reports any read past the end (a std::vector may have
 * spare capacity that hides one).
 */
ParseStatus parseExact(const Bytes& frame, ParsedPacket& out) {
  auto buffer = std::make_unique<uint8_t[]>(frame.size());
  std::copy(frame.begin(), frame.end(), buffer.get());
  return parsePacket(std::span<const uint8_t>(buffer.get(), frame.size()), out);
}

ParsedPacket parseOk(const Bytes& frame) {
  ParsedPacket out;
  EXPECT_EQ(parseExact(frame, out), ParseStatus::Ip);
  EXPECT_EQ(out.malformed, MalformedReason::None);
  return out;
}

MalformedReason parseMalformed(const Bytes& frame) {
  ParsedPacket out;
  EXPECT_EQ(parseExact(frame, out), ParseStatus::Malformed);
  return out.malformed;
}

std::string keyToString(const FlowKey& key) {
  std::string text;
  const auto* bytes = reinterpret_cast<const uint8_t*>(&key);
  for (size_t i = 0; i < sizeof(FlowKey); ++i) {
    static constexpr char kHex[] = "0123456789abcdef";
    text += kHex[bytes[i] >> 4];
    text += kHex[bytes[i] & 0xF];
  }
  return text;
}

#define EXPECT_KEY_EQ(actual, expected) EXPECT_EQ(keyToString(actual), keyToString(expected))

// Well-formed frames.

TEST(PacketParserTest, Ipv4Udp) {
  const ParsedPacket p = parseOk(ethernet(kEtherTypeIpv4) + ipv4(kProtoUdp, udp(5000, 53, 12)));
  EXPECT_KEY_EQ(p.key, key4(kProtoUdp, 5000, 53));
  EXPECT_EQ(p.l3_offset, 14);
  EXPECT_EQ(p.l3_length, 20 + 8 + 12);
  EXPECT_EQ(p.dscp, 0);
  EXPECT_EQ(p.n_vlan_tags, 0);
  EXPECT_TRUE(p.has_ports);
  EXPECT_FALSE(p.is_fragment);
}

TEST(PacketParserTest, Ipv4TcpWithTcpAndIpOptions) {
  const ParsedPacket p = parseOk(ethernet(kEtherTypeIpv4) +
                                 ipv4(kProtoTcp, tcp(40000, 443, 8, 5), {.tos = 0x28, .ihl = 7}));
  EXPECT_KEY_EQ(p.key, key4(kProtoTcp, 40000, 443));
  EXPECT_EQ(p.l3_offset, 14);
  EXPECT_EQ(p.l3_length, 28 + 32 + 5);
  EXPECT_EQ(p.dscp, 10);  // AF11
  EXPECT_TRUE(p.has_ports);
  EXPECT_FALSE(p.is_fragment);
}

TEST(PacketParserTest, Ipv4TcpLongestHeader) {
  const ParsedPacket p =
      parseOk(ethernet(kEtherTypeIpv4) + ipv4(kProtoTcp, tcp(1, 2, 15), {.ihl = 15}));
  EXPECT_KEY_EQ(p.key, key4(kProtoTcp, 1, 2));
  EXPECT_EQ(p.l3_length, 60 + 60);
}

TEST(PacketParserTest, Ipv4Sctp) {
  const ParsedPacket p = parseOk(ethernet(kEtherTypeIpv4) + ipv4(kProtoSctp, sctp(2905, 2906)));
  EXPECT_KEY_EQ(p.key, key4(kProtoSctp, 2905, 2906));
  EXPECT_TRUE(p.has_ports);
}

TEST(PacketParserTest, Ipv4IcmpHasNoPorts) {
  const ParsedPacket p =
      parseOk(ethernet(kEtherTypeIpv4) + ipv4(kProtoIcmp, icmp(8), {.tos = 0xc0}));
  EXPECT_KEY_EQ(p.key, key4(kProtoIcmp));
  EXPECT_EQ(p.dscp, 48);  // CS6
  EXPECT_FALSE(p.has_ports);
  EXPECT_FALSE(p.is_fragment);
}

TEST(PacketParserTest, Ipv4UnknownProtocolHasNoPorts) {
  // GRE with only two bytes of payload: nothing is parsed past the IP header.
  const ParsedPacket p = parseOk(ethernet(kEtherTypeIpv4) + ipv4(kProtoGre, Bytes{0, 0}));
  EXPECT_KEY_EQ(p.key, key4(kProtoGre));
  EXPECT_FALSE(p.has_ports);
  EXPECT_EQ(p.l3_length, 22);
}

TEST(PacketParserTest, Ipv4DscpIgnoresEcn) {
  const ParsedPacket p =
      parseOk(ethernet(kEtherTypeIpv4) + ipv4(kProtoUdp, udp(1, 2), {.tos = 0xbb}));
  EXPECT_EQ(p.dscp, 46);  // EF, with ECN CE
}

TEST(PacketParserTest, Ipv4FirstFragmentHasPorts) {
  const ParsedPacket p = parseOk(ethernet(kEtherTypeIpv4) +
                                 ipv4(kProtoUdp, udp(7000, 8000, 100), {.fragment = 0x2000}));
  EXPECT_KEY_EQ(p.key, key4(kProtoUdp, 7000, 8000));
  EXPECT_TRUE(p.is_fragment);
  EXPECT_TRUE(p.has_ports);
}

TEST(PacketParserTest, Ipv4LaterFragmentHasNoPorts) {
  // Three bytes of payload: too short for a UDP header, which a later fragment does not have.
  const ParsedPacket middle = parseOk(ethernet(kEtherTypeIpv4) +
                                      ipv4(kProtoUdp, Bytes{1, 2, 3}, {.fragment = 0x2000 | 185}));
  EXPECT_KEY_EQ(middle.key, key4(kProtoUdp));
  EXPECT_TRUE(middle.is_fragment);
  EXPECT_FALSE(middle.has_ports);
  EXPECT_EQ(middle.l3_length, 23);

  const ParsedPacket last =
      parseOk(ethernet(kEtherTypeIpv4) + ipv4(kProtoTcp, Bytes{}, {.fragment = 1}));
  EXPECT_KEY_EQ(last.key, key4(kProtoTcp));
  EXPECT_TRUE(last.is_fragment);
  EXPECT_FALSE(last.has_ports);
}

TEST(PacketParserTest, Ipv4DontFragmentIsNotAFragment) {
  const ParsedPacket p =
      parseOk(ethernet(kEtherTypeIpv4) + ipv4(kProtoUdp, udp(1, 2), {.fragment = 0x4000}));
  EXPECT_FALSE(p.is_fragment);
  EXPECT_TRUE(p.has_ports);
}

TEST(PacketParserTest, EthernetPaddingIsIgnored) {
  Bytes frame = ethernet(kEtherTypeIpv4) + ipv4(kProtoUdp, udp(1234, 5678));
  ASSERT_EQ(frame.size(), 14u + 28u);
  // Padding that looks like more UDP payload, or like a TCP header: ignored.
  frame.resize(60, 0x50);
  const ParsedPacket p = parseOk(frame);
  EXPECT_EQ(p.l3_length, 28);
  EXPECT_KEY_EQ(p.key, key4(kProtoUdp, 1234, 5678));
}

TEST(PacketParserTest, L4IsBoundedByIpLengthNotFrameLength) {
  // A UDP header of 8 bytes would fit in the frame, but not in the IP packet.
  Bytes frame = ethernet(kEtherTypeIpv4) + ipv4(kProtoUdp, Bytes{0x12, 0x34, 0x56, 0x78});
  frame.resize(60, 0);
  EXPECT_EQ(parseMalformed(frame), MalformedReason::L4Truncated);

  Bytes frame6 = ethernet(kEtherTypeIpv6) + ipv6(kProtoTcp, Bytes(12, 0x50));
  frame6.resize(200, 0x50);
  EXPECT_EQ(parseMalformed(frame6), MalformedReason::L4Truncated);
}

TEST(PacketParserTest, Ipv6Udp) {
  const ParsedPacket p =
      parseOk(ethernet(kEtherTypeIpv6) + ipv6(kProtoUdp, udp(546, 547, 30), 0xb9));
  EXPECT_KEY_EQ(p.key, key6(kProtoUdp, 546, 547));
  EXPECT_EQ(p.l3_offset, 14);
  EXPECT_EQ(p.l3_length, 40 + 38);
  EXPECT_EQ(p.dscp, 46);  // traffic class 0xb9: EF with ECN 01
  EXPECT_TRUE(p.has_ports);
  EXPECT_FALSE(p.is_fragment);
  EXPECT_EQ(p.n_vlan_tags, 0);
}

TEST(PacketParserTest, Ipv6DscpStraddlesBytes) {
  for (unsigned tc = 0; tc < 256; ++tc) {
    const ParsedPacket p = parseOk(ethernet(kEtherTypeIpv6) +
                                   ipv6(kProtoUdp, udp(1, 2), static_cast<uint8_t>(tc), 0xfffff));
    EXPECT_EQ(p.dscp, tc >> 2) << "traffic class " << tc;
  }
}

TEST(PacketParserTest, Ipv6TcpSctpIcmpv6) {
  ParsedPacket p = parseOk(ethernet(kEtherTypeIpv6) + ipv6(kProtoTcp, tcp(22, 50000, 10)));
  EXPECT_KEY_EQ(p.key, key6(kProtoTcp, 22, 50000));
  EXPECT_TRUE(p.has_ports);

  p = parseOk(ethernet(kEtherTypeIpv6) + ipv6(kProtoSctp, sctp(36412, 36412)));
  EXPECT_KEY_EQ(p.key, key6(kProtoSctp, 36412, 36412));
  EXPECT_TRUE(p.has_ports);

  p = parseOk(ethernet(kEtherTypeIpv6) + ipv6(kProtoIcmpv6, icmp(128)));
  EXPECT_KEY_EQ(p.key, key6(kProtoIcmpv6));
  EXPECT_FALSE(p.has_ports);
}

TEST(PacketParserTest, Ipv6TwoExtensionHeaders) {
  const Bytes frame = ethernet(kEtherTypeIpv6) +
                      ipv6(kProtoHopByHop, extension(kProtoDestinationOptions,
                                                     extension(kProtoTcp, tcp(1000, 80), 1)));
  const ParsedPacket p = parseOk(frame);
  EXPECT_KEY_EQ(p.key, key6(kProtoTcp, 1000, 80));
  EXPECT_EQ(p.l3_length, 40 + 8 + 16 + 20);
  EXPECT_TRUE(p.has_ports);
  EXPECT_FALSE(p.is_fragment);
}

TEST(PacketParserTest, Ipv6EveryExtensionHeaderKind) {
  // Eight headers, the most allowed: one of each kind, built from the inside out.
  Bytes chain = udp(9, 10);
  chain = fragment6(kProtoUdp, chain, 0, false);          // fragment (atomic), 8 bytes
  chain = ah(kProtoFragment, chain, 2);                   // AH, 16 bytes
  chain = extension(kProtoAh, chain, 2);                  // shim6, 24 bytes
  chain = extension(kProtoShim6, chain, 0);               // HIP, 8 bytes
  chain = extension(kProtoHip, chain, 1);                 // mobility, 16 bytes
  chain = extension(kProtoMobility, chain, 0);            // destination options, 8 bytes
  chain = extension(kProtoDestinationOptions, chain, 3);  // routing, 32 bytes
  chain = extension(kProtoRouting, chain, 0);             // hop-by-hop, 8 bytes
  ASSERT_EQ(chain.size(), 8u + 32 + 8 + 16 + 8 + 24 + 16 + 8 + 8);
  const ParsedPacket p = parseOk(ethernet(kEtherTypeIpv6) + ipv6(kProtoHopByHop, chain));
  EXPECT_KEY_EQ(p.key, key6(kProtoUdp, 9, 10));
  EXPECT_TRUE(p.has_ports);
  EXPECT_FALSE(p.is_fragment);  // an atomic fragment (RFC 6946)
  EXPECT_EQ(p.l3_length, 40 + chain.size());

  // One more header (a destination options between hop-by-hop and routing) is one too many.
  const Bytes after_hop_by_hop(chain.begin() + 8, chain.end());
  const Bytes nine =
      extension(kProtoDestinationOptions, extension(kProtoRouting, after_hop_by_hop));
  EXPECT_EQ(parseMalformed(ethernet(kEtherTypeIpv6) + ipv6(kProtoHopByHop, nine)),
            MalformedReason::Ipv6ExtensionChainTooLong);
}

TEST(PacketParserTest, Ipv6AuthenticationHeaderLengthIsInFourByteUnits) {
  // payload_len 1 -> 12 bytes (a 4-byte multiple that is not an 8-byte one).
  const ParsedPacket p =
      parseOk(ethernet(kEtherTypeIpv6) + ipv6(kProtoAh, ah(kProtoTcp, tcp(3, 4), 1)));
  EXPECT_KEY_EQ(p.key, key6(kProtoTcp, 3, 4));
  EXPECT_EQ(p.l3_length, 40 + 12 + 20);
}

TEST(PacketParserTest, Ipv6Fragments) {
  const ParsedPacket first =
      parseOk(ethernet(kEtherTypeIpv6) +
              ipv6(kProtoRouting,
                   extension(kProtoFragment, fragment6(kProtoUdp, udp(11, 12, 64), 0, true))));
  EXPECT_KEY_EQ(first.key, key6(kProtoUdp, 11, 12));
  EXPECT_TRUE(first.is_fragment);
  EXPECT_TRUE(first.has_ports);

  // A later fragment: what follows is payload, not a UDP header, even if it is too short for one.
  const ParsedPacket later = parseOk(ethernet(kEtherTypeIpv6) +
                                     ipv6(kProtoFragment, fragment6(kProtoUdp, Bytes{1}, 9, true)));
  EXPECT_KEY_EQ(later.key, key6(kProtoUdp));
  EXPECT_TRUE(later.is_fragment);
  EXPECT_FALSE(later.has_ports);

  const ParsedPacket last = parseOk(ethernet(kEtherTypeIpv6) +
                                    ipv6(kProtoFragment, fragment6(kProtoTcp, Bytes{}, 9, false)));
  EXPECT_KEY_EQ(last.key, key6(kProtoTcp));
  EXPECT_TRUE(last.is_fragment);
  EXPECT_FALSE(last.has_ports);
}

TEST(PacketParserTest, Ipv6EspAndNoNextHeaderStopTheWalk) {
  // The bytes after ESP look like a hop-by-hop header that runs past the
  // packet: they must not be parsed.
  ParsedPacket p = parseOk(ethernet(kEtherTypeIpv6) +
                           ipv6(kProtoDestinationOptions, extension(kProtoEsp, Bytes{0, 200})));
  EXPECT_KEY_EQ(p.key, key6(kProtoEsp));
  EXPECT_FALSE(p.has_ports);

  p = parseOk(ethernet(kEtherTypeIpv6) + ipv6(kProtoNoNextHeader, Bytes{0, 200, 3}));
  EXPECT_KEY_EQ(p.key, key6(kProtoNoNextHeader));
  EXPECT_FALSE(p.has_ports);
  EXPECT_EQ(p.l3_length, 43);
}

TEST(PacketParserTest, Ipv4EspHasNoPorts) {
  const ParsedPacket p = parseOk(ethernet(kEtherTypeIpv4) + ipv4(kProtoEsp, Bytes(16, 0x77)));
  EXPECT_KEY_EQ(p.key, key4(kProtoEsp));
  EXPECT_FALSE(p.has_ports);
}

TEST(PacketParserTest, Ipv6PaddingIsIgnored) {
  Bytes frame = ethernet(kEtherTypeIpv6) + ipv6(kProtoUdp, udp(1, 2));
  frame.resize(frame.size() + 7, 0xff);
  const ParsedPacket p = parseOk(frame);
  EXPECT_EQ(p.l3_length, 48);
}

TEST(PacketParserTest, SingleVlanTag) {
  const ParsedPacket p =
      parseOk(ethernet(kEtherTypeIpv4, {kTpid8021Q}) + ipv4(kProtoUdp, udp(10, 20)));
  EXPECT_EQ(p.n_vlan_tags, 1);
  EXPECT_EQ(p.l3_offset, 18);
  EXPECT_KEY_EQ(p.key, key4(kProtoUdp, 10, 20));
}

TEST(PacketParserTest, QinQ) {
  for (uint16_t outer : {kTpid8021Ad, kTpid8021Q, kTpidQinQLegacy}) {
    const ParsedPacket p =
        parseOk(ethernet(kEtherTypeIpv6, {outer, kTpid8021Q}) + ipv6(kProtoTcp, tcp(10, 20)));
    EXPECT_EQ(p.n_vlan_tags, 2) << std::hex << outer;
    EXPECT_EQ(p.l3_offset, 22) << std::hex << outer;
    EXPECT_EQ(p.l3_length, 60) << std::hex << outer;
    EXPECT_KEY_EQ(p.key, key6(kProtoTcp, 10, 20));
  }
  const ParsedPacket p =
      parseOk(ethernet(kEtherTypeIpv4, {kTpid8021Ad, kTpid8021Ad}) + ipv4(kProtoUdp, udp(1, 2)));
  EXPECT_EQ(p.n_vlan_tags, 2);
}

TEST(PacketParserTest, LegacyQinQTpidOnlyAsOuterTag) {
  // 0x9100 is a tag only in the outer position; as an inner EtherType it is
  // simply not IP.
  ParsedPacket p;
  EXPECT_EQ(
      parseExact(
          ethernet(kEtherTypeIpv4, {kTpid8021Q, kTpidQinQLegacy}) + ipv4(kProtoUdp, udp(1, 2)), p),
      ParseStatus::NotIp);
}

TEST(PacketParserTest, NonIpFrames) {
  const Bytes arp_body(28, 0x01);
  for (const Bytes& frame :
       {ethernet(kEtherTypeArp) + arp_body, ethernet(kEtherTypeLldp) + Bytes(40, 0x02),
        ethernet(kEtherTypeArp, {kTpid8021Q}) + arp_body,
        ethernet(kEtherTypeArp, {kTpid8021Ad, kTpid8021Q}) + arp_body,
        ethernet(0x0060) /* an 802.3 length field, no payload */}) {
    ParsedPacket p;
    EXPECT_EQ(parseExact(frame, p), ParseStatus::NotIp);
    EXPECT_EQ(p.malformed, MalformedReason::None);
    EXPECT_KEY_EQ(p.key, FlowKey{});
  }
}

TEST(PacketParserTest, ResetsStaleOutput) {
  ParsedPacket p;
  p.key.src_addr.fill(0xab);
  p.key.dst_addr.fill(0xcd);
  p.key.src_port = 1;
  p.key.dst_port = 2;
  p.key.wildcard_mask = 0xff;
  p.key.reserved = 0xff;
  p.key.family = IpFamily::V6;
  p.dscp = 63;
  p.is_fragment = true;
  p.has_ports = true;
  p.n_vlan_tags = 2;
  p.l3_offset = 99;
  p.l3_length = 99;
  p.malformed = MalformedReason::VlanTooDeep;

  // IPv4 ICMP: no ports, and the upper 12 bytes of each address must be zero again.
  ASSERT_EQ(parseExact(ethernet(kEtherTypeIpv4) + ipv4(kProtoIcmp, icmp(0)), p), ParseStatus::Ip);
  EXPECT_KEY_EQ(p.key, key4(kProtoIcmp));
  EXPECT_EQ(p.dscp, 0);
  EXPECT_FALSE(p.is_fragment);
  EXPECT_FALSE(p.has_ports);
  EXPECT_EQ(p.n_vlan_tags, 0);
  EXPECT_EQ(p.l3_offset, 14);
  EXPECT_EQ(p.l3_length, 28);
  EXPECT_EQ(p.malformed, MalformedReason::None);

  // And a NotIp frame after an IP one leaves a clean default.
  ASSERT_EQ(parseExact(ethernet(kEtherTypeArp) + Bytes(28, 0), p), ParseStatus::NotIp);
  EXPECT_KEY_EQ(p.key, FlowKey{});
  EXPECT_FALSE(p.has_ports);
}

// Malformed frames: one test per reason, and a check that the list covers them all.

struct MalformedCase {
  std::string name;
  Bytes frame;
  MalformedReason expected;
};

Bytes withByte(Bytes frame, size_t index, uint8_t value) {
  frame.at(index) = value;
  return frame;
}

/** Rewrites the IPv4 total length at @p l3_offset, keeping the checksum right. */
Bytes withIpv4TotalLength(Bytes frame, size_t l3_offset, uint16_t total_bytes) {
  frame.at(l3_offset + 2) = static_cast<uint8_t>(total_bytes >> 8);
  frame.at(l3_offset + 3) = static_cast<uint8_t>(total_bytes);
  writeIpv4Checksum(frame.data() + l3_offset, (frame[l3_offset] & 0x0Fu) * size_t{4});
  return frame;
}

Bytes withIpv6PayloadLength(Bytes frame, size_t l3_offset, uint16_t payload_bytes) {
  frame.at(l3_offset + 4) = static_cast<uint8_t>(payload_bytes >> 8);
  frame.at(l3_offset + 5) = static_cast<uint8_t>(payload_bytes);
  return frame;
}

Bytes ipv6ChainOfDestinationOptions(int n_after_hop_by_hop, uint8_t final_protocol,
                                    const Bytes& final_header) {
  Bytes chain = final_header;
  uint8_t next = final_protocol;
  for (int i = 0; i < n_after_hop_by_hop; ++i) {
    chain = extension(next, chain);
    next = kProtoDestinationOptions;
  }
  return ethernet(kEtherTypeIpv6) + ipv6(kProtoHopByHop, extension(next, chain));
}

std::vector<MalformedCase> malformedCases() {
  const Bytes udp4 = ethernet(kEtherTypeIpv4) + ipv4(kProtoUdp, udp(1, 2));
  const Bytes udp6 = ethernet(kEtherTypeIpv6) + ipv6(kProtoUdp, udp(1, 2));
  using R = MalformedReason;
  return {
      {"empty frame", {}, R::EthernetTruncated},
      {"13 bytes", Bytes(13, 0x08), R::EthernetTruncated},
      {"vlan tag cut short", ethernet(kTpid8021Q) + Bytes{0x00, 0x64, 0x08}, R::VlanTruncated},
      {"vlan tag and no ethertype", ethernet(kTpid8021Q), R::VlanTruncated},
      {"inner vlan tag cut short", ethernet(kTpid8021Q, {kTpid8021Ad}) + Bytes{0x00},
       R::VlanTruncated},
      {"three tags",
       ethernet(kEtherTypeIpv4, {kTpid8021Ad, kTpid8021Q, kTpid8021Q}) + ipv4(kProtoUdp, udp(1, 2)),
       R::VlanTooDeep},
      {"three tags, frame ends at the third", ethernet(kTpid8021Q, {kTpid8021Ad, kTpid8021Q}),
       R::VlanTooDeep},
      {"third tag 0x9100", ethernet(kTpidQinQLegacy, {kTpidQinQLegacy, kTpid8021Q}),
       R::VlanTooDeep},
      {"19-byte ipv4 header", ethernet(kEtherTypeIpv4) + Bytes(19, 0x45), R::Ipv4Truncated},
      {"ipv4 version 6", withByte(udp4, 14, 0x65), R::Ipv4BadVersion},
      {"ipv4 version 0", withByte(udp4, 14, 0x05), R::Ipv4BadVersion},
      {"ihl 4", withByte(udp4, 14, 0x44), R::Ipv4BadHeaderLength},
      {"ihl 0", withByte(udp4, 14, 0x40), R::Ipv4BadHeaderLength},
      {"ihl 15 in a 28-byte packet", withByte(udp4, 14, 0x4f), R::Ipv4BadHeaderLength},
      {"total length < ihl*4", withIpv4TotalLength(udp4, 14, 19), R::Ipv4BadTotalLength},
      {"total length 0", withIpv4TotalLength(udp4, 14, 0), R::Ipv4BadTotalLength},
      {"total length past the frame", withIpv4TotalLength(udp4, 14, 29), R::Ipv4BadTotalLength},
      {"total length 65535", withIpv4TotalLength(udp4, 14, 0xffff), R::Ipv4BadTotalLength},
      {"ipv4 protocol 0", ethernet(kEtherTypeIpv4) + ipv4(kProtoHopByHop, udp(1, 2)),
       R::Ipv4ProtocolZero},
      {"39-byte ipv6 header", ethernet(kEtherTypeIpv6) + Bytes(39, 0x60), R::Ipv6Truncated},
      {"ipv6 version 4", withByte(udp6, 14, 0x40), R::Ipv6BadVersion},
      {"ipv6 payload length 0", withIpv6PayloadLength(udp6, 14, 0), R::Ipv6BadPayloadLength},
      {"ipv6 payload past the frame", withIpv6PayloadLength(udp6, 14, 9), R::Ipv6BadPayloadLength},
      {"ipv6 payload 65535", withIpv6PayloadLength(udp6, 14, 0xffff), R::Ipv6BadPayloadLength},
      {"hop-by-hop longer than the payload",
       ethernet(kEtherTypeIpv6) + ipv6(kProtoHopByHop, withByte(extension(kProtoUdp, {}), 1, 1)),
       R::Ipv6ExtensionTruncated},
      {"one byte of extension header", ethernet(kEtherTypeIpv6) + ipv6(kProtoRouting, Bytes{17}),
       R::Ipv6ExtensionTruncated},
      {"fragment header of 7 bytes",
       ethernet(kEtherTypeIpv6) + ipv6(kProtoFragment, Bytes{17, 0, 0, 0, 0, 0, 0}),
       R::Ipv6ExtensionTruncated},
      {"authentication header longer than the payload",
       ethernet(kEtherTypeIpv6) + ipv6(kProtoAh, Bytes{6, 255, 0, 0, 0, 0, 0, 0}),
       R::Ipv6ExtensionTruncated},
      {"nine extension headers", ipv6ChainOfDestinationOptions(8, kProtoUdp, udp(1, 2)),
       R::Ipv6ExtensionChainTooLong},
      {"hop-by-hop after routing",
       ethernet(kEtherTypeIpv6) +
           ipv6(kProtoRouting, extension(kProtoHopByHop, extension(kProtoUdp, udp(1, 2)))),
       R::Ipv6HopByHopNotFirst},
      {"two hop-by-hop headers",
       ethernet(kEtherTypeIpv6) +
           ipv6(kProtoHopByHop, extension(kProtoHopByHop, extension(kProtoUdp, udp(1, 2)))),
       R::Ipv6HopByHopNotFirst},
      {"7-byte udp header", ethernet(kEtherTypeIpv4) + ipv4(kProtoUdp, Bytes(7, 0)),
       R::L4Truncated},
      {"19-byte tcp header", ethernet(kEtherTypeIpv6) + ipv6(kProtoTcp, Bytes(19, 0x50)),
       R::L4Truncated},
      {"11-byte sctp header", ethernet(kEtherTypeIpv4) + ipv4(kProtoSctp, Bytes(11, 0)),
       R::L4Truncated},
      {"3-byte icmp header", ethernet(kEtherTypeIpv4) + ipv4(kProtoIcmp, Bytes{8, 0, 0}),
       R::L4Truncated},
      {"3-byte icmpv6 header", ethernet(kEtherTypeIpv6) + ipv6(kProtoIcmpv6, Bytes{128, 0, 0}),
       R::L4Truncated},
      {"tcp data offset 4", ethernet(kEtherTypeIpv4) + ipv4(kProtoTcp, tcp(1, 2, 4)),
       R::TcpBadHeaderLength},
      {"tcp data offset 0", ethernet(kEtherTypeIpv4) + ipv4(kProtoTcp, tcp(1, 2, 0)),
       R::TcpBadHeaderLength},
      {"tcp data offset 15 in 20 bytes",
       ethernet(kEtherTypeIpv6) + ipv6(kProtoTcp, withByte(tcp(1, 2), 12, 0xf0)),
       R::TcpBadHeaderLength},
  };
}

TEST(PacketParserTest, EveryMalformedReason) {
  std::set<MalformedReason> seen;
  for (const MalformedCase& c : malformedCases()) {
    ParsedPacket p;
    EXPECT_EQ(parseExact(c.frame, p), ParseStatus::Malformed) << c.name;
    EXPECT_EQ(p.malformed, c.expected) << c.name << ": got " << malformedReasonName(p.malformed)
                                       << ", want " << malformedReasonName(c.expected);
    seen.insert(c.expected);
  }
  // The one reason a whole frame cannot have: its headers run past the bytes given.
  const Bytes udp4 = ethernet(kEtherTypeIpv4) + ipv4(kProtoUdp, udp(1, 2, 100));
  ParsedPacket split;
  EXPECT_EQ(parsePacket(std::span<const uint8_t>(udp4.data(), 40), udp4.size(), split),
            ParseStatus::Malformed);
  EXPECT_EQ(split.malformed, MalformedReason::HeadersNotContiguous);
  seen.insert(split.malformed);
  for (int r = 1; r < static_cast<int>(MalformedReason::Count); ++r) {
    EXPECT_TRUE(seen.contains(static_cast<MalformedReason>(r)))
        << "no test for " << malformedReasonName(static_cast<MalformedReason>(r));
  }
}

TEST(PacketParserTest, MalformedReasonNames) {
  std::set<std::string_view> names;
  for (int r = 0; r < static_cast<int>(MalformedReason::Count); ++r) {
    const std::string_view name = malformedReasonName(static_cast<MalformedReason>(r));
    EXPECT_FALSE(name.empty());
    EXPECT_NE(name, "unknown") << r;
    EXPECT_TRUE(std::all_of(name.begin(), name.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    })) << name;
    EXPECT_TRUE(names.insert(name).second) << "duplicate name " << name;
  }
  EXPECT_EQ(malformedReasonName(MalformedReason::None), "none");
  EXPECT_EQ(malformedReasonName(MalformedReason::Ipv4BadHeaderLength), "ipv4_bad_ihl");
  EXPECT_EQ(malformedReasonName(MalformedReason::Ipv6HopByHopNotFirst),
            "ipv6_hop_by_hop_not_first");
  EXPECT_EQ(malformedReasonName(MalformedReason::TcpBadHeaderLength), "tcp_bad_header_length");
  EXPECT_EQ(malformedReasonName(MalformedReason::Count), "unknown");
  EXPECT_EQ(malformedReasonName(static_cast<MalformedReason>(200)), "unknown");
}

TEST(PacketParserTest, Ipv6ExtensionChainLimit) {
  // Hop-by-hop plus seven destination options: eight headers, the most allowed.
  ParsedPacket p = parseOk(ipv6ChainOfDestinationOptions(7, kProtoUdp, udp(5, 6)));
  EXPECT_KEY_EQ(p.key, key6(kProtoUdp, 5, 6));

  // Eight extension headers then ESP: ESP ends the walk and is not counted.
  p = parseOk(ipv6ChainOfDestinationOptions(7, kProtoEsp, Bytes(8, 0)));
  EXPECT_EQ(p.key.protocol, kProtoEsp);

  // Nine, ten and many more: refused, however long the chain.
  for (int n : {8, 9, 40, 200}) {
    EXPECT_EQ(parseMalformed(ipv6ChainOfDestinationOptions(n, kProtoUdp, udp(5, 6))),
              MalformedReason::Ipv6ExtensionChainTooLong)
        << n;
  }
  // A fragment or AH as the ninth header counts too.
  const Bytes eight_then_fragment =
      ipv6ChainOfDestinationOptions(7, kProtoFragment, fragment6(kProtoUdp, udp(5, 6), 0, true));
  EXPECT_EQ(parseMalformed(eight_then_fragment), MalformedReason::Ipv6ExtensionChainTooLong);
  const Bytes eight_then_ah = ipv6ChainOfDestinationOptions(7, kProtoAh, ah(kProtoUdp, udp(5, 6)));
  EXPECT_EQ(parseMalformed(eight_then_ah), MalformedReason::Ipv6ExtensionChainTooLong);
}

// Truncation: cut a valid frame at every length and check the reason for each.

struct TruncationCase {
  std::string name;
  Bytes frame;
  // Ascending (end, reason): lengths below `end` (and above the previous end)
  // give `reason`; lengths from the last end on parse as Ip.
  std::vector<std::pair<size_t, MalformedReason>> bands;
};

MalformedReason expectedForLength(const TruncationCase& c, size_t length) {
  for (const auto& [end, reason] : c.bands) {
    if (length < end) {
      return reason;
    }
  }
  return MalformedReason::None;
}

TEST(PacketParserTest, TruncatedAtEveryLength) {
  using R = MalformedReason;
  Bytes qinq = ethernet(kEtherTypeIpv4, {kTpid8021Ad, kTpid8021Q}) + ipv4(kProtoUdp, udp(1, 2));
  qinq.resize(64, 0);  // Ethernet padding after a 28-byte IP packet
  const std::vector<TruncationCase> cases = {
      {"ipv4/udp",
       ethernet(kEtherTypeIpv4) + ipv4(kProtoUdp, udp(1, 2, 10)),
       {{14, R::EthernetTruncated}, {34, R::Ipv4Truncated}, {52, R::Ipv4BadTotalLength}}},
      {"ipv4 with options/tcp with options",
       ethernet(kEtherTypeIpv4) + ipv4(kProtoTcp, tcp(1, 2, 8, 5), {.ihl = 7}),
       {{14, R::EthernetTruncated},
        {34, R::Ipv4Truncated},
        {42, R::Ipv4BadHeaderLength},
        {79, R::Ipv4BadTotalLength}}},
      {"ipv6/hop-by-hop/destination options/tcp",
       ethernet(kEtherTypeIpv6) +
           ipv6(kProtoHopByHop,
                extension(kProtoDestinationOptions, extension(kProtoTcp, tcp(1, 2, 5, 3), 1))),
       {{14, R::EthernetTruncated}, {54, R::Ipv6Truncated}, {101, R::Ipv6BadPayloadLength}}},
      {"qinq ipv4/udp with padding",
       qinq,
       {{14, R::EthernetTruncated},
        {22, R::VlanTruncated},
        {42, R::Ipv4Truncated},
        {50, R::Ipv4BadTotalLength}}},
  };
  for (const TruncationCase& c : cases) {
    ASSERT_EQ(expectedForLength(c, c.frame.size()), R::None) << c.name;
    for (size_t length = 0; length <= c.frame.size(); ++length) {
      const Bytes cut(c.frame.begin(), c.frame.begin() + static_cast<ptrdiff_t>(length));
      ParsedPacket p;
      const ParseStatus status = parseExact(cut, p);
      const MalformedReason want = expectedForLength(c, length);
      if (want == R::None) {
        EXPECT_EQ(status, ParseStatus::Ip) << c.name << " cut to " << length;
      } else {
        EXPECT_EQ(status, ParseStatus::Malformed) << c.name << " cut to " << length;
        EXPECT_EQ(p.malformed, want)
            << c.name << " cut to " << length << ": got " << malformedReasonName(p.malformed);
      }
    }
  }
}

TEST(PacketParserTest, IpLengthCutInsideL4Ipv4) {
  using R = MalformedReason;
  struct Case {
    std::string name;
    Bytes frame;
    std::vector<std::pair<size_t, MalformedReason>> bands;  // by IP total length
  };
  const std::vector<Case> cases = {
      {"udp",
       ethernet(kEtherTypeIpv4) + ipv4(kProtoUdp, udp(1, 2, 4)),
       {{20, R::Ipv4BadTotalLength}, {28, R::L4Truncated}}},
      {"tcp with options",
       ethernet(kEtherTypeIpv4) + ipv4(kProtoTcp, tcp(1, 2, 8, 2), {.ihl = 6}),
       {{24, R::Ipv4BadTotalLength}, {44, R::L4Truncated}, {56, R::TcpBadHeaderLength}}},
      {"sctp",
       ethernet(kEtherTypeIpv4) + ipv4(kProtoSctp, sctp(1, 2)),
       {{20, R::Ipv4BadTotalLength}, {32, R::L4Truncated}}},
      {"icmp",
       ethernet(kEtherTypeIpv4) + ipv4(kProtoIcmp, icmp(8)),
       {{20, R::Ipv4BadTotalLength}, {24, R::L4Truncated}}},
  };
  for (const Case& c : cases) {
    const size_t full_total = c.frame.size() - 14;
    for (size_t total = 0; total <= full_total; ++total) {
      // The frame ends where the IP packet says it does, or with the IP header if that is longer.
      Bytes frame = withIpv4TotalLength(c.frame, 14, static_cast<uint16_t>(total));
      frame.resize(14 + std::max<size_t>(total, (frame[14] & 0x0Fu) * size_t{4}));
      MalformedReason want = R::None;
      for (const auto& [end, reason] : c.bands) {
        if (total < end) {
          want = reason;
          break;
        }
      }
      ParsedPacket p;
      const ParseStatus status = parseExact(frame, p);
      if (want == R::None) {
        EXPECT_EQ(status, ParseStatus::Ip) << c.name << " total " << total;
        EXPECT_EQ(p.l3_length, total);
      } else {
        EXPECT_EQ(p.malformed, want)
            << c.name << " total " << total << ": got " << malformedReasonName(p.malformed);
      }
    }
  }
}

TEST(PacketParserTest, IpLengthCutInsideIpv6Extensions) {
  using R = MalformedReason;
  // Hop-by-hop (8 bytes), destination options (16), AH (12), TCP (20), 3 bytes of data.
  const Bytes frame =
      ethernet(kEtherTypeIpv6) +
      ipv6(kProtoHopByHop, extension(kProtoDestinationOptions,
                                     extension(kProtoAh, ah(kProtoTcp, tcp(1, 2, 5, 3), 1), 1)));
  const std::vector<std::pair<size_t, MalformedReason>> bands = {
      {1, R::Ipv6BadPayloadLength},
      {24, R::Ipv6ExtensionTruncated},
      {36, R::Ipv6ExtensionTruncated},
      {56, R::L4Truncated},
  };
  const size_t full_payload = frame.size() - 54;
  ASSERT_EQ(full_payload, 59u);
  for (size_t payload = 0; payload <= full_payload; ++payload) {
    Bytes cut = withIpv6PayloadLength(frame, 14, static_cast<uint16_t>(payload));
    cut.resize(54 + payload);
    MalformedReason want = R::None;
    for (const auto& [end, reason] : bands) {
      if (payload < end) {
        want = reason;
        break;
      }
    }
    ParsedPacket p;
    const ParseStatus status = parseExact(cut, p);
    if (want == R::None) {
      EXPECT_EQ(status, ParseStatus::Ip) << "payload " << payload;
      EXPECT_EQ(p.l3_length, 40 + payload);
      EXPECT_KEY_EQ(p.key, key6(kProtoTcp, 1, 2));
    } else {
      EXPECT_EQ(p.malformed, want)
          << "payload " << payload << ": got " << malformedReasonName(p.malformed);
    }
  }
}

// Random damage to valid frames: whatever comes out must be self-consistent.
// The fuzzer does this at depth; this keeps a cheap version in every build.
TEST(PacketParserTest, RandomDamageKeepsInvariants) {
  const std::vector<Bytes> seeds = {
      ethernet(kEtherTypeIpv4) + ipv4(kProtoUdp, udp(1, 2, 10)),
      ethernet(kEtherTypeIpv4, {kTpid8021Q}) + ipv4(kProtoTcp, tcp(1, 2, 7), {.ihl = 6}),
      ethernet(kEtherTypeIpv6, {kTpid8021Ad, kTpid8021Q}) +
          ipv6(kProtoHopByHop,
               extension(kProtoFragment, fragment6(kProtoSctp, sctp(1, 2), 0, true))),
      ipv6ChainOfDestinationOptions(6, kProtoAh, ah(kProtoTcp, tcp(1, 2))),
  };
  std::mt19937 rng(12345);
  int n_ip = 0;
  int n_malformed = 0;
  for (int i = 0; i < 50000; ++i) {
    Bytes frame = seeds[rng() % seeds.size()];
    const int n_flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < n_flips; ++f) {
      frame[rng() % frame.size()] = static_cast<uint8_t>(rng());
    }
    if (rng() % 4 == 0) {
      frame.resize(rng() % (frame.size() + 1));
    }
    ParsedPacket p;
    const ParseStatus status = parseExact(frame, p);
    if (status == ParseStatus::Ip) {
      ++n_ip;
      ASSERT_EQ(p.malformed, MalformedReason::None);
      ASSERT_LE(p.l3_offset + p.l3_length, frame.size());
      ASSERT_EQ(p.l3_offset, 14 + 4 * p.n_vlan_tags);
      ASSERT_LT(p.dscp, 64);
      ASSERT_TRUE(p.key.family == IpFamily::V4 || p.key.family == IpFamily::V6);
      ASSERT_EQ(p.key.wildcard_mask, 0);
      ASSERT_EQ(p.key.reserved, 0);
      if (!p.has_ports) {
        ASSERT_EQ(p.key.src_port, 0);
        ASSERT_EQ(p.key.dst_port, 0);
      }
    } else if (status == ParseStatus::Malformed) {
      ++n_malformed;
      ASSERT_NE(p.malformed, MalformedReason::None);
      ASSERT_LT(p.malformed, MalformedReason::Count);
    }
  }
  // Both outcomes are common, so the loop exercised both paths.
  EXPECT_GT(n_ip, 1000);
  EXPECT_GT(n_malformed, 1000);
}

// ---------------------------------------------------------------------------
// The trust boundary: which malformed frames still carry an IP header that a
// downstream device reads (and whose DSCP the worker must therefore police).

TEST(PacketParserTest, MalformedFramesSayWhetherTheyCarryAnIpHeader) {
  const uint8_t kEf = 46;
  const Bytes udp4 = ethernet(kEtherTypeIpv4) + ipv4(kProtoUdp, udp(1, 2), {.tos = kEf << 2});
  const Bytes udp6 = ethernet(kEtherTypeIpv6) + ipv6(kProtoUdp, udp(1, 2), kEf << 2);
  struct Case {
    const char* name;
    Bytes frame;
    bool ip_header;
    IpFamily family = IpFamily::V4;
    uint16_t l3_offset = 14;
  };
  const std::vector<Case> cases = {
      {"7-byte udp header",
       ethernet(kEtherTypeIpv4) + ipv4(kProtoUdp, Bytes(7, 0), {.tos = kEf << 2}), true},
      {"ipv4 protocol 0", ethernet(kEtherTypeIpv4) + ipv4(kProtoHopByHop, {}, {.tos = kEf << 2}),
       true},
      {"total length past the frame", withIpv4TotalLength(udp4, 14, 200), true},
      {"ihl 4", withByte(udp4, 14, 0x44), true},
      {"ipv4 version 6", withByte(udp4, 14, 0x65), true},
      {"nine ipv6 extension headers",
       [&] {
         Bytes f = ipv6ChainOfDestinationOptions(8, kProtoUdp, udp(1, 2));
         f[14] = static_cast<uint8_t>(0x60 | (kEf >> 2));
         f[15] = static_cast<uint8_t>((kEf & 3) << 6);
         return f;
       }(),
       true, IpFamily::V6},
      {"ipv6 payload past the frame", withIpv6PayloadLength(udp6, 14, 200), true, IpFamily::V6},
      {"19-byte tcp header in ipv6",
       ethernet(kEtherTypeIpv6) + ipv6(kProtoTcp, Bytes(19, 0x50), kEf << 2), true, IpFamily::V6},
      {"three tags, then ipv4",
       ethernet(kEtherTypeIpv4, {kTpid8021Ad, kTpid8021Q, kTpid8021Q}) +
           ipv4(kProtoUdp, udp(1, 2), {.tos = kEf << 2}),
       true, IpFamily::V4, 26},
      {"eight tags, then ipv6",
       ethernet(kEtherTypeIpv6, std::vector<uint16_t>(8, kTpid8021Q)) +
           ipv6(kProtoUdp, udp(1, 2), kEf << 2),
       true, IpFamily::V6, 46},
      {"nine tags: not looked past",
       ethernet(kEtherTypeIpv4, std::vector<uint16_t>(9, kTpid8021Q)) +
           ipv4(kProtoUdp, udp(1, 2), {.tos = kEf << 2}),
       false},
      {"three tags, then arp",
       ethernet(kEtherTypeArp, {kTpid8021Q, kTpid8021Q, kTpid8021Q}) + Bytes(28, 0), false},
      {"19-byte ipv4 header", ethernet(kEtherTypeIpv4) + Bytes(19, 0x45), false},
      {"39-byte ipv6 header", ethernet(kEtherTypeIpv6) + Bytes(39, 0x60), false},
      {"13 bytes", Bytes(13, 0x08), false},
      {"vlan tag cut short", ethernet(kTpid8021Q) + Bytes{0x00, 0x64, 0x08}, false},
  };
  for (const Case& c : cases) {
    ParsedPacket p;
    ASSERT_EQ(parseExact(c.frame, p), ParseStatus::Malformed) << c.name;
    EXPECT_EQ(p.ip_header, c.ip_header)
        << c.name << " (" << malformedReasonName(p.malformed) << ")";
    if (c.ip_header && p.ip_header) {
      EXPECT_EQ(p.key.family, c.family) << c.name;
      EXPECT_EQ(p.l3_offset, c.l3_offset) << c.name;
      EXPECT_EQ(p.dscp, kEf) << c.name;
    }
  }
  EXPECT_TRUE(parseOk(udp4).ip_header) << "an Ip frame always has one";
}

/**
 * Parses the first @p given bytes of @p frame (in a buffer of exactly that
 * size, so a read past them is caught), the frame being frame.size() long.
 */
ParseStatus parsePrefix(const Bytes& frame, size_t given, ParsedPacket& out) {
  auto buffer = std::make_unique<uint8_t[]>(std::max<size_t>(given, 1));
  std::copy(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(given), buffer.get());
  return parsePacket(std::span<const uint8_t>(buffer.get(), given), frame.size(), out);
}

TEST(PacketParserTest, AFrameInSegmentsIsParsedFromItsFirstBytesOrRefused) {
  // Whatever the first segment holds, the parse is the whole frame's, or the
  // frame is refused because a header runs past the segment; nothing else.
  const std::vector<Bytes> frames = {
      ethernet(kEtherTypeIpv4) + ipv4(kProtoUdp, udp(1000, 53, 1400)),
      ethernet(kEtherTypeIpv4, {kTpid8021Ad, kTpid8021Q}) +
          ipv4(kProtoTcp, tcp(80, 40000, 15), {.ihl = 15}),
      ethernet(kEtherTypeIpv6) +
          ipv6(kProtoHopByHop,
               extension(kProtoRouting,
                         extension(kProtoFragment, fragment6(kProtoSctp, sctp(5, 6), 0, true), 3))),
      ethernet(kEtherTypeIpv6) + ipv6(kProtoIcmpv6, Bytes{128, 0, 0, 0, 1, 2, 3, 4}),
  };
  for (const Bytes& frame : frames) {
    ParsedPacket whole;
    ASSERT_EQ(parseExact(frame, whole), ParseStatus::Ip);
    for (size_t given = 0; given <= frame.size(); ++given) {
      ParsedPacket p;
      const ParseStatus status = parsePrefix(frame, given, p);
      if (status == ParseStatus::Ip) {
        EXPECT_EQ(keyToString(p.key), keyToString(whole.key)) << given;
        EXPECT_EQ(p.l3_length, whole.l3_length) << given;
        EXPECT_EQ(p.dscp, whole.dscp) << given;
      } else {
        ASSERT_EQ(status, ParseStatus::Malformed) << given;
        EXPECT_EQ(p.malformed, MalformedReason::HeadersNotContiguous)
            << given << " of " << frame.size() << ": " << malformedReasonName(p.malformed);
      }
    }
    ParsedPacket p;
    EXPECT_EQ(parsePrefix(frame, frame.size(), p), ParseStatus::Ip);
  }
}

TEST(PacketParserTest, AJumboFrameLongerThanItsFirstSegment) {
  const Bytes jumbo = ethernet(kEtherTypeIpv6) + ipv6(kProtoUdp, udp(1, 2, 8900));
  ParsedPacket p;
  ASSERT_EQ(parsePrefix(jumbo, 2048, p), ParseStatus::Ip);
  EXPECT_EQ(p.l3_length, 40 + 8 + 8900);
  EXPECT_EQ(p.key.dst_port, 2);
  // The same frame given whole but said to be shorter is refused by its lengths.
  EXPECT_EQ(parsePacket(std::span<const uint8_t>(jumbo.data(), 2048), p), ParseStatus::Malformed);
  EXPECT_EQ(p.malformed, MalformedReason::Ipv6BadPayloadLength);
}

}  // namespace
}  // namespace qos::appliance
