// Fuzz target for the packet parser and DSCP marking.
//
// For any input: parsing never reads outside the frame (ASan), the result is
// self-consistent, the same whatever `out` held before, and, for IP packets
// and malformed frames with an IP header (which the worker re-marks by the
// trust policy), rewriting the DSCP changes only the bytes it should and
// keeps a valid IPv4 header checksum valid.  Parsing only the first bytes of
// the frame (as from a first mbuf segment) gives the whole frame's result or
// headers_not_contiguous, nothing else.  Any violation aborts, which libFuzzer reports as a
// crash; add the crashing input to packet_parser_corpus/ once it is fixed.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "appliance/dataplane/dscp_marking.h"
#include "appliance/dataplane/packet_parser.h"

namespace {

using qos::appliance::FlowKey;
using qos::appliance::IpFamily;
using qos::appliance::MalformedReason;
using qos::appliance::ParsedPacket;
using qos::appliance::ParseStatus;

void check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "packet_parser_fuzz: invariant violated: %s\n", what);
    std::abort();
  }
}

bool samePacket(const ParsedPacket& a, const ParsedPacket& b) {
  return a.key == b.key && a.l3_offset == b.l3_offset && a.l3_length == b.l3_length &&
         a.dscp == b.dscp && a.n_vlan_tags == b.n_vlan_tags && a.is_fragment == b.is_fragment &&
         a.has_ports == b.has_ports && a.malformed == b.malformed && a.ip_header == b.ip_header;
}

bool allZero(const uint8_t* bytes, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (bytes[i] != 0) {
      return false;
    }
  }
  return true;
}

void checkIpPacket(const uint8_t* data, size_t size, const ParsedPacket& p) {
  check(p.malformed == MalformedReason::None, "Ip with a malformed reason");
  check(p.ip_header, "Ip without ip_header");
  check(p.n_vlan_tags <= qos::appliance::kMaxVlanTags, "too many VLAN tags");
  check(p.l3_offset == 14 + 4 * p.n_vlan_tags, "l3_offset != 14 + 4 * tags");
  check(static_cast<size_t>(p.l3_offset) + p.l3_length <= size, "IP packet past the frame");
  check(p.dscp < 64, "dscp >= 64");
  check(p.key.wildcard_mask == 0, "wildcard_mask set");
  check(p.key.reserved == 0, "reserved set");
  check(p.has_ports || (p.key.src_port == 0 && p.key.dst_port == 0), "ports without has_ports");
  check(p.has_ports || p.key.protocol != 17 || p.is_fragment,
        "an unfragmented UDP packet without ports");

  const uint8_t* ip = data + p.l3_offset;
  if (p.key.family == IpFamily::V4) {
    check(p.l3_length >= 20, "IPv4 shorter than its header");
    check(ip[0] >> 4 == 4, "IPv4 with another version");
    check((ip[0] & 0x0F) * 4 <= p.l3_length, "IHL past the total length");
    check(p.dscp == ip[1] >> 2, "IPv4 dscp differs from the TOS byte");
    check(p.key.protocol == ip[9] && p.key.protocol != 0, "IPv4 protocol");
    check(std::memcmp(p.key.src_addr.data(), ip + 12, 4) == 0, "IPv4 source address");
    check(std::memcmp(p.key.dst_addr.data(), ip + 16, 4) == 0, "IPv4 destination address");
    check(allZero(p.key.src_addr.data() + 4, 12) && allZero(p.key.dst_addr.data() + 4, 12),
          "IPv4 address bytes 4..15 not zero");
  } else {
    check(p.key.family == IpFamily::V6, "Ip with no family");
    check(p.l3_length > 40, "IPv6 with no payload");
    check(ip[0] >> 4 == 6, "IPv6 with another version");
    check(p.dscp == (((ip[0] & 0x0F) << 2) | (ip[1] >> 6)), "IPv6 dscp");
    check(std::memcmp(p.key.src_addr.data(), ip + 8, 16) == 0, "IPv6 source address");
    check(std::memcmp(p.key.dst_addr.data(), ip + 24, 16) == 0, "IPv6 destination address");
  }
}

// Rewrites the DSCP of a copy of the frame and checks what changed.
void checkMarking(const uint8_t* data, size_t size, const ParsedPacket& p) {
  std::vector<uint8_t> frame(data, data + size);
  uint8_t* ip = frame.data() + p.l3_offset;
  // A DSCP that differs from the old one, derived from the input so runs are repeatable.
  const auto dscp = static_cast<uint8_t>((p.dscp + 1 + size) & 0x3F);
  const uint8_t old_ecn = p.key.family == IpFamily::V4 ? (ip[1] & 0x03) : ((ip[1] >> 4) & 0x03);

  if (p.key.family == IpFamily::V4) {
    const unsigned header_bytes = (ip[0] & 0x0Fu) * 4;
    const bool verified_before = qos::appliance::ipv4HeaderChecksum(ip, header_bytes) == 0;
    qos::appliance::setDscpIpv4(ip, dscp);
    check((ip[1] & 0x03) == old_ecn, "IPv4 ECN changed");
    check(!verified_before || qos::appliance::ipv4HeaderChecksum(ip, header_bytes) == 0,
          "IPv4 checksum broken by setDscpIpv4");
    for (size_t i = 0; i < size; ++i) {
      const size_t at = i - p.l3_offset;  // wraps for bytes before the IP header: never 1/10/11
      if (at != 1 && at != 10 && at != 11) {
        check(frame[i] == data[i], "setDscpIpv4 changed a byte it should not");
      }
    }
  } else {
    qos::appliance::setDscpIpv6(ip, dscp);
    check(((ip[1] >> 4) & 0x03) == old_ecn, "IPv6 ECN changed");
    check(ip[0] >> 4 == 6, "IPv6 version changed");
    check((ip[1] & 0x0F) == (data[p.l3_offset + 1] & 0x0F), "IPv6 flow label changed");
    for (size_t i = 0; i < size; ++i) {
      const size_t at = i - p.l3_offset;
      if (at != 0 && at != 1) {
        check(frame[i] == data[i], "setDscpIpv6 changed a byte it should not");
      }
    }
  }

  // The marked frame parses the same, with the new DSCP.
  ParsedPacket again;
  check(qos::appliance::parsePacket(frame, again) == ParseStatus::Ip, "marked frame not Ip");
  check(again.dscp == dscp, "marked frame has another dscp");
  again.dscp = p.dscp;
  check(samePacket(again, p), "marking changed more than the dscp");
}

// A malformed frame with an IP header: re-marked as the worker does it.
void checkMalformedMarking(const uint8_t* data, size_t size, const ParsedPacket& p) {
  const size_t fixed = p.key.family == IpFamily::V4 ? 20 : 40;
  check(p.l3_offset + fixed <= size, "ip_header without the fixed header");
  std::vector<uint8_t> frame(data, data + size);
  uint8_t* ip = frame.data() + p.l3_offset;
  const auto dscp = static_cast<uint8_t>((p.dscp + 1) & 0x3F);
  if (p.key.family == IpFamily::V4) {
    check(p.dscp == ip[1] >> 2, "malformed IPv4 dscp differs from the TOS byte");
    const bool verified_before = qos::appliance::ipv4HeaderChecksum(ip, fixed) == 0;
    qos::appliance::setDscpIpv4(ip, dscp);
    check(!verified_before || qos::appliance::ipv4HeaderChecksum(ip, fixed) == 0,
          "malformed IPv4: checksum broken by setDscpIpv4");
    for (size_t i = 0; i < size; ++i) {
      const size_t at = i - p.l3_offset;
      check(at == 1 || at == 10 || at == 11 || frame[i] == data[i],
            "setDscpIpv4 on a malformed frame changed a byte it should not");
    }
  } else {
    check(p.dscp == (((ip[0] & 0x0F) << 2) | (ip[1] >> 6)), "malformed IPv6 dscp");
    qos::appliance::setDscpIpv6(ip, dscp);
    for (size_t i = 0; i < size; ++i) {
      const size_t at = i - p.l3_offset;
      check(at == 0 || at == 1 || frame[i] == data[i],
            "setDscpIpv6 on a malformed frame changed a byte it should not");
    }
  }
  // The re-marked frame is refused for the same reason, with the new DSCP.
  ParsedPacket again;
  check(qos::appliance::parsePacket(frame, again) == ParseStatus::Malformed,
        "a re-marked malformed frame parses otherwise");
  check(again.malformed == p.malformed && again.ip_header && again.dscp == dscp,
        "a re-marked malformed frame changed more than its dscp");
}

// The frame's first bytes only, the frame being `size` long.
void checkPrefix(const uint8_t* data, size_t size, ParseStatus whole_status,
                 const ParsedPacket& whole) {
  const size_t given = size == 0 ? 0 : (static_cast<size_t>(data[size - 1]) * 7) % (size + 1);
  std::vector<uint8_t> prefix(data, data + given);  // exactly `given` bytes: ASan sees past them
  ParsedPacket p;
  const ParseStatus status = qos::appliance::parsePacket(prefix, size, p);
  if (status == ParseStatus::Malformed && p.malformed == MalformedReason::HeadersNotContiguous) {
    check(!p.ip_header || p.l3_offset + (p.key.family == IpFamily::V4 ? 20u : 40u) <= given,
          "a prefix's ip_header without the fixed header in the prefix");
    return;
  }
  check(status == whole_status, "a prefix parsed to another status");
  check(samePacket(p, whole), "a prefix parsed to another result");
}

}  // namespace

// NOLINTNEXTLINE(readability-identifier-naming): the name libFuzzer calls.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> frame(data, size);

  ParsedPacket clean;
  const ParseStatus status = qos::appliance::parsePacket(frame, clean);

  // A second parse into an output full of stale values must give the same result.
  ParsedPacket stale;
  stale.key.src_addr.fill(0xA5);
  stale.key.dst_addr.fill(0x5A);
  stale.key.src_port = 0xA5A5;
  stale.key.dst_port = 0x5A5A;
  stale.key.protocol = 0xA5;
  stale.key.family = IpFamily::V6;
  stale.key.wildcard_mask = 0xA5;
  stale.key.reserved = 0x5A;
  stale.l3_offset = 0xFFFF;
  stale.l3_length = 0xFFFF;
  stale.dscp = 0xFF;
  stale.n_vlan_tags = 7;
  stale.is_fragment = true;
  stale.has_ports = true;
  stale.malformed = MalformedReason::Ipv6HopByHopNotFirst;
  stale.ip_header = false;
  check(qos::appliance::parsePacket(frame, stale) == status, "status depends on stale output");
  check(samePacket(stale, clean), "result depends on stale output");

  switch (status) {
    case ParseStatus::Ip:
      checkIpPacket(data, size, clean);
      checkMarking(data, size, clean);
      break;
    case ParseStatus::NotIp:
      check(clean.malformed == MalformedReason::None, "NotIp with a malformed reason");
      check(clean.key == FlowKey{}, "NotIp with a key");
      check(size >= 14, "NotIp shorter than an Ethernet header");
      break;
    case ParseStatus::Malformed:
      check(clean.malformed != MalformedReason::None && clean.malformed < MalformedReason::Count,
            "Malformed without a valid reason");
      check(qos::appliance::malformedReasonName(clean.malformed) != "unknown",
            "reason without a name");
      check(clean.malformed != MalformedReason::HeadersNotContiguous,
            "headers_not_contiguous for a whole frame");
      if (clean.ip_header) {
        checkMalformedMarking(data, size, clean);
      }
      break;
    default:
      check(false, "unknown status");
  }
  checkPrefix(data, size, status, clean);
  return 0;
}
