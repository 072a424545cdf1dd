// The packet parser: Ethernet (up to two 802.1Q/802.1ad tags), IPv4, IPv6
// with extension headers, TCP, UDP, SCTP, ICMP and ICMPv6.
//
// It works on a plain byte span and knows nothing of DPDK, so unit tests and
// fuzzers drive it with ordinary buffers.  It never reads past the end of the
// span, and bounds L4 parsing by the IP header's own length, so Ethernet
// padding after a short IP packet is never taken for payload.  Every way a
// frame can be malformed has its own MalformedReason, counted by the worker.
//
// A malformed frame that still carries an IP header a downstream device
// would read (its EtherType says IPv4 or IPv6, behind any number of VLAN
// tags up to kMaxVlanTagsSeen, and the fixed header is there) says so in
// ParsedPacket::ip_header: the worker gives it the unmatched policy's
// treatment, so that a broken L4 header or extension chain cannot carry a
// sender's DSCP through the trust boundary.
//
// The bytes given may be only the start of the frame (a frame in several
// mbuf segments): lengths are checked against the frame's length, reads
// against the bytes; a header needed beyond them is HeadersNotContiguous.
//
// This is the code where Open vSwitch (CVE-2016-10377, CVE-2020-35498,
// CVE-2023-1668) and VPP (IPv6 hop-by-hop) had their packet-of-death bugs:
// keep every length check explicit and every loop bounded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "appliance/dataplane/flow_key.h"

namespace qos::appliance {

/** At most this many IPv6 extension headers are walked before giving up. */
inline constexpr int kMaxIpv6ExtensionHeaders = 8;
/** At most this many VLAN tags (802.1Q or 802.1ad) are parsed: QinQ. */
inline constexpr int kMaxVlanTags = 2;
/** Past kMaxVlanTags (malformed), tags are skipped up to this many to find an IP header. */
inline constexpr int kMaxVlanTagsSeen = 8;

enum class ParseStatus : uint8_t {
  Ip,         ///< a well-formed IPv4 or IPv6 packet; ParsedPacket is filled in
  NotIp,      ///< a well-formed non-IP frame (ARP, LLDP, ...): passes untouched
  Malformed,  ///< see ParsedPacket::malformed for why
};

enum class MalformedReason : uint8_t {
  None = 0,
  EthernetTruncated,          ///< shorter than an Ethernet header (14 bytes)
  VlanTruncated,              ///< a VLAN tag cut short by the end of the frame
  VlanTooDeep,                ///< more than kMaxVlanTags tags
  Ipv4Truncated,              ///< fewer than 20 bytes after the L2 header
  Ipv4BadVersion,             ///< EtherType says IPv4, the version nibble does not
  Ipv4BadHeaderLength,        ///< IHL < 5, or the header runs past the frame
  Ipv4BadTotalLength,         ///< total length < IHL*4, or more than the frame holds
  Ipv4ProtocolZero,           ///< protocol 0 (hop-by-hop) is not valid in IPv4
  Ipv6Truncated,              ///< fewer than 40 bytes after the L2 header
  Ipv6BadVersion,             ///< EtherType says IPv6, the version nibble does not
  Ipv6BadPayloadLength,       ///< payload length more than the frame holds (or 0: jumbogram)
  Ipv6ExtensionTruncated,     ///< an extension header runs past the payload
  Ipv6ExtensionChainTooLong,  ///< more than kMaxIpv6ExtensionHeaders extension headers
  Ipv6HopByHopNotFirst,       ///< a hop-by-hop header anywhere but first (RFC 8200 4.1)
  L4Truncated,                ///< the TCP/UDP/SCTP/ICMP header does not fit in the IP payload
  TcpBadHeaderLength,         ///< TCP data offset < 5, or the header runs past the payload
  HeadersNotContiguous,       ///< a header runs past the bytes given (the frame's first segment)
  Count,
};

/** Bytes of the fixed IP header of @p family: where the DS field and (IPv4) checksum are. */
inline constexpr uint16_t fixedIpHeaderBytes(IpFamily family) {
  return family == IpFamily::V4 ? 20 : 40;
}

/** Short snake_case name of a reason, for counters and logs ("ipv4_bad_ihl"). */
std::string_view malformedReasonName(MalformedReason reason);

/** What the parser learned about one frame.  Only the fields for its status are valid. */
struct ParsedPacket {
  FlowKey key;               ///< 5-tuple, family and protocol; wildcard_mask = 0
  uint16_t l3_offset = 0;    ///< bytes from the start of the frame to the IP header
  uint16_t l3_length = 0;    ///< bytes of the IP packet (IPv4 total length; IPv6 40+payload)
  uint8_t dscp = 0;          ///< incoming DSCP, 0..63
  uint8_t n_vlan_tags = 0;   ///< 0, 1 or 2 (up to kMaxVlanTagsSeen when VlanTooDeep)
  bool is_fragment = false;  ///< part of a fragmented datagram (first or later)
  bool has_ports = false;    ///< key.src_port/dst_port came from an L4 header
  MalformedReason malformed = MalformedReason::None;  ///< set when status is Malformed
  /// An IP header a downstream device would read, even if the frame is
  /// malformed: key.family, l3_offset and dscp are valid, and the fixed IP
  /// header (20 or 40 bytes) is within the bytes given.  Always set for Ip.
  bool ip_header = false;
};

/**
 * Parses one Ethernet frame (without FCS) of which @p bytes holds the first
 * bytes (all of them when @p frame_bytes == bytes.size()).
 *
 * Later fragments (IPv4 offset != 0, IPv6 fragment offset != 0) have no L4
 * header: they are Ip with has_ports == false, classified on addresses and
 * protocol alone.  ICMP and protocols we do not know are Ip with has_ports ==
 * false.  ESP and "no next header" end the IPv6 walk the same way.
 *
 * Safe on any input: never reads outside @p bytes, never loops unboundedly.
 * @param bytes       the frame's bytes from the destination MAC, or the first of them
 * @param frame_bytes the frame's length (at least bytes.size())
 * @param out         filled in; on Malformed only out.malformed and, when
 *                    out.ip_header, the IP fields it names are meaningful
 * @return the status of the frame
 */
ParseStatus parsePacket(std::span<const uint8_t> bytes, size_t frame_bytes,
                        ParsedPacket& out) noexcept;

/** A frame whose bytes are all given. */
inline ParseStatus parsePacket(std::span<const uint8_t> frame, ParsedPacket& out) noexcept {
  return parsePacket(frame, frame.size(), out);
}

}  // namespace qos::appliance
