// Unit tests for the admission engine over the example two-LAN topology:
//
//   lan-a (class-enabled) ── wan (class-enabled, SLA carrier-x) ── lan-b (no DiffServ)
//
//   lan-a: EF dscp 46 2mbit, AF41 dscp 34 20mbit, BE dscp 0 uncapped
//   wan:   EF dscp 40 10mbit, AF41 dscp 26 50mbit, BE dscp 0 uncapped
//   carrier-x over wan: EF 1mbit, AF41 10mbit
//   voip:  udp dport 16384-32767; EF 100kbit 10kB, else AF41 100kbit 10kB
//   video: AF41 4mbit 64kB, else AF41 1500kbit 32kB, else AF41 500kbit 16kB
#include "manager/admission/admission.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "control/common/ip_prefix.h"
#include "manager/config/manager_config.h"
#include "manager/topology/topology.h"

namespace qos::manager {
namespace {

constexpr uint8_t kUdp = 17;
constexpr uint8_t kTcp = 6;
constexpr uint64_t kKbit = 1000;
constexpr uint64_t kMbit = 1000 * kKbit;
constexpr uint64_t kNowMs = 1'700'000'000'000;

IpAddress ip(std::string_view text) {
  const Result<IpAddress> addr = parseIpAddress(text);
  EXPECT_TRUE(addr.ok()) << text;
  return addr.ok() ? *addr : IpAddress{};
}

IpPrefix prefix(std::string_view text) {
  const Result<IpPrefix> p = parseIpPrefix(text);
  EXPECT_TRUE(p.ok()) << text;
  return p.ok() ? *p : IpPrefix{};
}

ManagerConfig exampleConfig() {
  ManagerConfig config;
  config.lease_sec = 60;
  config.max_lease_sec = 86400;

  NetworkConfig lan_a;
  lan_a.name = "lan-a";
  lan_a.prefixes = {prefix("198.18.1.0/24"), prefix("2001:db8:a::/48")};
  lan_a.class_enabled = true;
  lan_a.classes = {{"EF", {46, 2 * kMbit}}, {"AF41", {34, 20 * kMbit}}, {"BE", {0, std::nullopt}}};

  NetworkConfig wan;
  wan.name = "wan";
  wan.class_enabled = true;
  wan.classes = {{"EF", {40, 10 * kMbit}}, {"AF41", {26, 50 * kMbit}}, {"BE", {0, std::nullopt}}};

  NetworkConfig lan_b;
  lan_b.name = "lan-b";
  lan_b.prefixes = {prefix("198.19.1.0/24")};

  config.networks = {lan_a, wan, lan_b};
  config.links = {{"lan-a", "wan"}, {"wan", "lan-b"}};
  config.slas = {{"carrier-x", "wan", {{"EF", 1 * kMbit}, {"AF41", 10 * kMbit}}}};

  ApplicationConfig voip;
  voip.name = "voip";
  voip.match = AppMatch{kUdp, PortRange{}, PortRange{16384, 32767}};
  voip.default_profile = {"EF", 100 * kKbit, 10000};
  voip.alternates = {{"AF41", 100 * kKbit, 10000}};

  ApplicationConfig video;
  video.name = "video";
  video.default_profile = {"AF41", 4 * kMbit, 64000};
  video.alternates = {{"AF41", 1500 * kKbit, 32000}, {"AF41", 500 * kKbit, 16000}};

  config.applications = {voip, video};
  return config;
}

/** Config, topology and engine, built in that order and owned together. */
struct World {
  explicit World(ManagerConfig c)
      : config(std::move(c)), topology(config), engine(config, topology) {}
  ManagerConfig config;
  Topology topology;
  AdmissionEngine engine;
};

class AdmissionTest : public ::testing::Test {
protected:
  AdmissionTest() : world_(std::make_unique<World>(exampleConfig())) {}

  /** Rebuilds the world from a changed config (the old one is dropped). */
  void reset(ManagerConfig config) { world_ = std::make_unique<World>(std::move(config)); }

  AdmissionEngine& engine() { return world_->engine; }

  static AdmissionRequest request(std::string app, std::string_view src, std::string_view dst,
                                  uint16_t dst_port = 20000, uint8_t protocol = kUdp) {
    AdmissionRequest r;
    r.application = std::move(app);
    r.flow.src = ip(src);
    r.flow.dst = ip(dst);
    r.flow.src_port = 5004;
    r.flow.dst_port = dst_port;
    r.flow.protocol = protocol;
    return r;
  }

  /** Admits and expects a grant; returns it (a default Grant on failure). */
  Grant grant(const AdmissionRequest& r, uint64_t now_ms = kNowMs) {
    AdmissionResult result = engine().admit(r, now_ms).result;
    if (const auto* denial = std::get_if<Denial>(&result)) {
      ADD_FAILURE() << "denied (" << denyReasonName(denial->reason) << "): " << denial->message;
      return Grant{};
    }
    return std::get<Grant>(std::move(result));
  }

  /** Admits and expects a denial; returns it. */
  Denial denial(const AdmissionRequest& r, uint64_t now_ms = kNowMs) {
    AdmissionResult result = engine().admit(r, now_ms).result;
    if (const auto* g = std::get_if<Grant>(&result)) {
      ADD_FAILURE() << "granted flow " << g->flow_id << " profile " << g->profile_index;
      return Denial{};
    }
    return std::get<Denial>(std::move(result));
  }

  /** The usage line of (owner, class); a failure and an empty line if missing. */
  ClassUsage usageOf(std::string_view owner, std::string_view class_name) {
    for (const ClassUsage& u : engine().usage()) {
      if (u.owner == owner && u.class_name == class_name) {
        return u;
      }
    }
    ADD_FAILURE() << "no usage line for " << owner << "/" << class_name;
    return ClassUsage{};
  }

  uint64_t reserved(std::string_view owner, std::string_view class_name) {
    return usageOf(owner, class_name).reserved_bps;
  }

  void expectNothingReserved() {
    for (const ClassUsage& u : engine().usage()) {
      EXPECT_EQ(u.reserved_bps, 0u) << u.owner << "/" << u.class_name;
      EXPECT_EQ(u.flows, 0u) << u.owner << "/" << u.class_name;
    }
  }

  std::unique_ptr<World> world_;
};

// Hosts.
constexpr std::string_view kA1 = "198.18.1.10";
constexpr std::string_view kA2 = "198.18.1.11";
constexpr std::string_view kB1 = "198.19.1.10";

TEST_F(AdmissionTest, DefaultProfileGrantedWithDscpMeterPathAndLease) {
  const Grant g = grant(request("voip", kA1, kB1));
  EXPECT_EQ(g.flow_id, 1u);
  EXPECT_EQ(g.application, "voip");
  EXPECT_EQ(g.profile_index, 0u);
  EXPECT_EQ(g.profile, (Profile{"EF", 100 * kKbit, 10000}));
  EXPECT_EQ(g.dscp, 46);
  EXPECT_FALSE(g.reverse_dscp.has_value());
  EXPECT_EQ(g.path, (std::vector<std::string>{"lan-a", "wan", "lan-b"}));
  EXPECT_TRUE(g.reverse_path.empty());
  EXPECT_EQ(g.meter, (MeterParams{100000, 10000, 10000}));
  EXPECT_EQ(g.expires_at_ms, kNowMs + uint64_t{60} * 1000);
  EXPECT_EQ(g.flow.dst_port, 20000);

  EXPECT_EQ(usageOf("lan-a", "EF").reserved_bps, 100 * kKbit);
  EXPECT_EQ(usageOf("lan-a", "EF").flows, 1u);
  EXPECT_EQ(reserved("wan", "EF"), 100 * kKbit);
  EXPECT_EQ(reserved("carrier-x", "EF"), 100 * kKbit);
  EXPECT_EQ(reserved("lan-a", "AF41"), 0u);
  EXPECT_EQ(engine().flowCount(), 1u);
  ASSERT_TRUE(engine().flow(1).has_value());
  EXPECT_EQ(*engine().flow(1), g);
}

TEST_F(AdmissionTest, UsageListsClassEnabledNetworksThenSlasInOrder) {
  const std::vector<ClassUsage> usage = engine().usage();
  std::vector<std::string> lines;
  lines.reserve(usage.size());
  for (const ClassUsage& u : usage) {
    lines.push_back(u.owner + "/" + u.class_name);
  }
  // lan-b is not class-enabled: no line.  Classes in name order.
  EXPECT_EQ(lines,
            (std::vector<std::string>{"lan-a/AF41", "lan-a/BE", "lan-a/EF", "wan/AF41", "wan/BE",
                                      "wan/EF", "carrier-x/AF41", "carrier-x/EF"}));
  ASSERT_EQ(usage.size(), 8u);
  EXPECT_EQ(usage[2].kind, UsageKind::Network);
  EXPECT_EQ(usage[2].network, "lan-a");
  EXPECT_EQ(usage[2].dscp, 46);
  EXPECT_EQ(usage[2].capacity_bps, 2 * kMbit);
  EXPECT_FALSE(usage[1].capacity_bps.has_value());
  EXPECT_EQ(usage[5].dscp, 40);
  EXPECT_EQ(usage[7].kind, UsageKind::Sla);
  EXPECT_EQ(usage[7].network, "wan");
  EXPECT_EQ(usage[7].capacity_bps, 1 * kMbit);
}

TEST_F(AdmissionTest, VoipFallsBackToAf41WhenEfIsFullOnTheLan) {
  // Inside lan-a: 20 x 100kbit fill EF's 2mbit exactly (equal fits).
  for (int i = 0; i < 20; ++i) {
    const Grant g = grant(request("voip", kA1, kA2));
    EXPECT_EQ(g.profile_index, 0u) << i;
    EXPECT_EQ(g.path, (std::vector<std::string>{"lan-a"}));
  }
  EXPECT_EQ(reserved("lan-a", "EF"), 2 * kMbit);
  EXPECT_EQ(reserved("wan", "EF"), 0u);

  const Grant g = grant(request("voip", kA1, kA2));
  EXPECT_EQ(g.profile_index, 1u);
  EXPECT_EQ(g.profile.class_name, "AF41");
  EXPECT_EQ(g.dscp, 34);
  EXPECT_EQ(reserved("lan-a", "EF"), 2 * kMbit);
  EXPECT_EQ(reserved("lan-a", "AF41"), 100 * kKbit);
}

TEST_F(AdmissionTest, VideoFallsToSecondThenThirdAlternateThenIsDenied) {
  // carrier-x allows 10mbit of AF41 over wan, less than wan's 50mbit or lan-a's 20mbit.
  EXPECT_EQ(grant(request("video", kA1, kB1)).profile_index, 0u);  // 4mbit
  EXPECT_EQ(grant(request("video", kA1, kB1)).profile_index, 0u);  // 8mbit
  Grant g = grant(request("video", kA1, kB1));                     // 4 more would be 12
  EXPECT_EQ(g.profile_index, 1u);
  EXPECT_EQ(g.profile.rate_bps, 1500 * kKbit);
  EXPECT_EQ(g.meter, (MeterParams{1500000, 32000, 32000}));
  g = grant(request("video", kA1, kB1));  // 9.5mbit: 1.5 more would be 11, 0.5 makes 10
  EXPECT_EQ(g.profile_index, 2u);
  EXPECT_EQ(g.profile.rate_bps, 500 * kKbit);
  EXPECT_EQ(g.dscp, 34);
  EXPECT_EQ(reserved("carrier-x", "AF41"), 10 * kMbit);
  EXPECT_EQ(reserved("wan", "AF41"), 10 * kMbit);
  EXPECT_EQ(reserved("lan-a", "AF41"), 10 * kMbit);

  const Denial d = denial(request("video", kA1, kB1));
  EXPECT_EQ(d.reason, DenyReason::NoCapacity);
  EXPECT_EQ(d.message,
            "no capacity: AF41 4mbit on SLA carrier-x (10mbit of 10mbit reserved); "
            "AF41 1500kbit on SLA carrier-x (10mbit of 10mbit reserved); "
            "AF41 500kbit on SLA carrier-x (10mbit of 10mbit reserved)");
  EXPECT_EQ(engine().flowCount(), 4u);
  EXPECT_EQ(reserved("carrier-x", "AF41"), 10 * kMbit);

  // Inside lan-a the SLA does not apply: lan-a still has 10mbit of AF41.
  EXPECT_EQ(grant(request("video", kA1, kA2)).profile_index, 0u);
}

TEST_F(AdmissionTest, DenialNamesTheFirstRefusingNetworkForEveryProfileTried) {
  for (int i = 0; i < 20; ++i) {
    grant(request("voip", kA1, kA2));  // EF on lan-a full
  }
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(grant(request("video", kA1, kA2)).profile_index, 0u);  // AF41 on lan-a full
  }
  const Denial d = denial(request("voip", kA1, kB1));
  EXPECT_EQ(d.reason, DenyReason::NoCapacity);
  EXPECT_EQ(d.message,
            "no capacity: EF 100kbit on lan-a (2mbit of 2mbit reserved); "
            "AF41 100kbit on lan-a (20mbit of 20mbit reserved)");
  // Nothing was reserved further along the path by the refused attempt.
  EXPECT_EQ(reserved("wan", "EF"), 0u);
  EXPECT_EQ(reserved("carrier-x", "EF"), 0u);
  EXPECT_EQ(reserved("wan", "AF41"), 0u);
}

TEST_F(AdmissionTest, SlaRateBindsBelowNetworkCapacity) {
  // carrier-x EF 1mbit < wan EF 10mbit: ten voip flows across the wan, then AF41.
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(grant(request("voip", kA1, kB1)).profile_index, 0u) << i;
  }
  const Grant g = grant(request("voip", kA1, kB1));
  EXPECT_EQ(g.profile_index, 1u);
  EXPECT_EQ(reserved("carrier-x", "EF"), 1 * kMbit);
  EXPECT_EQ(reserved("wan", "EF"), 1 * kMbit);
  EXPECT_EQ(reserved("lan-a", "EF"), 1 * kMbit);
  EXPECT_EQ(usageOf("carrier-x", "EF").flows, 10u);
  EXPECT_EQ(reserved("carrier-x", "AF41"), 100 * kKbit);
}

TEST_F(AdmissionTest, ClassUnavailableOnlyWhenNoProfileClassExistsOnThePath) {
  ManagerConfig config = exampleConfig();
  NetworkConfig lan_c;
  lan_c.name = "lan-c";
  lan_c.prefixes = {prefix("198.18.3.0/24")};
  lan_c.class_enabled = true;
  lan_c.classes = {{"BE", {0, std::nullopt}}};
  NetworkConfig lan_d;
  lan_d.name = "lan-d";
  lan_d.prefixes = {prefix("198.18.4.0/24")};
  lan_d.class_enabled = true;
  lan_d.classes = {{"BE", {0, std::nullopt}}, {"AF41", {18, 100 * kKbit}}};
  config.networks.push_back(lan_c);
  config.networks.push_back(lan_d);
  config.links.push_back({"wan", "lan-c"});
  config.links.push_back({"wan", "lan-d"});
  reset(std::move(config));

  Denial d = denial(request("voip", kA1, "198.18.3.1"));
  EXPECT_EQ(d.reason, DenyReason::ClassUnavailable);
  EXPECT_EQ(d.message,
            "class unavailable: EF 100kbit: no class EF on lan-c; "
            "AF41 100kbit: no class AF41 on lan-c");
  expectNothingReserved();

  // lan-d has AF41 but not EF: the alternate is granted...
  const Grant g = grant(request("voip", kA1, "198.18.4.1"));
  EXPECT_EQ(g.profile_index, 1u);
  EXPECT_EQ(g.dscp, 34);  // lan-a's AF41: the first class-enabled network
  EXPECT_EQ(reserved("lan-d", "AF41"), 100 * kKbit);
  // ...and once it is full the reason is capacity, not class.
  d = denial(request("voip", kA1, "198.18.4.1"));
  EXPECT_EQ(d.reason, DenyReason::NoCapacity);
  EXPECT_EQ(d.message,
            "no capacity: EF 100kbit: no class EF on lan-d; "
            "AF41 100kbit on lan-d (100kbit of 100kbit reserved)");
}

TEST_F(AdmissionTest, UnknownApplication) {
  Denial d = denial(request("telepresence", kA1, kB1));
  EXPECT_EQ(d.reason, DenyReason::UnknownApplication);
  EXPECT_NE(d.message.find("telepresence"), std::string::npos) << d.message;

  d = denial(request("", kA1, kB1, 80, kTcp));
  EXPECT_EQ(d.reason, DenyReason::UnknownApplication);
  expectNothingReserved();
}

TEST_F(AdmissionTest, IdentifiesTheApplicationByProtocolAndPorts) {
  Grant g = grant(request("", kA1, kB1, 16384, kUdp));
  EXPECT_EQ(g.application, "voip");
  g = grant(request("", kA1, kB1, 32767, kUdp));
  EXPECT_EQ(g.application, "voip");
  EXPECT_EQ(denial(request("", kA1, kB1, 16383, kUdp)).reason, DenyReason::UnknownApplication);
  EXPECT_EQ(denial(request("", kA1, kB1, 32768, kUdp)).reason, DenyReason::UnknownApplication);
  EXPECT_EQ(denial(request("", kA1, kB1, 20000, kTcp)).reason, DenyReason::UnknownApplication);

  // First match in config order wins; protocol 0 matches any protocol.
  ManagerConfig config = exampleConfig();
  config.applications[1].match = AppMatch{0, PortRange{}, PortRange{1, 40000}};
  reset(std::move(config));
  EXPECT_EQ(grant(request("", kA1, kB1, 20000, kUdp)).application, "voip");
  EXPECT_EQ(grant(request("", kA1, kB1, 20000, kTcp)).application, "video");
  EXPECT_EQ(grant(request("", kA1, kB1, 80, kUdp)).application, "video");
  EXPECT_EQ(denial(request("", kA1, kB1, 40001, kUdp)).reason, DenyReason::UnknownApplication);
}

TEST_F(AdmissionTest, DscpIsThatOfTheFirstClassEnabledNetworkOnThePath) {
  const Grant a_to_b = grant(request("voip", kA1, kB1));
  EXPECT_EQ(a_to_b.dscp, 46);  // lan-a's EF

  // lan-b is not class-enabled: the first class-enabled network is wan.
  const Grant b_to_a = grant(request("voip", kB1, kA1));
  EXPECT_EQ(b_to_a.dscp, 40);
  EXPECT_EQ(b_to_a.path, (std::vector<std::string>{"lan-b", "wan", "lan-a"}));
  EXPECT_EQ(reserved("wan", "EF"), 200 * kKbit);
}

TEST_F(AdmissionTest, FlowWithoutClassEnabledNetworksGetsDscpZeroAndReservesNothing) {
  ManagerConfig config = exampleConfig();
  NetworkConfig lan_e;
  lan_e.name = "lan-e";
  lan_e.prefixes = {prefix("198.19.2.0/24")};
  config.networks.push_back(lan_e);
  config.links.push_back({"lan-b", "lan-e"});
  reset(std::move(config));

  const Grant g = grant(request("video", kB1, "198.19.2.1"));
  EXPECT_EQ(g.dscp, 0);
  EXPECT_EQ(g.profile_index, 0u);
  EXPECT_EQ(g.path, (std::vector<std::string>{"lan-b", "lan-e"}));
  const Grant same_lan = grant(request("voip", kB1, "198.19.1.11"));
  EXPECT_EQ(same_lan.dscp, 0);
  EXPECT_EQ(same_lan.profile_index, 0u);
  expectNothingReserved();
  EXPECT_EQ(engine().flowCount(), 2u);
  ASSERT_TRUE(engine().release(g.flow_id).has_value());
  expectNothingReserved();
}

TEST_F(AdmissionTest, BidirectionalReservesBothDirectionsAndCarriesTheReverseDscp) {
  AdmissionRequest r = request("voip", kA1, kB1);
  r.bidirectional = true;
  const Grant g = grant(r);
  EXPECT_TRUE(g.bidirectional);
  EXPECT_EQ(g.dscp, 46);
  ASSERT_TRUE(g.reverse_dscp.has_value());
  EXPECT_EQ(*g.reverse_dscp, 40);  // from lan-b, the first class-enabled network is wan
  EXPECT_EQ(g.reverse_path, (std::vector<std::string>{"lan-b", "wan", "lan-a"}));
  // Capacity is shared by both directions: each network and SLA crossed both ways holds 2x.
  EXPECT_EQ(reserved("lan-a", "EF"), 200 * kKbit);
  EXPECT_EQ(reserved("wan", "EF"), 200 * kKbit);
  EXPECT_EQ(reserved("carrier-x", "EF"), 200 * kKbit);
  EXPECT_EQ(usageOf("lan-a", "EF").flows, 1u);

  ASSERT_TRUE(engine().release(g.flow_id).has_value());
  expectNothingReserved();
}

TEST_F(AdmissionTest, BidirectionalIsAllOrNothing) {
  ManagerConfig config = exampleConfig();
  config.applications[0].alternates.clear();  // voip: EF or nothing
  reset(std::move(config));
  for (int i = 0; i < 9; ++i) {
    grant(request("voip", kA1, kB1));  // 900kbit of carrier-x's 1mbit
  }
  AdmissionRequest r = request("voip", kA1, kB1);
  r.bidirectional = true;
  // The forward direction alone would fit; with the reverse it needs 200kbit more.
  const Denial d = denial(r);
  EXPECT_EQ(d.reason, DenyReason::NoCapacity);
  EXPECT_EQ(d.message,
            "no capacity: EF 100kbit on SLA carrier-x (900kbit of 1mbit reserved, crossed 2 times "
            "by the flow)");
  EXPECT_EQ(reserved("lan-a", "EF"), 900 * kKbit);
  EXPECT_EQ(reserved("wan", "EF"), 900 * kKbit);
  EXPECT_EQ(reserved("carrier-x", "EF"), 900 * kKbit);
  EXPECT_EQ(engine().flowCount(), 9u);

  r.bidirectional = false;
  EXPECT_EQ(grant(r).profile_index, 0u);
  EXPECT_EQ(reserved("carrier-x", "EF"), 1 * kMbit);
}

TEST_F(AdmissionTest, BidirectionalInsideOneLanCountsTheLanTwice) {
  for (int i = 0; i < 19; ++i) {
    grant(request("voip", kA1, kA2));  // 1900kbit of 2mbit
  }
  AdmissionRequest r = request("voip", kA1, kA2);
  r.bidirectional = true;
  const Grant g = grant(r);  // EF needs 200kbit: no; AF41 does.
  EXPECT_EQ(g.profile_index, 1u);
  EXPECT_EQ(*g.reverse_dscp, 34);
  EXPECT_EQ(reserved("lan-a", "AF41"), 200 * kKbit);
  EXPECT_EQ(reserved("lan-a", "EF"), 1900 * kKbit);
}

TEST_F(AdmissionTest, ReleaseFreesEveryNetworkAndSla) {
  std::vector<uint64_t> ids;
  AdmissionRequest bidir = request("voip", kA1, kB1);
  bidir.bidirectional = true;
  ids.push_back(grant(bidir).flow_id);
  ids.push_back(grant(request("voip", kB1, kA1)).flow_id);
  ids.push_back(grant(request("video", kA1, kB1)).flow_id);
  ids.push_back(grant(request("video", kA1, kA2)).flow_id);
  ids.push_back(grant(request("video", "2001:db8:a::1", "2001:db8:a::2")).flow_id);
  EXPECT_EQ(reserved("carrier-x", "AF41"), 4 * kMbit);
  EXPECT_EQ(reserved("lan-a", "AF41"), 12 * kMbit);

  for (const uint64_t id : ids) {
    const std::optional<Grant> released = engine().release(id);
    ASSERT_TRUE(released.has_value());
    EXPECT_EQ(released->flow_id, id);
  }
  expectNothingReserved();
  EXPECT_EQ(engine().flowCount(), 0u);
  EXPECT_FALSE(engine().release(ids[0]).has_value());
  EXPECT_FALSE(engine().release(12345).has_value());
  EXPECT_FALSE(engine().flow(ids[0]).has_value());
}

TEST_F(AdmissionTest, LeaseExpiresAtExactlyItsExpiryAndNotBefore) {
  const Grant g = grant(request("voip", kA1, kB1), 1000);
  EXPECT_EQ(g.expires_at_ms, 61000u);
  AdmissionRequest shorter = request("video", kA1, kB1);
  shorter.lease_sec = 30;
  const Grant s = grant(shorter, 1000);
  EXPECT_EQ(s.expires_at_ms, 31000u);

  EXPECT_TRUE(engine().expire(30999).empty());
  std::vector<Grant> expired = engine().expire(31000);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].flow_id, s.flow_id);
  EXPECT_EQ(reserved("carrier-x", "AF41"), 0u);

  EXPECT_TRUE(engine().expire(60999).empty());
  EXPECT_EQ(reserved("carrier-x", "EF"), 100 * kKbit);
  expired = engine().expire(61000);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].flow_id, g.flow_id);
  expectNothingReserved();
  EXPECT_EQ(engine().flowCount(), 0u);
  EXPECT_TRUE(engine().expire(1'000'000).empty());
}

TEST_F(AdmissionTest, ExpireReturnsEveryLapsedGrantInExpiryOrder) {
  for (uint32_t lease = 5; lease >= 1; --lease) {
    AdmissionRequest r = request("voip", kA1, kA2);
    r.lease_sec = lease;
    grant(r, 0);
  }
  const std::vector<Grant> expired = engine().expire(4000);
  ASSERT_EQ(expired.size(), 4u);
  for (size_t i = 1; i < expired.size(); ++i) {
    EXPECT_LT(expired[i - 1].expires_at_ms, expired[i].expires_at_ms);
  }
  EXPECT_EQ(engine().flowCount(), 1u);
  EXPECT_EQ(reserved("lan-a", "EF"), 100 * kKbit);
}

TEST_F(AdmissionTest, LeaseLimits) {
  AdmissionRequest r = request("voip", kA1, kB1);
  r.lease_sec = 86401;
  const Denial d = denial(r);
  EXPECT_EQ(d.reason, DenyReason::BadRequest);
  EXPECT_NE(d.message.find("86400"), std::string::npos) << d.message;
  r.lease_sec = 86400;
  EXPECT_EQ(grant(r, 0).expires_at_ms, uint64_t{86400} * 1000);
}

TEST_F(AdmissionTest, RefreshExtendsTheLease) {
  const Grant g = grant(request("voip", kA1, kB1), 1000);
  const std::optional<uint64_t> expiry = engine().refresh(g.flow_id, 0, 50000);
  ASSERT_TRUE(expiry.has_value());
  EXPECT_EQ(*expiry, 110000u);
  EXPECT_EQ(engine().flow(g.flow_id)->expires_at_ms, 110000u);
  EXPECT_TRUE(engine().expire(61000).empty());
  EXPECT_TRUE(engine().expire(109999).empty());
  ASSERT_EQ(engine().expire(110000).size(), 1u);
  expectNothingReserved();
  EXPECT_FALSE(engine().refresh(g.flow_id, 0, 120000).has_value());
}

TEST_F(AdmissionTest, RefreshCanShortenAndIsCappedAtTheMaximum) {
  const Grant g = grant(request("voip", kA1, kB1), 0);
  EXPECT_EQ(engine().refresh(g.flow_id, 10, 1000), 11000u);
  EXPECT_EQ(engine().expire(11000).size(), 1u);

  const Grant h = grant(request("voip", kA1, kB1), 0);
  EXPECT_EQ(engine().refresh(h.flow_id, 100000, 0), uint64_t{86400} * 1000);
  EXPECT_TRUE(engine().expire(uint64_t{86400} * 1000 - 1).empty());
  EXPECT_EQ(engine().expire(uint64_t{86400} * 1000).size(), 1u);
}

TEST_F(AdmissionTest, ManyReleasesAndRefreshesKeepExpiryCorrect) {
  // Enough churn to make the lazily-deleted expiry heap rebuild itself.
  for (int i = 0; i < 5000; ++i) {
    const Grant g = grant(request("voip", kA1, kA2), static_cast<uint64_t>(i));
    ASSERT_TRUE(engine().release(g.flow_id).has_value());
  }
  const Grant keep = grant(request("voip", kA1, kA2), 0);
  for (uint64_t t = 1; t <= 3000; ++t) {
    engine().refresh(keep.flow_id, 1, t);
  }
  EXPECT_TRUE(engine().expire(3999).empty());
  const std::vector<Grant> expired = engine().expire(4000);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].flow_id, keep.flow_id);
  expectNothingReserved();
}

TEST_F(AdmissionTest, IdempotentRetryReturnsTheSameGrantAndReservesOnce) {
  AdmissionRequest r = request("voip", kA1, kB1);
  r.client_id = "host-a";
  r.request_id = "req-1";
  const Admission first_admission = engine().admit(r, 1000);
  EXPECT_FALSE(first_admission.retried);
  const Grant first = std::get<Grant>(first_admission.result);
  const Admission again = engine().admit(r, 2000);
  EXPECT_TRUE(again.retried);
  EXPECT_EQ(std::get<Grant>(again.result), first);
  EXPECT_EQ(reserved("carrier-x", "EF"), 100 * kKbit);
  EXPECT_EQ(engine().flowCount(), 1u);

  // Same key, different flow: still the first grant (documented).
  AdmissionRequest changed = r;
  changed.application = "video";
  changed.flow.dst = ip(kA2);
  EXPECT_EQ(grant(changed), first);
  EXPECT_EQ(engine().flowCount(), 1u);

  // Another request id, or another client, is a new flow.
  AdmissionRequest other = r;
  other.request_id = "req-2";
  EXPECT_NE(grant(other).flow_id, first.flow_id);
  other = r;
  other.client_id = "host-b";
  EXPECT_NE(grant(other).flow_id, first.flow_id);
  EXPECT_EQ(reserved("carrier-x", "EF"), 300 * kKbit);

  // Without a request id there is no idempotency.
  AdmissionRequest anonymous = r;
  anonymous.request_id.clear();
  const uint64_t a1 = grant(anonymous).flow_id;
  const uint64_t a2 = grant(anonymous).flow_id;
  EXPECT_NE(a1, a2);

  // Once released, the key is forgotten.
  ASSERT_TRUE(engine().release(first.flow_id).has_value());
  const Grant renewed = grant(r);
  EXPECT_NE(renewed.flow_id, first.flow_id);
  EXPECT_EQ(grant(r).flow_id, renewed.flow_id);
}

TEST_F(AdmissionTest, IdempotencyKeyIsForgottenAfterExpiry) {
  AdmissionRequest r = request("voip", kA1, kB1);
  r.client_id = "host-a";
  r.request_id = "req-1";
  const Grant first = grant(r, 0);
  ASSERT_EQ(engine().expire(first.expires_at_ms).size(), 1u);
  EXPECT_NE(grant(r, first.expires_at_ms).flow_id, first.flow_id);
}

TEST_F(AdmissionTest, FlowIdsStartAtOneAndOnlyIncrease) {
  EXPECT_EQ(engine().nextFlowId(), 1u);
  const uint64_t a = grant(request("voip", kA1, kB1)).flow_id;
  EXPECT_EQ(a, 1u);
  EXPECT_EQ(engine().nextFlowId(), 2u);
  ASSERT_TRUE(engine().release(a).has_value());
  EXPECT_EQ(grant(request("voip", kA1, kB1)).flow_id, 2u);
  denial(request("nope", kA1, kB1));
  EXPECT_EQ(engine().nextFlowId(), 3u);

  const std::vector<Grant> all = engine().flows();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].flow_id, 2u);
}

TEST_F(AdmissionTest, FlowsAreListedInFlowIdOrder) {
  for (int i = 0; i < 50; ++i) {
    grant(request("voip", kA1, kA2));
  }
  const std::vector<Grant> all = engine().flows();
  ASSERT_EQ(all.size(), 20u + 30u);
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].flow_id, i + 1);
  }
}

TEST_F(AdmissionTest, RestoreReinstallsGrantsAndMovesTheNextFlowId) {
  AdmissionRequest bidir = request("voip", kA1, kB1);
  bidir.bidirectional = true;
  bidir.client_id = "host-a";
  bidir.request_id = "r1";
  grant(bidir);
  grant(request("video", kA1, kB1));
  grant(request("video", kA1, kB1));
  const uint64_t released = grant(request("voip", kA1, kA2)).flow_id;
  grant(request("video", kA1, kB1));  // 1500kbit alternate
  ASSERT_TRUE(engine().release(released).has_value());
  const std::vector<Grant> stored = engine().flows();
  const std::vector<ClassUsage> usage = engine().usage();

  // A fresh engine, as after a restart, restores in any order.
  reset(exampleConfig());
  for (auto it = stored.rbegin(); it != stored.rend(); ++it) {
    const Result<void> result = engine().restore(*it);
    EXPECT_TRUE(result.ok()) << result.error().message;
  }
  EXPECT_EQ(engine().flows(), stored);
  const std::vector<ClassUsage> restored_usage = engine().usage();
  ASSERT_EQ(restored_usage.size(), usage.size());
  for (size_t i = 0; i < usage.size(); ++i) {
    EXPECT_EQ(restored_usage[i].reserved_bps, usage[i].reserved_bps) << usage[i].owner;
    EXPECT_EQ(restored_usage[i].flows, usage[i].flows) << usage[i].owner;
  }
  EXPECT_EQ(engine().nextFlowId(), 6u);
  EXPECT_EQ(grant(request("voip", kA1, kA2)).flow_id, 6u);

  // Restored grants keep their idempotency key and their lease: the four
  // restored and flow 6 (admitted at the same time) lapse together.
  ASSERT_EQ(stored.size(), 4u);
  EXPECT_EQ(grant(bidir).flow_id, 1u);
  EXPECT_EQ(engine().expire(stored[0].expires_at_ms).size(), 5u);
  expectNothingReserved();
}

TEST_F(AdmissionTest, RestoreReservesTheStoredProfileOverTheCurrentPath) {
  Grant stored;
  stored.flow_id = 41;
  stored.application = "voip";
  stored.profile_index = 1;
  stored.profile = {"AF41", 300 * kKbit, 10000};  // not what voip's config says now
  stored.flow = request("voip", kA1, kB1).flow;
  stored.path = {"somewhere", "else"};
  stored.dscp = 12;
  stored.expires_at_ms = 5000;
  ASSERT_TRUE(engine().restore(stored).ok());
  const std::optional<Grant> g = engine().flow(41);
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->profile, stored.profile);
  EXPECT_EQ(g->path, (std::vector<std::string>{"lan-a", "wan", "lan-b"}));
  EXPECT_EQ(g->dscp, 34);
  EXPECT_EQ(g->meter, (MeterParams{300000, 10000, 10000}));
  EXPECT_EQ(g->expires_at_ms, 5000u);
  EXPECT_EQ(reserved("carrier-x", "AF41"), 300 * kKbit);
  EXPECT_EQ(engine().nextFlowId(), 42u);

  // The same flow id twice is refused.
  EXPECT_FALSE(engine().restore(stored).ok());
  // A lower id does not move the next id back.
  stored.flow_id = 7;
  ASSERT_TRUE(engine().restore(stored).ok());
  EXPECT_EQ(engine().nextFlowId(), 42u);
}

TEST_F(AdmissionTest, RestoreThatNoLongerFitsReservesNothing) {
  Grant stored;
  stored.flow_id = 3;
  stored.application = "voip";
  stored.flow = request("voip", kA1, kB1).flow;
  stored.bidirectional = true;
  stored.profile = {"EF", 600 * kKbit, 10000};  // 2 x 600kbit > carrier-x's 1mbit
  Result<void> result = engine().restore(stored);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("carrier-x"), std::string::npos) << result.error().message;
  expectNothingReserved();
  EXPECT_EQ(engine().flowCount(), 0u);
  EXPECT_EQ(engine().nextFlowId(), 1u);

  stored.bidirectional = false;
  stored.profile.class_name = "CS5";  // no longer configured anywhere
  EXPECT_FALSE(engine().restore(stored).ok());

  stored.profile.class_name = "EF";
  stored.flow.dst = ip("203.0.113.1");  // no network holds it any more
  EXPECT_FALSE(engine().restore(stored).ok());
  expectNothingReserved();
  EXPECT_EQ(engine().flowCount(), 0u);
}

TEST_F(AdmissionTest, AddressChecks) {
  Denial d = denial(request("voip", kA1, "2001:db8:a::1"));
  EXPECT_EQ(d.reason, DenyReason::BadRequest);
  d = denial(request("voip", "203.0.113.1", kB1));
  EXPECT_EQ(d.reason, DenyReason::NoSourceNetwork);
  EXPECT_NE(d.message.find("203.0.113.1"), std::string::npos) << d.message;
  d = denial(request("voip", kA1, "203.0.113.1"));
  EXPECT_EQ(d.reason, DenyReason::NoDestinationNetwork);
  // lan-b has no IPv6 prefix.
  EXPECT_EQ(denial(request("voip", "2001:db8:a::1", "2001:db8:b::1")).reason,
            DenyReason::NoDestinationNetwork);
  const Grant g = grant(request("voip", "2001:db8:a::1", "2001:db8:a::2"));
  EXPECT_EQ(g.dscp, 46);
  EXPECT_EQ(reserved("lan-a", "EF"), 100 * kKbit);
}

TEST_F(AdmissionTest, NoPathBetweenUnlinkedNetworks) {
  ManagerConfig config = exampleConfig();
  NetworkConfig island;
  island.name = "island";
  island.prefixes = {prefix("198.18.9.0/24")};
  island.class_enabled = true;
  island.classes = {{"EF", {46, 1 * kMbit}}};
  config.networks.push_back(island);
  reset(std::move(config));
  const Denial d = denial(request("voip", kA1, "198.18.9.1"));
  EXPECT_EQ(d.reason, DenyReason::NoPath);
  EXPECT_NE(d.message.find("island"), std::string::npos) << d.message;
  expectNothingReserved();
}

TEST_F(AdmissionTest, MeterIsTheGrantedProfile) {
  ManagerConfig config = exampleConfig();
  config.applications[1].default_profile = {"AF41", 100001, 1500};
  reset(std::move(config));
  const Grant g = grant(request("video", kA1, kA2));
  EXPECT_EQ(g.meter, (MeterParams{100001, 1500, 1500}));
}

TEST(DenyReasonNameTest, NamesEveryReason) {
  EXPECT_EQ(denyReasonName(DenyReason::BadRequest), "bad_request");
  EXPECT_EQ(denyReasonName(DenyReason::UnknownApplication), "unknown_application");
  EXPECT_EQ(denyReasonName(DenyReason::NoSourceNetwork), "no_source_network");
  EXPECT_EQ(denyReasonName(DenyReason::NoDestinationNetwork), "no_destination_network");
  EXPECT_EQ(denyReasonName(DenyReason::NoPath), "no_path");
  EXPECT_EQ(denyReasonName(DenyReason::ClassUnavailable), "class_unavailable");
  EXPECT_EQ(denyReasonName(DenyReason::NoCapacity), "no_capacity");
}

// A reload: the new config and topology outlive the engine, as ConfigReload keeps them.
class ReconfigureTest : public AdmissionTest {
protected:
  Result<void> reconfigure(ManagerConfig config) {
    configs_.push_back(std::make_unique<ManagerConfig>(std::move(config)));
    topologies_.push_back(std::make_unique<Topology>(*configs_.back()));
    return engine().reconfigure(*configs_.back(), *topologies_.back());
  }
  std::vector<std::unique_ptr<ManagerConfig>> configs_;
  std::vector<std::unique_ptr<Topology>> topologies_;
};

TEST_F(ReconfigureTest, MoreCapacityIsAppliedAndEveryGrantKept) {
  // carrier-x holds 1 mbit of EF: ten voip flows, then the eleventh falls back to AF41.
  std::vector<Grant> granted;
  for (uint16_t port = 16384; port < 16395; ++port) {
    granted.push_back(grant(request("voip", "198.18.1.10", "198.19.1.20", port)));
  }
  ASSERT_EQ(granted.back().profile_index, 1u);

  ManagerConfig bigger = exampleConfig();
  bigger.slas[0].class_rate_bps["EF"] = 2 * kMbit;
  ASSERT_TRUE(reconfigure(bigger).ok());
  EXPECT_TRUE(engine().flows() == granted) << "same flows, ids, expiries, paths and DSCPs";
  EXPECT_EQ(usageOf("carrier-x", "EF").reserved_bps, 1 * kMbit);
  EXPECT_EQ(usageOf("carrier-x", "EF").capacity_bps, 2 * kMbit);
  EXPECT_EQ(usageOf("carrier-x", "AF41").reserved_bps, 100 * kKbit);
  // The new room is used, and flow ids go on from where they were.
  const Grant more = grant(request("voip", "198.18.1.10", "198.19.1.20", 17000));
  EXPECT_EQ(more.profile_index, 0u);
  EXPECT_EQ(more.flow_id, granted.back().flow_id + 1);
}

TEST_F(ReconfigureTest, RefusedWhenALiveGrantWouldNoLongerFitOrChange) {
  const Grant g = grant(request("voip", "198.18.1.10", "198.19.1.20", 16384));
  const std::vector<ClassUsage> usage_before = engine().usage();

  ManagerConfig smaller = exampleConfig();
  smaller.slas[0].class_rate_bps["EF"] = 50 * kKbit;  // below the 100 kbit granted
  Result<void> r = reconfigure(smaller);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("flow " + std::to_string(g.flow_id)), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("carrier-x"), std::string::npos) << r.error().message;

  ManagerConfig no_wan = exampleConfig();
  no_wan.networks.erase(no_wan.networks.begin() + 1);
  no_wan.slas.clear();
  no_wan.links = {{"lan-a", "lan-b"}};  // another path
  r = reconfigure(no_wan);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("path would change"), std::string::npos) << r.error().message;

  ManagerConfig new_dscp = exampleConfig();
  new_dscp.networks[0].classes["EF"].dscp = 44;
  r = reconfigure(new_dscp);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("DSCP would change from 46 to 44"), std::string::npos)
      << r.error().message;

  // Nothing changed: the old config still rules.
  EXPECT_TRUE(engine().flows() == std::vector<Grant>{g});
  EXPECT_EQ(engine().usage().size(), usage_before.size());
  EXPECT_EQ(usageOf("carrier-x", "EF").capacity_bps, 1 * kMbit);
  EXPECT_EQ(grant(request("voip", "198.18.1.10", "198.19.1.20", 16385)).dscp, 46);

  // Once the flow is gone, the new DSCP is accepted and used.
  ASSERT_TRUE(engine().release(g.flow_id).has_value());
  ASSERT_TRUE(engine().release(g.flow_id + 1).has_value());
  ASSERT_TRUE(reconfigure(new_dscp).ok());
  EXPECT_EQ(grant(request("voip", "198.18.1.10", "198.19.1.20", 16386)).dscp, 44);
}

}  // namespace
}  // namespace qos::manager
