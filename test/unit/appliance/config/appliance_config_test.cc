// The appliance config loader: what it accepts, and that every refusal is
// one line naming file:line:column and the key.
#include "appliance/config/appliance_config.h"

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <unistd.h>

namespace qos::appliance {
namespace {

constexpr const char* kPair = R"([[pair]]
inside = "net_ring0"
outside = "net_ring1"
)";

Result<ApplianceConfig> parse(const std::string& body) {
  return parseApplianceConfig(std::string(kPair) + body, "t.toml");
}

// The error for @p body, which must be refused.
std::string errorOf(const std::string& body) {
  auto r = parse(body);
  EXPECT_FALSE(r.ok()) << "accepted:\n" << body;
  return r.ok() ? std::string() : r.error().message;
}

TEST(ApplianceConfig, TheExampleLoads) {
  auto r = parseApplianceConfig(R"(
[eal]
args = ["--no-huge", "-m", "512", "--no-pci", "--vdev=net_af_packet0,iface=gw-in", "--vdev=net_af_packet1,iface=gw-out"]

[[pair]]
inside = "net_af_packet0"     # DPDK device name
outside = "net_af_packet1"

[policy]
unmatched = "remark"          # remark | trust | drop
default_dscp = 0

[[flow]]
src = "198.18.1.10"
dst = "198.19.1.20"
proto = "udp"                 # udp | tcp | sctp | any
sport = 0                     # 0 = any
dport = 5004
dscp = 46
meter = { mode = "srtcm", cir = "1mbit", cbs = "16kB", ebs = "16kB", yellow = "pass", red = "drop" }
)",
                                "two_lan.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->eal_args.size(), 6u);
  ASSERT_EQ(r->pairs.size(), 1u);
  EXPECT_EQ(r->pairs[0].inside, "net_af_packet0");
  ASSERT_EQ(r->flows.size(), 1u);
  const FlowRule& f = r->flows[0];
  EXPECT_EQ(f.protocol, 17);
  EXPECT_EQ(f.src_port, 0);
  EXPECT_EQ(f.dst_port, 5004);
  EXPECT_EQ(f.dscp, 46);
  ASSERT_TRUE(f.meter.has_value());
  EXPECT_EQ(f.meter->mode, MeterMode::Srtcm);
  EXPECT_EQ(f.meter->cir_bytes_per_sec, 125'000u);
  EXPECT_EQ(f.meter->cbs_bytes, 16'000u);
  EXPECT_EQ(f.meter->ebs_bytes, 16'000u);
  EXPECT_EQ(f.meter->yellow.kind, PacketAction::Kind::Pass);
  EXPECT_EQ(f.meter->red.kind, PacketAction::Kind::Drop);
  EXPECT_EQ(r->policy.unmatched, UnmatchedPolicy::Remark);
  EXPECT_EQ(r->dataplane.max_flows, 1u << 20) << "at least 1M flows by default";
}

TEST(ApplianceConfig, ClassRulesTrtcmAndIpv6) {
  auto r = parse(R"(
[policy]
unmatched = "trust"
malformed = "drop"
[[class]]
name = "video"
src = "2001:db8::/32"
proto = "udp"
dport = "7000-7100"
dscp_in = [0, 34]
action = "remark:34"
[[flow]]
src = "2001:db8:1::10"
dst = "2001:db8:2::20"
proto = "tcp"
dport = 443
dscp = 26
meter = { mode = "trtcm", cir = "1mbit", pir = "2mbit", cbs = "10kB", pbs = "20kB", yellow = "remark:28", red = "remark:30" }
)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->policy.classes.size(), 1u);
  const ClassRule& c = r->policy.classes[0];
  EXPECT_EQ(c.dst_ports.first, 7000);
  EXPECT_EQ(c.dst_ports.last, 7100);
  EXPECT_EQ(c.dscp_in_mask, (1ULL << 0) | (1ULL << 34));
  EXPECT_EQ(c.action.kind, PacketAction::Kind::Remark);
  EXPECT_EQ(c.action.dscp, 34);
  EXPECT_EQ(r->flows[0].src.family, 6);
  EXPECT_EQ(r->flows[0].meter->pir_bytes_per_sec, 250'000u);
  EXPECT_EQ(r->flows[0].meter->red.dscp, 30);
  EXPECT_EQ(r->policy.malformed, MalformedPolicy::Drop);
}

TEST(ApplianceConfig, RefusalsNameFileLineColumnAndKey) {
  struct Case {
    std::string body;
    std::string expected;  // a substring of the one-line error
  };
  // kPair is three lines: the body starts on line 4.
  const Case cases[] = {
      {"[[flow]]\nsrc = \"198.18.1.10\"\ndst = \"198.19.1.20\"\ndscp = 64\n",
       "t.toml:7:8: flow[0].dscp: 64 is out of range 0..63"},
      {"[policy]\nunmatched = \"remark\"\ndefualt_dscp = 0\n",
       "t.toml:6:1: policy.defualt_dscp: unknown key"},
      {"[[flow]]\nsrc = \"198.18.1.10\"\ndst = \"198.19.1.20\"\ndscp = 46\n"
       "meter = { mode = \"srtcm\", cir = \"1mbyte\", cbs = \"16kB\", ebs = \"16kB\" }\n",
       "t.toml:8:33: flow[0].meter.cir: unknown unit 'mbyte'"},
      {"[[flow]]\nsrc = \"198.18.1.10\"\ndst = \"2001:db8::1\"\ndscp = 46\n",
       "t.toml:6:7: flow[0].dst: src and dst must both be IPv4 or both IPv6"},
      {"[[flow]]\nsrc = \"198.18.1.300\"\ndst = \"198.19.1.20\"\ndscp = 46\n",
       "t.toml:5:7: flow[0].src: invalid IPv4 address '198.18.1.300'"},
      {"[[flow]]\nsrc = \"198.18.1.10\"\ndst = \"198.19.1.20\"\nproto = \"udpp\"\ndscp = 46\n",
       "t.toml:7:9: flow[0].proto: unknown protocol 'udpp'"},
      {"[[flow]]\nsrc = \"198.18.1.10\"\ndst = \"198.19.1.20\"\ndscp = 46\nmeter = { mode = "
       "\"srtcm\", cir = \"1mbit\", cbs = \"16kB\", ebs = \"16kB\", red = \"remark:99\" }\n",
       "flow[0].meter.red: invalid action 'remark:99'"},
      {"[[flow]]\nsrc = \"198.18.1.10\"\ndst = \"198.19.1.20\"\n",
       "t.toml:4:1: flow[0].dscp: missing"},
      {"[[class]]\nsrc = \"198.18.1.1/24\"\naction = \"trust\"\n",
       "class[0].src: prefix '198.18.1.1/24' has host bits set"},
      {"[[class]]\ndport = \"7100-7000\"\naction = \"trust\"\n",
       "t.toml:5:9: class[0].dport: expected a port 0..65535 or a range"},
      {"[[flow]]\nsrc = \"198.18.1.10\"\ndst = \"198.19.1.20\"\ndscp = 1\n"
       "[[flow]]\nsrc = \"198.18.1.10\"\ndst = \"198.19.1.20\"\ndscp = 2\n",
       "flow[1]: the same flow (src, dst, proto, sport, dport) is defined twice"},
      {"[dataplane]\nmax_flows = 10\n", "t.toml:5:13: dataplane.max_flows: 10 is out of range"},
      {"[policy]\nunmatched = \"maybe\"\n", "t.toml:5:13: policy.unmatched: expected"},
      {"[[flow]]\nsrc = \"198.18.1.10\"\ndst = \"198.19.1.20\"\ndscp = 46\n"
       "meter = { mode = \"trtcm\", cir = \"2mbit\", pir = \"1mbit\", cbs = \"1kB\", pbs = \"1kB\" "
       "}\n",
       "flow[0].meter.pir: must be >= cir"},
      {"[[flow]]\nsrc = \"198.18.1.10\"\ndst = \"198.19.1.20\"\nproto = \"icmp\"\ndport = 1\ndscp "
       "= 4\n",
       "flow[0].proto: ports only apply to udp, tcp or sctp"},
      {"unknown_key = 1\n", "t.toml:4:1: pair[0].unknown_key: unknown key"},
      {"[surprise]\nx = 1\n", "t.toml:4:2: surprise: unknown key"},
      {"[policy\n", "t.toml:4:"},
  };
  for (const Case& c : cases) {
    const std::string error = errorOf(c.body);
    EXPECT_NE(error.find(c.expected), std::string::npos)
        << "expected '" << c.expected << "' in:\n  " << error << "\nfor:\n"
        << c.body;
    EXPECT_EQ(error.find('\n'), std::string::npos) << "one line: " << error;
  }
}

TEST(ApplianceConfig, AnIpv4AndAnIpv6FlowWithTheSameAddressBytesAreTwoFlows) {
  // c612:10a:: and c613:114:: begin with the bytes of 198.18.1.10 and 198.19.1.20.
  auto r =
      parseApplianceConfig(std::string(kPair) +
                               "[[flow]]\nsrc = \"198.18.1.10\"\ndst = \"198.19.1.20\"\ndscp = 1\n"
                               "[[flow]]\nsrc = \"c612:10a::\"\ndst = \"c613:114::\"\ndscp = 2\n",
                           "t.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->flows.size(), 2u);
  EXPECT_EQ(r->flows[0].src.bytes, r->flows[1].src.bytes);
  EXPECT_NE(r->flows[0].src.family, r->flows[1].src.family);
}

TEST(ApplianceConfig, ControlKeysAreFilesBesideTheConfigOrKeyText) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("qosgate-cfg-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "keys");
  // "keys/" + 31 + ".pub" is 40 characters, every one of them Z85: a file
  // that exists is read as a file, not taken for the key itself.
  const std::string relative = "keys/" + std::string(31, 'm') + ".pub";
  std::ofstream(dir / relative) << "not read here\n";
  const std::string control = R"(
[control]
manager = "tcp://192.0.2.1:7700"
name = "gw1"
secret_key = "keys/gw1.key"
manager_public_key = ")";
  auto file = parseApplianceConfig(std::string(kPair) + control + relative + "\"\n",
                                   (dir / "gw.toml").string());
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_EQ(file->control->manager_public_key, (dir / relative).string());
  EXPECT_EQ(file->control->secret_key_path, (dir / "keys/gw1.key").string());

  const std::string z85 = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
  auto text =
      parseApplianceConfig(std::string(kPair) + control + z85 + "\"\n", (dir / "gw.toml").string());
  ASSERT_TRUE(text.ok()) << text.error().message;
  EXPECT_EQ(text->control->manager_public_key, z85);
  std::filesystem::remove_all(dir);

  const std::string no_keys = errorOf(R"(
[control]
manager = "tcp://192.0.2.1:7700"
name = "gw1"
)");
  EXPECT_NE(no_keys.find("not on this machine"), std::string::npos) << no_keys;
}

TEST(ApplianceConfig, PairsAreRequiredAndDistinct) {
  auto none = parseApplianceConfig("[policy]\nunmatched = \"trust\"\n", "p.toml");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("at least one [[pair]]"), std::string::npos);
  auto same = parseApplianceConfig("[[pair]]\ninside = \"a\"\noutside = \"a\"\n", "p.toml");
  ASSERT_FALSE(same.ok());
  EXPECT_NE(same.error().message.find("p.toml:3:11: pair[0].outside"), std::string::npos)
      << same.error().message;
  auto reused = parseApplianceConfig(
      "[[pair]]\ninside = \"a\"\noutside = \"b\"\n[[pair]]\ninside = \"b\"\noutside = \"c\"\n",
      "p.toml");
  ASSERT_FALSE(reused.ok());
  EXPECT_NE(reused.error().message.find("already in another pair"), std::string::npos);
}

TEST(ApplianceConfig, MissingFileIsOneLine) {
  auto r = loadApplianceConfig("/nonexistent/qosgate.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/nonexistent/qosgate.toml"), std::string::npos);
}

TEST(ApplianceConfig, ParsersOfValues) {
  EXPECT_EQ(*parseProtocol("udp"), 17);
  EXPECT_EQ(*parseProtocol("47"), 47);
  EXPECT_FALSE(parseProtocol("256").ok());
  EXPECT_FALSE(parseProtocol("0").ok());
  EXPECT_EQ(parsePacketAction("remark:63")->dscp, 63);
  EXPECT_FALSE(parsePacketAction("remark:").ok());
  EXPECT_FALSE(parsePacketAction("remark:64").ok());
  EXPECT_FALSE(parsePacketAction("Drop").ok());
}

}  // namespace
}  // namespace qos::appliance
