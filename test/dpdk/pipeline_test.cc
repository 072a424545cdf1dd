// The whole pipeline on net_ring ports: frames in, frames out, byte for byte.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "test/dpdk/ring_appliance.h"
#include "test/fakes/frame_builder.h"

namespace qos::test {
namespace {

using appliance::DropReason;
using appliance::MalformedReason;
using appliance::MatchKind;
using Frames = std::vector<std::vector<uint8_t>>;

constexpr const char* kVoiceFlow = R"(
[policy]
unmatched = "remark"
default_dscp = 0
[[flow]]
src = "198.18.1.10"
dst = "198.19.1.20"
proto = "udp"
dport = 5004
dscp = 46
)";

uint64_t drops(const appliance::PortTotals& t, DropReason r) {
  return t.drops[static_cast<size_t>(r)];
}

void expectValidIpv4Checksum(const std::vector<uint8_t>& f, size_t ip_offset) {
  EXPECT_EQ(checksum16(&f[ip_offset], 20), 0) << "IPv4 header checksum must verify";
}

void expectConservation(RingAppliance& h) {
  for (Side side : {Side::Inside, Side::Outside}) {
    const auto t = h.totals(side);
    EXPECT_EQ(t.rx_pkts, t.tx_pkts + t.droppedTotal()) << "received = transmitted + dropped";
  }
}

TEST(Pipeline, AdmittedFlowIsMarkedAndTheRestIsRemarked) {
  auto h = RingAppliance::create("mark", kVoiceFlow);
  ASSERT_TRUE(h);
  FrameSpec voice;      // matches the flow, sent with DSCP 0
  FrameSpec claims_ef;  // no grant, claims EF with ECN CE
  claims_ef.dst_port = 6000;
  claims_ef.tos = (46 << 2) | 0x3;
  FrameSpec voice_ecn = voice;  // ECN ECT(1) must survive the rewrite
  voice_ecn.tos = 0x01;
  const auto arp = buildArp();
  h->send(Side::Inside, {buildFrame(voice), buildFrame(claims_ef), buildFrame(voice_ecn), arp});
  const Frames out = h->receive(Side::Inside);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(dscpOf(out[0], 14), 46);
  expectValidIpv4Checksum(out[0], 14);
  EXPECT_EQ(dscpOf(out[1], 14), 0);
  EXPECT_EQ(ecnOf(out[1], 14), 3);
  expectValidIpv4Checksum(out[1], 14);
  EXPECT_EQ(dscpOf(out[2], 14), 46);
  EXPECT_EQ(ecnOf(out[2], 14), 1);
  EXPECT_EQ(out[3], arp) << "non-IP frames pass untouched";
  // Nothing but the TOS byte and the checksum changed.
  auto expected = buildFrame(voice);
  expected[15] = 46 << 2;
  expected[24] = out[0][24];
  expected[25] = out[0][25];
  EXPECT_EQ(out[0], expected);

  const auto t = h->totals(Side::Inside);
  EXPECT_EQ(t.rx_pkts, 4u);
  EXPECT_EQ(t.tx_pkts, 4u);
  EXPECT_EQ(t.non_ip_pkts, 1u);
  EXPECT_EQ(t.matched[static_cast<size_t>(MatchKind::Flow)], 2u);
  EXPECT_EQ(t.matched[static_cast<size_t>(MatchKind::Unmatched)], 1u);
  EXPECT_EQ(t.remarked_pkts, 3u);
  expectConservation(*h);
}

TEST(Pipeline, BothDirectionsVlanQinqAndIpv6) {
  auto h = RingAppliance::create("dirs", std::string(kVoiceFlow) + R"(
[[flow]]
src = "2001:db8:1::10"
dst = "2001:db8:2::20"
proto = "tcp"
sport = 40000
dport = 443
dscp = 34
)");
  ASSERT_TRUE(h);
  FrameSpec tagged;
  tagged.vlans = {100};
  FrameSpec qinq;
  qinq.vlans = {10, 20};
  FrameSpec v6;
  v6.src = "2001:db8:1::10";
  v6.dst = "2001:db8:2::20";
  v6.protocol = 6;
  v6.dst_port = 443;
  v6.tos = 0x02;  // ECN ECT(0)
  h->send(Side::Inside, {buildFrame(tagged), buildFrame(qinq), buildFrame(v6)});
  Frames out = h->receive(Side::Inside);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(dscpOf(out[0], ipOffset(tagged)), 46);
  expectValidIpv4Checksum(out[0], ipOffset(tagged));
  EXPECT_EQ(dscpOf(out[1], ipOffset(qinq)), 46);
  EXPECT_EQ(dscpOf(out[2], 14), 34);
  EXPECT_EQ(ecnOf(out[2], 14), 2);

  // Outside to inside: the same flow rule does not match the reverse 5-tuple.
  FrameSpec reverse;
  reverse.src = "198.19.1.20";
  reverse.dst = "198.18.1.10";
  reverse.tos = 46 << 2;
  h->send(Side::Outside, {buildFrame(reverse)});
  out = h->receive(Side::Outside);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(dscpOf(out[0], 14), 0);
  expectConservation(*h);
}

TEST(Pipeline, MeterColorsTakeTheirActions) {
  // 8 kbit/s = 1000 bytes/s: over the few milliseconds of this test the
  // buckets refill by a few bytes, so the colors follow the burst sizes.
  auto h = RingAppliance::create("meter", R"(
[[flow]]
src = "198.18.1.10"
dst = "198.19.1.20"
proto = "udp"
dport = 5004
dscp = 46
meter = { mode = "srtcm", cir = "8kbit", cbs = "1500B", ebs = "1500B", yellow = "remark:10", red = "drop" }
)");
  ASSERT_TRUE(h);
  FrameSpec big;
  big.payload_bytes = 972;  // IP length 1000
  Frames in(10, buildFrame(big));
  h->send(Side::Inside, in);
  const Frames out = h->receive(Side::Inside);
  // C bucket 1500: one green (500 left); E bucket 1500: one yellow; then red.
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(dscpOf(out[0], 14), 46);
  EXPECT_EQ(dscpOf(out[1], 14), 10);
  const auto t = h->totals(Side::Inside);
  EXPECT_EQ(drops(t, DropReason::MeterRed), 8u);
  uint64_t green = 0;
  uint64_t yellow = 0;
  uint64_t red = 0;
  h->app().flows().forEach([&](const appliance::FlowEntry& e) {
    green += e.green_counts.pkts.load();
    yellow += e.yellow_counts.pkts.load();
    red += e.red_counts.pkts.load();
    EXPECT_EQ(e.counts(appliance::Color::Red).bytes.load(), 8000u);
  });
  EXPECT_EQ(green, 1u);
  EXPECT_EQ(yellow, 1u);
  EXPECT_EQ(red, 8u);
  expectConservation(*h);
}

TEST(Pipeline, TrtcmYellowPassesWithTheFlowDscp) {
  auto h = RingAppliance::create("trtcm", R"(
[[flow]]
src = "198.18.1.10"
dst = "198.19.1.20"
proto = "udp"
dport = 5004
dscp = 26
meter = { mode = "trtcm", cir = "8kbit", pir = "16kbit", cbs = "1000B", pbs = "3000B", yellow = "pass", red = "remark:8" }
)");
  ASSERT_TRUE(h);
  FrameSpec big;
  big.payload_bytes = 972;
  h->send(Side::Inside, Frames(5, buildFrame(big)));
  const Frames out = h->receive(Side::Inside);
  // RFC 2698: P bucket 3000 -> three pass the peak test; C bucket 1000 -> one green.
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(dscpOf(out[0], 14), 26);  // green
  EXPECT_EQ(dscpOf(out[1], 14), 26);  // yellow, pass
  EXPECT_EQ(dscpOf(out[2], 14), 26);  // yellow, pass
  EXPECT_EQ(dscpOf(out[3], 14), 8);   // red, remark
  EXPECT_EQ(dscpOf(out[4], 14), 8);
  expectConservation(*h);
}

TEST(Pipeline, ClassRulesInOrderThenTheTrustPolicy) {
  auto h = RingAppliance::create("classes", R"(
[policy]
unmatched = "drop"
[[class]]
name = "video"
dst = "198.19.0.0/16"
proto = "udp"
dport = "7000-7100"
action = "remark:34"
[[class]]
name = "trusted-lan"
src = "198.18.2.0/24"
action = "trust"
[[class]]
name = "no-ef-from-guests"
src = "198.18.3.0/24"
dscp_in = [46]
action = "drop"
[[class]]
name = "guests"
src = "198.18.3.0/24"
action = "remark:0"
)");
  ASSERT_TRUE(h);
  FrameSpec video;
  video.dst_port = 7050;
  FrameSpec video_out_of_range;
  video_out_of_range.dst_port = 7101;  // falls to the unmatched policy: drop
  FrameSpec trusted;
  trusted.src = "198.18.2.7";
  trusted.tos = 46 << 2;
  FrameSpec guest_ef;
  guest_ef.src = "198.18.3.9";
  guest_ef.tos = 46 << 2;
  FrameSpec guest_af;
  guest_af.src = "198.18.3.9";
  guest_af.tos = 10 << 2;
  h->send(Side::Inside, {buildFrame(video), buildFrame(video_out_of_range), buildFrame(trusted),
                         buildFrame(guest_ef), buildFrame(guest_af)});
  const Frames out = h->receive(Side::Inside);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(dscpOf(out[0], 14), 34);
  EXPECT_EQ(dscpOf(out[1], 14), 46) << "trust keeps the host's DSCP";
  EXPECT_EQ(dscpOf(out[2], 14), 0);
  const auto t = h->totals(Side::Inside);
  EXPECT_EQ(drops(t, DropReason::Unmatched), 1u);
  EXPECT_EQ(drops(t, DropReason::ClassPolicy), 1u);
  EXPECT_EQ(t.matched[static_cast<size_t>(MatchKind::Class)], 4u);

  // A new policy is live for the next packet, without a restart.
  appliance::TrafficPolicy trust_all;
  trust_all.unmatched = appliance::UnmatchedPolicy::Trust;
  h->app().applyPolicy(trust_all);
  h->send(Side::Inside, {buildFrame(video_out_of_range)});
  const Frames after = h->receive(Side::Inside);
  ASSERT_EQ(after.size(), 1u);
  expectConservation(*h);
}

TEST(Pipeline, WildcardFlowsMostSpecificFirst) {
  auto h = RingAppliance::create("wild", R"(
[[flow]]
src = "198.18.1.10"
dst = "198.19.1.20"
proto = "any"
dscp = 10
[[flow]]
src = "198.18.1.10"
dst = "198.19.1.20"
proto = "udp"
dport = 5004
dscp = 46
[[flow]]
src = "198.18.1.10"
dst = "198.19.1.20"
proto = "udp"
sport = 40000
dport = 5004
dscp = 40
)");
  ASSERT_TRUE(h);
  FrameSpec exact;        // all five fields: dscp 40
  FrameSpec other_sport;  // dport only: dscp 46
  other_sport.src_port = 41000;
  FrameSpec tcp;  // any protocol: dscp 10
  tcp.protocol = 6;
  tcp.dst_port = 80;
  h->send(Side::Inside, {buildFrame(exact), buildFrame(other_sport), buildFrame(tcp)});
  const Frames out = h->receive(Side::Inside);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(dscpOf(out[0], 14), 40);
  EXPECT_EQ(dscpOf(out[1], 14), 46);
  EXPECT_EQ(dscpOf(out[2], 14), 10);
}

TEST(Pipeline, ReloadAppliesFlowAndPolicyDifferences) {
  auto h = RingAppliance::create("reload", kVoiceFlow);
  ASSERT_TRUE(h);
  // The next config: the voice flow changes DSCP, a video flow appears, and
  // unmatched traffic is now trusted.
  appliance::ApplianceConfig next = h->app().config();
  next.flows[0].dscp = 40;
  appliance::FlowRule video = next.flows[0];
  video.dst_port = 7000;
  video.dscp = 34;
  next.flows.push_back(video);
  next.policy.unmatched = appliance::UnmatchedPolicy::Trust;
  next.dataplane.max_flows = 8192;
  const auto reloaded = h->app().reload(next);
  ASSERT_TRUE(reloaded.ok()) << reloaded.error().message;
  const appliance::ReloadSummary& summary = *reloaded;
  EXPECT_EQ(summary.flows_added, 1u);
  EXPECT_EQ(summary.flows_changed, 1u);
  EXPECT_EQ(summary.flows_removed, 0u);
  EXPECT_TRUE(summary.policy_changed);
  ASSERT_EQ(summary.needs_restart.size(), 1u);
  EXPECT_EQ(summary.needs_restart[0], "dataplane");

  FrameSpec voice;
  FrameSpec vid;
  vid.dst_port = 7000;
  FrameSpec other;
  other.dst_port = 9;
  other.tos = 46 << 2;
  h->send(Side::Inside, {buildFrame(voice), buildFrame(vid), buildFrame(other)});
  Frames out = h->receive(Side::Inside);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(dscpOf(out[0], 14), 40);
  EXPECT_EQ(dscpOf(out[1], 14), 34);
  EXPECT_EQ(dscpOf(out[2], 14), 46) << "trusted now";

  // Reloading the same config changes nothing; dropping a flow removes it.
  const auto same = h->app().reload(next);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->flows_added + same->flows_changed + same->flows_removed, 0u);
  EXPECT_FALSE(same->policy_changed);
  next.flows.pop_back();
  const auto fewer = h->app().reload(next);
  ASSERT_TRUE(fewer.ok());
  EXPECT_EQ(fewer->flows_removed, 1u);
  EXPECT_EQ(h->app().flowCount(), 1u);
  h->send(Side::Inside, {buildFrame(vid)});
  out = h->receive(Side::Inside);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(dscpOf(out[0], 14), 0) << "the video flow is gone; trusted as sent";
  expectConservation(*h);
}

// Rules have owners: the manager's rule for a 5-tuple wins over the file's,
// a reload of the file never touches it, a rule put again unchanged keeps
// its counters, and a set of changes with one bad rule changes nothing.
TEST(Pipeline, ManagerRulesOwnersAndAllOrNothing) {
  using appliance::RuleChanges;
  using appliance::RuleId;
  using appliance::RuleOrigin;
  auto h = RingAppliance::create("owners", kVoiceFlow);
  ASSERT_TRUE(h);
  appliance::FlowRule granted = h->app().config().flows[0];
  granted.dscp = 40;
  const RuleId grant_id = RuleId::manager(7, control::Direction::Forward);
  const RuleChanges put{RuleOrigin::Manager, false, {{grant_id, granted}}, {}};
  ASSERT_TRUE(h->app().applyRules(put).ok());
  const auto dscpOfVoice = [&h] {
    h->send(Side::Inside, {buildFrame(FrameSpec{})});
    const Frames out = h->receive(Side::Inside);
    return out.size() == 1 ? dscpOf(out[0], 14) : 0xFF;
  };
  EXPECT_EQ(dscpOfVoice(), 40) << "the grant's rule wins the 5-tuple";

  const auto reloaded = h->app().reload(h->app().config());
  ASSERT_TRUE(reloaded.ok());
  EXPECT_EQ(reloaded->flows_removed + reloaded->flows_added + reloaded->flows_changed, 0u);
  EXPECT_EQ(dscpOfVoice(), 40) << "a reload of the file leaves the manager's rule";
  EXPECT_EQ(h->app().rules().count(RuleOrigin::Manager), 1u);

  const appliance::FlowEntry* entry = h->app().entryOf(grant_id);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->green_counts.pkts.load(), 2u);
  const Result<appliance::RuleSummary> again = h->app().applyRules(put);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->unchanged, 1u);
  EXPECT_EQ(h->app().entryOf(grant_id), entry) << "an unchanged rule keeps its entry";
  EXPECT_EQ(entry->green_counts.pkts.load(), 2u) << "and its counters";

  appliance::FlowRule bad = granted;
  bad.dst_port = 5008;
  bad.src = *parseIpAddress("2001:db8::1");
  appliance::FlowRule good = granted;
  good.dst_port = 5010;
  const RuleChanges mixed{RuleOrigin::Manager,
                          false,
                          {{RuleId::manager(8, control::Direction::Forward), good},
                           {RuleId::manager(9, control::Direction::Forward), bad}},
                          {}};
  EXPECT_FALSE(h->app().applyRules(mixed).ok());
  EXPECT_EQ(h->app().rules().count(RuleOrigin::Manager), 1u) << "nothing of a refused change";
  EXPECT_EQ(h->app().flowCount(), 1u);

  const RuleChanges release{RuleOrigin::Manager, false, {}, {grant_id}};
  ASSERT_TRUE(h->app().applyRules(release).ok());
  EXPECT_EQ(dscpOfVoice(), 46) << "the file's rule is enforced again";
  expectConservation(*h);
}

/** Recomputes the IPv4 header checksum of @p f over 20 bytes at @p ip_offset. */
void fixIpv4Checksum(std::vector<uint8_t>& f, size_t ip_offset) {
  f[ip_offset + 10] = 0;
  f[ip_offset + 11] = 0;
  const uint16_t sum = checksum16(&f[ip_offset], 20);
  f[ip_offset + 10] = static_cast<uint8_t>(sum >> 8);
  f[ip_offset + 11] = static_cast<uint8_t>(sum);
}

/** The IPv4 frame of @p spec with its UDP header cut to 7 bytes (IP length and checksum right). */
std::vector<uint8_t> withUdpHeaderCut(const FrameSpec& spec) {
  auto f = buildFrame(spec);
  f[16] = 0;
  f[17] = 27;
  fixIpv4Checksum(f, 14);
  f.resize(14 + 27);
  return f;
}

/** An IPv6 frame claiming EF whose extension chain has @p n destination-options headers. */
std::vector<uint8_t> ipv6WithExtensions(int n) {
  FrameSpec spec;
  spec.src = "2001:db8:1::10";
  spec.dst = "2001:db8:1::20";
  spec.tos = 46 << 2;
  std::vector<uint8_t> f = buildFrame(spec);
  // Insert n 8-byte headers (next header 60, length 0) between IPv6 and UDP.
  std::vector<uint8_t> chain;
  for (int i = 0; i < n; ++i) {
    chain.insert(chain.end(), {static_cast<uint8_t>(i + 1 < n ? 60 : 17), 0, 1, 4, 0, 0, 0, 0});
  }
  f.insert(f.begin() + 54, chain.begin(), chain.end());
  f[20] = 60;  // the IPv6 header's next header
  const auto payload = static_cast<uint16_t>(((f[18] << 8) | f[19]) + chain.size());
  f[18] = static_cast<uint8_t>(payload >> 8);
  f[19] = static_cast<uint8_t>(payload);
  return f;
}

// The trust boundary holds for every frame a downstream device reads as IP:
// a frame the parser refuses but whose IP header can be read gets the
// unmatched policy (here: re-marked to 0, checksum kept right); only frames
// that are not IP to anyone pass untouched.  Each case is counted.
TEST(Pipeline, MalformedFramesWithAnIpHeaderGetTheTrustPolicy) {
  auto h = RingAppliance::create("mip_remark", kVoiceFlow);
  ASSERT_TRUE(h);
  FrameSpec ef;
  ef.tos = (46 << 2) | 0x1;  // EF, ECN ECT(1)
  auto bad_ihl = buildFrame(ef);
  bad_ihl[14] = 0x44;  // IHL 4
  fixIpv4Checksum(bad_ihl, 14);
  auto udp_cut = withUdpHeaderCut(ef);  // the granted 5-tuple's frame
  FrameSpec tags = ef;
  tags.vlans = {10, 20, 30};  // one tag too many to classify, an IP header behind them
  auto three_tags = buildFrame(tags);
  auto nine_extensions = ipv6WithExtensions(9);
  auto no_ip = buildFrame(ef);  // EtherType IPv4, 19 bytes of header: IP to nobody
  no_ip.resize(14 + 19);
  std::vector<uint8_t> runt(10, 0xEE);
  h->send(Side::Inside, {bad_ihl, udp_cut, three_tags, nine_extensions, no_ip, runt});
  const Frames out = h->receive(Side::Inside);
  ASSERT_EQ(out.size(), 6u);
  for (size_t i : {0u, 1u}) {
    EXPECT_EQ(dscpOf(out[i], 14), 0) << i;
    EXPECT_EQ(ecnOf(out[i], 14), 1) << i << ": ECN is kept";
    expectValidIpv4Checksum(out[i], 14);
  }
  EXPECT_EQ(dscpOf(out[2], 26), 0);
  expectValidIpv4Checksum(out[2], 26);
  EXPECT_EQ(dscpOf(out[3], 14), 0);
  EXPECT_EQ(out[4], no_ip);
  EXPECT_EQ(out[5], runt);
  const auto t = h->totals(Side::Inside);
  EXPECT_EQ(t.malformed[static_cast<size_t>(MalformedReason::Ipv4BadHeaderLength)], 1u);
  EXPECT_EQ(t.malformed[static_cast<size_t>(MalformedReason::L4Truncated)], 1u);
  EXPECT_EQ(t.malformed[static_cast<size_t>(MalformedReason::VlanTooDeep)], 1u);
  EXPECT_EQ(t.malformed[static_cast<size_t>(MalformedReason::Ipv6ExtensionChainTooLong)], 1u);
  EXPECT_EQ(t.malformed[static_cast<size_t>(MalformedReason::Ipv4Truncated)], 1u);
  EXPECT_EQ(t.malformed[static_cast<size_t>(MalformedReason::EthernetTruncated)], 1u);
  EXPECT_EQ(t.matched[static_cast<size_t>(MatchKind::Malformed)], 4u)
      << "the four with an IP header got the trust policy";
  EXPECT_EQ(t.matched[static_cast<size_t>(MatchKind::Flow)], 0u)
      << "a malformed frame never matches a grant, even with its 5-tuple";
  EXPECT_EQ(t.remarked_pkts, 4u);
  expectConservation(*h);
}

TEST(Pipeline, MalformedFramesWithAnIpHeaderDroppedByTheTrustPolicy) {
  auto h = RingAppliance::create("mip_drop", std::string(R"(
[policy]
unmatched = "drop"
)"));
  ASSERT_TRUE(h);
  auto udp_cut = withUdpHeaderCut(FrameSpec{});
  std::vector<uint8_t> runt(10, 0xEE);
  h->send(Side::Inside, {udp_cut, runt});
  const Frames out = h->receive(Side::Inside);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], runt);
  EXPECT_EQ(drops(h->totals(Side::Inside), DropReason::Unmatched), 1u);
  expectConservation(*h);
}

// Frames in several mbuf segments (jumbo frames, scattered RX): parsed
// whole, headers that straddle a segment read correctly; an IP header that
// is not in the first segment cannot be re-marked in place, so such a frame
// is dropped when it must be re-marked and passes when it need not be.
TEST(Pipeline, FramesInSeveralSegments) {
  auto h = RingAppliance::create("segments", kVoiceFlow);
  ASSERT_TRUE(h);
  FrameSpec voice;
  voice.payload_bytes = 8958;  // a 9000-byte frame of the granted flow
  const auto jumbo = buildFrame(voice);
  ASSERT_EQ(jumbo.size(), 9000u);
  h->sendSegmented(Side::Inside, jumbo, 2048);
  FrameSpec small = voice;
  small.payload_bytes = 100;
  const auto split_udp = buildFrame(small);  // its UDP header straddles two segments
  h->sendSegmented(Side::Inside, split_udp, 14 + 20 + 4);
  FrameSpec ef;
  ef.tos = 46 << 2;
  ef.payload_bytes = 100;
  const auto split_ip_ef = buildFrame(ef);  // IP header split, DSCP to rewrite: dropped
  h->sendSegmented(Side::Inside, split_ip_ef, 24);
  FrameSpec other = small;
  other.dst_port = 6000;
  const auto split_ip_unmatched = buildFrame(other);
  h->sendSegmented(Side::Inside, split_ip_unmatched, 24);
  const Frames out = h->receive(Side::Inside);
  ASSERT_EQ(out.size(), 3u);
  auto expected = jumbo;
  expected[15] = 46 << 2;
  expected[24] = out[0][24];
  expected[25] = out[0][25];
  EXPECT_EQ(out[0], expected) << "the jumbo frame is marked and otherwise intact";
  expectValidIpv4Checksum(out[0], 14);
  EXPECT_EQ(dscpOf(out[1], 14), 46) << "a UDP header across segments is read: the grant applies";
  EXPECT_EQ(out[2], split_ip_unmatched);
  const auto t = h->totals(Side::Inside);
  EXPECT_EQ(t.matched[static_cast<size_t>(MatchKind::Flow)], 2u);
  EXPECT_EQ(t.malformed[static_cast<size_t>(MalformedReason::HeadersNotContiguous)], 2u);
  EXPECT_EQ(drops(t, DropReason::Malformed), 1u);
  EXPECT_EQ(t.rx_bytes, 9000u + 3 * split_udp.size());
  expectConservation(*h);
}

TEST(Pipeline, MalformedFramesDroppedWhenConfigured) {
  auto h = RingAppliance::create("malformed_drop", std::string(R"(
[policy]
malformed = "drop"
)"));
  ASSERT_TRUE(h);
  auto bad_ihl = buildFrame(FrameSpec{});
  bad_ihl[14] = 0x43;
  h->send(Side::Inside, {bad_ihl, buildFrame(FrameSpec{})});
  const Frames out = h->receive(Side::Inside);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(drops(h->totals(Side::Inside), DropReason::Malformed), 1u);
  expectConservation(*h);
}

// Rules added and removed in a tight loop on the control thread while the
// worker forwards a steady stream of the flow: every packet comes out marked
// either by the rule (46) or by the trust policy (0), none is lost, and
// nothing reads freed memory.  FlowEntry slots are DPDK memory, out of ASan's
// sight, so the table poisons every slot it frees (flow_table.h): a worker
// that read one after its grace period would mark the packet with
// kPoisonedDscp's low six bits (debug builds abort in the worker first).  A
// slot reused too early by one of the other flows would show their DSCP, 12.
TEST(Pipeline, RulesChangeWhileTrafficFlows) {
  auto h = RingAppliance::create("churn", R"(
[policy]
unmatched = "remark"
default_dscp = 0
)");
  ASSERT_TRUE(h);
  appliance::FlowRule rule = voiceRule();

  std::atomic<bool> done{false};
  std::atomic<uint64_t> n_sent{0};
  std::atomic<uint64_t> n_marked{0};
  std::atomic<uint64_t> n_unmarked{0};
  std::atomic<uint64_t> n_bad{0};
  std::atomic<uint64_t> n_poisoned{0};
  constexpr uint8_t kPoisonedOnWire = appliance::kPoisonedDscp & 0x3F;
  std::thread traffic([&] {
    const auto frame = buildFrame(FrameSpec{});
    uint64_t n_received = 0;
    while (!done.load()) {
      // Keep at most 1024 in flight, well under the 4096-slot rings, so
      // nothing is dropped for want of room (that would be tx_full, counted).
      if (n_sent.load() - n_received < 1024) {
        h->send(Side::Inside, Frames(16, frame));
        n_sent += 16;
      }
      for (const auto& f : h->takeOutput(Side::Outside)) {
        ++n_received;
        const uint8_t d = dscpOf(f, 14);
        (d == 46 ? n_marked : d == 0 ? n_unmarked : n_bad)++;
        if (d == kPoisonedOnWire) {
          ++n_poisoned;
        }
        if (checksum16(&f[14], 20) != 0) {
          ++n_bad;
        }
      }
    }
  });
  // Other flows churn too, so slots are reused while packets are in flight.
  // Churn for at least 3000 rounds and until a good amount of traffic passed.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  // The same 5-tuple and DSCP with a meter no packet here exceeds: a
  // different rule, so adding it replaces the entry under traffic.
  appliance::FlowRule replacement = rule;
  replacement.meter = appliance::MeterConfig{};
  replacement.meter->cir_bytes_per_sec = 1'000'000'000;
  replacement.meter->cbs_bytes = 1'000'000;
  replacement.meter->ebs_bytes = 1'000'000;
  for (int i = 0; i < 3000 || n_sent.load() < 20000; ++i) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "traffic did not flow";
    ASSERT_TRUE(h->app().addFlow(rule).ok());
    appliance::FlowRule other = rule;
    other.dst_port = static_cast<uint16_t>(6000 + i % 100);
    other.dscp = 12;
    ASSERT_TRUE(h->app().addFlow(other).ok());
    if (i % 3 == 0) {
      ASSERT_TRUE(h->app().addFlow(replacement).ok());  // replace in place
    }
    if (i % 2 == 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(20));  // let the rule be seen
    }
    EXPECT_TRUE(h->app().removeFlow(rule));
    EXPECT_TRUE(h->app().removeFlow(other));
    h->app().housekeeping();
    if (i % 2 == 1) {
      // Let the absence be seen too: without this pause the rule is missing
      // for only a few microseconds per round, and on a loaded machine no
      // packet may fall into those windows at all.
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }
  ASSERT_TRUE(h->app().addFlow(rule).ok());
  done = true;
  traffic.join();
  // What was still in flight may carry either mark.
  for (const auto& f : h->receive(Side::Inside)) {
    const uint8_t d = dscpOf(f, 14);
    (d == 46 ? n_marked : d == 0 ? n_unmarked : n_bad)++;
    if (d == kPoisonedOnWire) {
      ++n_poisoned;
    }
  }
  EXPECT_EQ(n_poisoned.load(), 0u) << "a worker read a flow entry after its grace period";
  EXPECT_EQ(n_bad.load(), 0u);
  EXPECT_GT(n_marked.load(), 0u);
  EXPECT_GT(n_unmarked.load(), 0u);
  const auto t = h->totals(Side::Inside);
  EXPECT_EQ(n_marked + n_unmarked, n_sent.load())
      << "no packet lost: rx " << t.rx_pkts << " tx " << t.tx_pkts << " dropped "
      << t.droppedTotal() << " tx_full " << drops(t, DropReason::TxFull);
  // After the last add every packet is marked.
  h->send(Side::Inside, Frames(8, buildFrame(FrameSpec{})));
  const Frames last = h->receive(Side::Inside);
  ASSERT_EQ(last.size(), 8u);
  for (const auto& f : last) {
    EXPECT_EQ(dscpOf(f, 14), 46);
  }
  EXPECT_EQ(h->app().flowCount(), 1u);
  expectConservation(*h);
}

}  // namespace
}  // namespace qos::test
