#include "appliance/dataplane/packet_parser.h"

#include <array>
#include <cstring>

// Layout of the walk, with the check made before each step:
//
//   frame: | Ethernet 14 | VLAN 4 | VLAN 4 | IP header ... | L4 header ... | padding |
//          ^ size >= 14  ^ +4 each, at most kMaxVlanTags    ^ bounded by the IP length,
//                                                           never by the frame length
//
// Every read goes through a pointer that was checked against the bytes left
// to read (`read_bytes`, `l4_read`, `left_read`) just before; lengths are
// checked against the frame (`frame_avail`) and the IP packet (`end_bytes`).
// The two differ only when the bytes given are the start of a longer frame.
// All loads are byte loads, so nothing depends on the alignment of the frame.

namespace qos::appliance {
namespace {

constexpr size_t kEthernetHeaderBytes = 14;
constexpr size_t kVlanTagBytes = 4;
constexpr size_t kIpv4MinHeaderBytes = 20;
constexpr size_t kIpv6HeaderBytes = 40;
constexpr size_t kIpv6ExtensionMinBytes = 2;  // next header + length: enough to size any of them
constexpr size_t kIpv6FragmentHeaderBytes = 8;
constexpr size_t kTcpMinHeaderBytes = 20;
constexpr size_t kUdpHeaderBytes = 8;
constexpr size_t kSctpCommonHeaderBytes = 12;
constexpr size_t kIcmpHeaderBytes = 4;
// l3_length is 16 bits wide; an IPv6 packet with a payload length near 65535
// would not fit in it (and cannot come from one mbuf segment anyway).
constexpr size_t kMaxL3LengthBytes = 0xFFFF;

constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeIpv6 = 0x86DD;
constexpr uint16_t kTpid8021Q = 0x8100;
constexpr uint16_t kTpid8021Ad = 0x88A8;
constexpr uint16_t kTpidQinQLegacy = 0x9100;  // pre-802.1ad QinQ; accepted as the outer tag only

constexpr uint8_t kProtoHopByHop = 0;
constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoRouting = 43;
constexpr uint8_t kProtoFragment = 44;
constexpr uint8_t kProtoEsp = 50;
constexpr uint8_t kProtoAh = 51;
constexpr uint8_t kProtoIcmpv6 = 58;
constexpr uint8_t kProtoNoNextHeader = 59;
constexpr uint8_t kProtoDestinationOptions = 60;
constexpr uint8_t kProtoSctp = 132;
constexpr uint8_t kProtoMobility = 135;
constexpr uint8_t kProtoHip = 139;
constexpr uint8_t kProtoShim6 = 140;

constexpr uint16_t kIpv4MoreFragments = 0x2000;
constexpr uint16_t kIpv4FragmentOffsetMask = 0x1FFF;
constexpr uint16_t kIpv6FragmentOffsetMask = 0xFFF8;
constexpr uint16_t kIpv6MoreFragments = 0x0001;

/** Reads a big-endian 16-bit value; byte loads, so any alignment is fine. */
inline uint16_t loadBe16(const uint8_t* p) noexcept {
  return static_cast<uint16_t>((static_cast<unsigned>(p[0]) << 8) | p[1]);
}

inline ParseStatus fail(ParsedPacket& out, MalformedReason reason) noexcept {
  out.malformed = reason;
  return ParseStatus::Malformed;
}

inline bool isOuterTpid(uint16_t ether_type) noexcept {
  return ether_type == kTpid8021Q || ether_type == kTpid8021Ad || ether_type == kTpidQinQLegacy;
}

inline bool isInnerTpid(uint16_t ether_type) noexcept {
  return ether_type == kTpid8021Q || ether_type == kTpid8021Ad;
}

inline void setPorts(const uint8_t* l4, ParsedPacket& out) noexcept {
  out.key.src_port = loadBe16(l4);
  out.key.dst_port = loadBe16(l4 + 2);
  out.has_ports = true;
}

/** The L4 header needs @p need bytes: are they in the packet, and readable? */
inline bool l4Fits(size_t need, size_t l4_bytes, size_t l4_read, ParsedPacket& out,
                   ParseStatus& status) noexcept {
  if (l4_bytes < need) {
    status = fail(out, MalformedReason::L4Truncated);
    return false;
  }
  if (l4_read < need) {
    status = fail(out, MalformedReason::HeadersNotContiguous);
    return false;
  }
  return true;
}

/**
 * Parses the L4 header of a first (or only) fragment.
 * @param l4        the first byte after the IP header and its extensions
 * @param l4_bytes  bytes of IP payload left, by the IP header's own length
 * @param l4_read   of those, the bytes that may be read (<= l4_bytes)
 */
ParseStatus parseL4(const uint8_t* l4, size_t l4_bytes, size_t l4_read, uint8_t protocol,
                    ParsedPacket& out) noexcept {
  ParseStatus status = ParseStatus::Ip;
  switch (protocol) {
    case kProtoTcp: {
      if (!l4Fits(kTcpMinHeaderBytes, l4_bytes, l4_read, out, status)) {
        return status;
      }
      const size_t header_bytes = static_cast<size_t>(l4[12] >> 4) * 4;
      if (header_bytes < kTcpMinHeaderBytes || header_bytes > l4_bytes) {
        return fail(out, MalformedReason::TcpBadHeaderLength);
      }
      setPorts(l4, out);
      return ParseStatus::Ip;
    }
    case kProtoUdp:
      if (!l4Fits(kUdpHeaderBytes, l4_bytes, l4_read, out, status)) {
        return status;
      }
      setPorts(l4, out);
      return ParseStatus::Ip;
    case kProtoSctp:
      if (!l4Fits(kSctpCommonHeaderBytes, l4_bytes, l4_read, out, status)) {
        return status;
      }
      setPorts(l4, out);
      return ParseStatus::Ip;
    case kProtoIcmp:
    case kProtoIcmpv6:
      if (!l4Fits(kIcmpHeaderBytes, l4_bytes, l4_read, out, status)) {
        return status;
      }
      return ParseStatus::Ip;
    default:
      // GRE, ESP in IPv4, OSPF, ...: classified on addresses and protocol.
      return ParseStatus::Ip;
  }
}

/**
 * @param read_bytes  bytes from @p ip that may be read
 * @param frame_avail bytes from @p ip to the end of the frame (>= read_bytes)
 */
ParseStatus parseIpv4(const uint8_t* ip, size_t read_bytes, size_t frame_avail,
                      ParsedPacket& out) noexcept {
  if (frame_avail < kIpv4MinHeaderBytes) {
    return fail(out, MalformedReason::Ipv4Truncated);
  }
  if (read_bytes < kIpv4MinHeaderBytes) {
    return fail(out, MalformedReason::HeadersNotContiguous);
  }
  // A downstream device reads this as IPv4 from here on, whatever follows.
  out.ip_header = true;
  out.key.family = IpFamily::V4;
  out.dscp = static_cast<uint8_t>(ip[1] >> 2);
  if ((ip[0] >> 4) != 4) {
    return fail(out, MalformedReason::Ipv4BadVersion);
  }
  const size_t header_bytes = static_cast<size_t>(ip[0] & 0x0F) * 4;
  if (header_bytes < kIpv4MinHeaderBytes || header_bytes > frame_avail) {
    return fail(out, MalformedReason::Ipv4BadHeaderLength);
  }
  const size_t total_bytes = loadBe16(ip + 2);
  if (total_bytes < header_bytes || total_bytes > frame_avail) {
    return fail(out, MalformedReason::Ipv4BadTotalLength);
  }
  const uint8_t protocol = ip[9];
  if (protocol == kProtoHopByHop) {
    return fail(out, MalformedReason::Ipv4ProtocolZero);
  }

  out.key.protocol = protocol;
  std::memcpy(out.key.src_addr.data(), ip + 12, 4);
  std::memcpy(out.key.dst_addr.data(), ip + 16, 4);
  out.l3_length = static_cast<uint16_t>(total_bytes);

  const uint16_t fragment = loadBe16(ip + 6);
  const uint16_t fragment_offset = fragment & kIpv4FragmentOffsetMask;
  out.is_fragment = (fragment & kIpv4MoreFragments) != 0 || fragment_offset != 0;
  if (fragment_offset != 0) {
    // A later fragment carries no L4 header: its first bytes are payload.
    return ParseStatus::Ip;
  }
  const size_t l4_bytes = total_bytes - header_bytes;
  const size_t l4_read = read_bytes > header_bytes ? read_bytes - header_bytes : 0;
  return parseL4(ip + header_bytes, l4_bytes, l4_read < l4_bytes ? l4_read : l4_bytes, protocol,
                 out);
}

/** As parseIpv4. */
ParseStatus parseIpv6(const uint8_t* ip, size_t read_bytes, size_t frame_avail,
                      ParsedPacket& out) noexcept {
  if (frame_avail < kIpv6HeaderBytes) {
    return fail(out, MalformedReason::Ipv6Truncated);
  }
  if (read_bytes < kIpv6HeaderBytes) {
    return fail(out, MalformedReason::HeadersNotContiguous);
  }
  out.ip_header = true;
  out.key.family = IpFamily::V6;
  out.dscp = static_cast<uint8_t>(((ip[0] & 0x0F) << 2) | (ip[1] >> 6));
  if ((ip[0] >> 4) != 6) {
    return fail(out, MalformedReason::Ipv6BadVersion);
  }
  const size_t payload_bytes = loadBe16(ip + 4);
  // Payload length 0 means a jumbogram (RFC 2675), which Ethernet cannot carry.
  const size_t end_bytes = kIpv6HeaderBytes + payload_bytes;
  if (payload_bytes == 0 || end_bytes > frame_avail || end_bytes > kMaxL3LengthBytes) {
    return fail(out, MalformedReason::Ipv6BadPayloadLength);
  }

  std::memcpy(out.key.src_addr.data(), ip + 8, 16);
  std::memcpy(out.key.dst_addr.data(), ip + 24, 16);
  out.l3_length = static_cast<uint16_t>(end_bytes);
  const size_t read_end = read_bytes < end_bytes ? read_bytes : end_bytes;

  // Walks the extension headers.  Each pass either consumes one extension
  // header, returns, or breaks on an upper-layer protocol, so the loop runs at
  // most kMaxIpv6ExtensionHeaders + 1 times; the extra pass is the one that
  // finds a header too many.  `offset` stays <= end_bytes throughout; the
  // bytes of a header that are read (at most its first 8) are checked
  // against `left_read` first.
  uint8_t next_header = ip[6];
  size_t offset = kIpv6HeaderBytes;
  for (int n_headers = 0; n_headers <= kMaxIpv6ExtensionHeaders; ++n_headers) {
    const uint8_t* header = ip + offset;
    const size_t left_bytes = end_bytes - offset;
    const size_t left_read = read_end > offset ? read_end - offset : 0;
    size_t header_bytes = 0;
    switch (next_header) {
      case kProtoHopByHop:
        if (n_headers != 0) {
          return fail(out, MalformedReason::Ipv6HopByHopNotFirst);
        }
        [[fallthrough]];
      case kProtoRouting:
      case kProtoDestinationOptions:
      case kProtoMobility:
      case kProtoHip:
      case kProtoShim6:
        if (n_headers == kMaxIpv6ExtensionHeaders) {
          return fail(out, MalformedReason::Ipv6ExtensionChainTooLong);
        }
        if (left_bytes < kIpv6ExtensionMinBytes) {
          return fail(out, MalformedReason::Ipv6ExtensionTruncated);
        }
        if (left_read < kIpv6ExtensionMinBytes) {
          return fail(out, MalformedReason::HeadersNotContiguous);
        }
        header_bytes = (static_cast<size_t>(header[1]) + 1) * 8;
        break;
      case kProtoAh:
        if (n_headers == kMaxIpv6ExtensionHeaders) {
          return fail(out, MalformedReason::Ipv6ExtensionChainTooLong);
        }
        if (left_bytes < kIpv6ExtensionMinBytes) {
          return fail(out, MalformedReason::Ipv6ExtensionTruncated);
        }
        if (left_read < kIpv6ExtensionMinBytes) {
          return fail(out, MalformedReason::HeadersNotContiguous);
        }
        header_bytes = (static_cast<size_t>(header[1]) + 2) * 4;
        break;
      case kProtoFragment: {
        if (n_headers == kMaxIpv6ExtensionHeaders) {
          return fail(out, MalformedReason::Ipv6ExtensionChainTooLong);
        }
        if (left_bytes < kIpv6FragmentHeaderBytes) {
          return fail(out, MalformedReason::Ipv6ExtensionTruncated);
        }
        if (left_read < kIpv6FragmentHeaderBytes) {
          return fail(out, MalformedReason::HeadersNotContiguous);
        }
        const uint16_t fragment = loadBe16(header + 2);
        const bool later_fragment = (fragment & kIpv6FragmentOffsetMask) != 0;
        // An atomic fragment (offset 0, M clear) is a whole datagram (RFC 6946).
        out.is_fragment = later_fragment || (fragment & kIpv6MoreFragments) != 0;
        if (later_fragment) {
          out.key.protocol = header[0];
          return ParseStatus::Ip;
        }
        header_bytes = kIpv6FragmentHeaderBytes;
        break;
      }
      case kProtoEsp:
      case kProtoNoNextHeader:
        // Nothing after these can be parsed: ESP is encrypted, 59 is empty.
        out.key.protocol = next_header;
        return ParseStatus::Ip;
      default:
        out.key.protocol = next_header;
        return parseL4(header, left_bytes, left_read, next_header, out);
    }
    if (header_bytes > left_bytes) {
      return fail(out, MalformedReason::Ipv6ExtensionTruncated);
    }
    next_header = header[0];
    offset += header_bytes;
  }
  // Unreachable: the pass with n_headers == kMaxIpv6ExtensionHeaders either
  // fails on an extension header or returns on an upper-layer one.
  return fail(out, MalformedReason::Ipv6ExtensionChainTooLong);
}

/**
 * A third tag: refused (VlanTooDeep), but tags are skipped up to
 * kMaxVlanTagsSeen in all to see whether an IP header follows that a
 * downstream device would read; if one does, out.ip_header says where.  A
 * tag or that header past the bytes given but within the frame makes it
 * HeadersNotContiguous instead, as anywhere else.
 * @param l3_offset the offset after the second tag, whose EtherType field
 *                  held @p ether_type (a TPID)
 */
ParseStatus tooManyTags(const uint8_t* data, size_t size, size_t frame_size, size_t l3_offset,
                        uint16_t ether_type, ParsedPacket& out) noexcept {
  uint8_t tags = static_cast<uint8_t>(kMaxVlanTags);
  while ((isOuterTpid(ether_type) || isInnerTpid(ether_type)) && tags < kMaxVlanTagsSeen) {
    if (size < l3_offset + kVlanTagBytes) {
      if (frame_size >= l3_offset + kVlanTagBytes) {
        return fail(out, MalformedReason::HeadersNotContiguous);
      }
      break;
    }
    ether_type = loadBe16(data + l3_offset + 2);
    l3_offset += kVlanTagBytes;
    ++tags;
  }
  const size_t left = size - l3_offset;
  const size_t frame_left = frame_size - l3_offset;
  const size_t fixed = ether_type == kEtherTypeIpv4   ? kIpv4MinHeaderBytes
                       : ether_type == kEtherTypeIpv6 ? kIpv6HeaderBytes
                                                      : 0;
  if (fixed != 0 && left < fixed && frame_left >= fixed) {
    return fail(out, MalformedReason::HeadersNotContiguous);
  }
  if (ether_type == kEtherTypeIpv4 && left >= kIpv4MinHeaderBytes) {
    out.ip_header = true;
    out.key.family = IpFamily::V4;
    out.dscp = static_cast<uint8_t>(data[l3_offset + 1] >> 2);
  } else if (ether_type == kEtherTypeIpv6 && left >= kIpv6HeaderBytes) {
    out.ip_header = true;
    out.key.family = IpFamily::V6;
    out.dscp = static_cast<uint8_t>(((data[l3_offset] & 0x0F) << 2) | (data[l3_offset + 1] >> 6));
  }
  out.l3_offset = static_cast<uint16_t>(l3_offset);
  out.n_vlan_tags = tags;
  return fail(out, MalformedReason::VlanTooDeep);
}

constexpr std::array<std::string_view, static_cast<size_t>(MalformedReason::Count)>
    kMalformedReasonNames = {
        "none",
        "ethernet_truncated",
        "vlan_truncated",
        "vlan_too_deep",
        "ipv4_truncated",
        "ipv4_bad_version",
        "ipv4_bad_ihl",
        "ipv4_bad_total_length",
        "ipv4_protocol_zero",
        "ipv6_truncated",
        "ipv6_bad_version",
        "ipv6_bad_payload_length",
        "ipv6_extension_truncated",
        "ipv6_extension_chain_too_long",
        "ipv6_hop_by_hop_not_first",
        "l4_truncated",
        "tcp_bad_header_length",
        "headers_not_contiguous",
};
static_assert(kMalformedReasonNames.back() == "headers_not_contiguous",
              "one name per MalformedReason, in enum order");

}  // namespace

std::string_view malformedReasonName(MalformedReason reason) {
  const auto index = static_cast<size_t>(reason);
  if (index >= kMalformedReasonNames.size()) {
    return "unknown";
  }
  return kMalformedReasonNames[index];
}

ParseStatus parsePacket(std::span<const uint8_t> bytes, size_t frame_bytes,
                        ParsedPacket& out) noexcept {
  // Start clean: a key is hashed and compared as 48 raw bytes, so nothing
  // from the previous packet may survive in it.
  out = ParsedPacket{};

  const uint8_t* const data = bytes.data();
  const size_t size = bytes.size();
  const size_t frame_size = frame_bytes < size ? size : frame_bytes;
  if (frame_size < kEthernetHeaderBytes) {
    return fail(out, MalformedReason::EthernetTruncated);
  }
  if (size < kEthernetHeaderBytes) {
    return fail(out, MalformedReason::HeadersNotContiguous);
  }
  uint16_t ether_type = loadBe16(data + 12);
  size_t l3_offset = kEthernetHeaderBytes;

  // At most two tags; a third one is refused rather than skipped, so a stack
  // of tags can neither hide the real EtherType nor make us loop.
  const auto tag_fits = [&](ParseStatus& status) noexcept {
    if (size >= l3_offset + kVlanTagBytes) {
      return true;
    }
    status =
        fail(out, frame_size >= l3_offset + kVlanTagBytes ? MalformedReason::HeadersNotContiguous
                                                          : MalformedReason::VlanTruncated);
    return false;
  };
  ParseStatus status = ParseStatus::Ip;
  if (isOuterTpid(ether_type)) {
    if (!tag_fits(status)) {
      return status;
    }
    ether_type = loadBe16(data + l3_offset + 2);
    l3_offset += kVlanTagBytes;
    out.n_vlan_tags = 1;
    if (isInnerTpid(ether_type)) {
      if (!tag_fits(status)) {
        return status;
      }
      ether_type = loadBe16(data + l3_offset + 2);
      l3_offset += kVlanTagBytes;
      out.n_vlan_tags = 2;
      if (isOuterTpid(ether_type)) {
        return tooManyTags(data, size, frame_size, l3_offset, ether_type, out);
      }
    }
  }
  static_assert(kMaxVlanTags == 2, "the tag parsing above is unrolled for two tags");

  out.l3_offset = static_cast<uint16_t>(l3_offset);
  // l3_offset <= size <= frame_size: every tag was checked to fit before it was skipped.
  const size_t read_bytes = size - l3_offset;
  const size_t frame_avail = frame_size - l3_offset;
  if (ether_type == kEtherTypeIpv4) {
    return parseIpv4(data + l3_offset, read_bytes, frame_avail, out);
  }
  if (ether_type == kEtherTypeIpv6) {
    return parseIpv6(data + l3_offset, read_bytes, frame_avail, out);
  }
  return ParseStatus::NotIp;
}

}  // namespace qos::appliance
