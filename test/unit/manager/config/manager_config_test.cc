// The manager config loader: what it accepts, and that every refusal is one
// line naming file:line:column and the key path.
#include "manager/config/manager_config.h"

#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "test/fakes/two_lan_example.h"

namespace qos::manager {
namespace {

// The example two-LAN, one-WAN config.
using test_data::kTwoLanExample;

// Fourteen lines every refusal case starts with; a case's body starts on line 15.
constexpr const char* kBase = R"([[network]]
name = "lan-a"
prefixes = ["198.18.1.0/24", "2001:db8:a::/48"]
class_enabled = true
classes = { EF = { dscp = 46, capacity = "2mbit" }, BE = { dscp = 0 } }
[[network]]
name = "wan"
class_enabled = true
classes = { EF = { dscp = 40, capacity = "10mbit" }, AF41 = { dscp = 26 } }
[[network]]
name = "lan-b"
prefixes = ["198.19.1.0/24"]
[[link]]
between = ["lan-a", "wan"]
)";

Result<ManagerConfig> parse(const std::string& body) {
  return parseManagerConfig(std::string(kBase) + body, "m.toml");
}

// The error for @p body, which must be refused.
std::string errorOf(const std::string& body) {
  auto r = parse(body);
  EXPECT_FALSE(r.ok()) << "accepted:\n" << body;
  return r.ok() ? std::string() : r.error().message;
}

TEST(ManagerConfig, TheExampleLoads) {
  auto r = parseManagerConfig(kTwoLanExample, "two_lan.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  const ManagerConfig& c = *r;
  EXPECT_EQ(c.source_path, "two_lan.toml");
  EXPECT_EQ(c.listen, "tcp://127.0.0.1:7700");
  EXPECT_EQ(c.state_path, "/var/lib/qosmgr/state.db");
  EXPECT_EQ(c.lease_sec, 60u);
  EXPECT_EQ(c.max_lease_sec, 86400u) << "a day unless the config says otherwise";
  EXPECT_EQ(c.metrics_listen, "");

  ASSERT_EQ(c.networks.size(), 3u);
  const NetworkConfig& lan_a = c.networks[0];
  EXPECT_EQ(lan_a.name, "lan-a");
  ASSERT_EQ(lan_a.prefixes.size(), 2u);
  EXPECT_EQ(lan_a.prefixes[0], *parseIpPrefix("198.18.1.0/24"));
  EXPECT_EQ(lan_a.prefixes[1], *parseIpPrefix("2001:db8:a::/48"));
  EXPECT_TRUE(lan_a.class_enabled);
  ASSERT_EQ(lan_a.classes.size(), 3u);
  EXPECT_EQ(lan_a.classes.at("EF").dscp, 46);
  EXPECT_EQ(lan_a.classes.at("EF").capacity_bps, 2'000'000u);
  EXPECT_EQ(lan_a.classes.at("AF41").dscp, 34);
  EXPECT_EQ(lan_a.classes.at("AF41").capacity_bps, 20'000'000u);
  EXPECT_EQ(lan_a.classes.at("BE").dscp, 0);
  EXPECT_FALSE(lan_a.classes.at("BE").capacity_bps.has_value()) << "BE is not admission-controlled";

  const NetworkConfig& wan = c.networks[1];
  EXPECT_EQ(wan.name, "wan");
  EXPECT_TRUE(wan.prefixes.empty()) << "a transit network";
  EXPECT_TRUE(wan.class_enabled);
  EXPECT_EQ(wan.classes.at("EF").dscp, 40);
  EXPECT_EQ(wan.classes.at("EF").capacity_bps, 10'000'000u);
  EXPECT_EQ(wan.classes.at("AF41").dscp, 26);
  EXPECT_EQ(wan.classes.at("AF41").capacity_bps, 50'000'000u);
  EXPECT_EQ(wan.classes.at("BE").dscp, 0);

  const NetworkConfig& lan_b = c.networks[2];
  EXPECT_EQ(lan_b.name, "lan-b");
  ASSERT_EQ(lan_b.prefixes.size(), 1u);
  EXPECT_EQ(lan_b.prefixes[0], *parseIpPrefix("198.19.1.0/24"));
  EXPECT_FALSE(lan_b.class_enabled);
  EXPECT_TRUE(lan_b.classes.empty());

  ASSERT_EQ(c.links.size(), 2u);
  EXPECT_EQ(c.links[0].a, "lan-a");
  EXPECT_EQ(c.links[0].b, "wan");
  EXPECT_EQ(c.links[1].a, "wan");
  EXPECT_EQ(c.links[1].b, "lan-b");

  ASSERT_EQ(c.slas.size(), 1u);
  EXPECT_EQ(c.slas[0].name, "carrier-x");
  EXPECT_EQ(c.slas[0].network, "wan");
  ASSERT_EQ(c.slas[0].class_rate_bps.size(), 2u);
  EXPECT_EQ(c.slas[0].class_rate_bps.at("EF"), 1'000'000u);
  EXPECT_EQ(c.slas[0].class_rate_bps.at("AF41"), 10'000'000u);

  ASSERT_EQ(c.applications.size(), 2u);
  const ApplicationConfig& voip = c.applications[0];
  EXPECT_EQ(voip.name, "voip");
  ASSERT_TRUE(voip.match.has_value());
  EXPECT_EQ(voip.match->protocol, 17);
  EXPECT_EQ(voip.match->src_ports.first, 0);
  EXPECT_EQ(voip.match->src_ports.last, 65535) << "no sport: any";
  EXPECT_EQ(voip.match->dst_ports.first, 16384);
  EXPECT_EQ(voip.match->dst_ports.last, 32767);
  EXPECT_EQ(voip.default_profile, (Profile{"EF", 100'000, 10'000}));
  ASSERT_EQ(voip.alternates.size(), 1u);
  EXPECT_EQ(voip.alternates[0], (Profile{"AF41", 100'000, 10'000}));

  const ApplicationConfig& video = c.applications[1];
  EXPECT_EQ(video.name, "video");
  EXPECT_FALSE(video.match.has_value());
  EXPECT_EQ(video.default_profile, (Profile{"AF41", 4'000'000, 64'000}));
  ASSERT_EQ(video.alternates.size(), 2u);
  EXPECT_EQ(video.alternates[0], (Profile{"AF41", 1'500'000, 32'000})) << "in the order written";
  EXPECT_EQ(video.alternates[1], (Profile{"AF41", 500'000, 16'000}));
}

TEST(ManagerConfig, OptionalKeysAndDefaults) {
  auto r = parse(R"(
[manager]
listen = "ipc:///run/qosmgr.sock"
lease = "5m"
max_lease = "24h"
[metrics]
listen = "127.0.0.1:9471"
[[application]]
name = "ssh"
match = { proto = "tcp", sport = 22, dport = 0 }
default = { class = "BE", rate = "64kbit", burst = "4KiB" }
)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->listen, "ipc:///run/qosmgr.sock");
  EXPECT_EQ(r->state_path, "") << "no state: an in-memory store";
  EXPECT_EQ(r->lease_sec, 300u);
  EXPECT_EQ(r->max_lease_sec, 86400u);
  EXPECT_EQ(r->metrics_listen, "127.0.0.1:9471");
  ASSERT_EQ(r->applications.size(), 1u);
  const AppMatch& m = *r->applications[0].match;
  EXPECT_EQ(m.protocol, 6);
  EXPECT_EQ(m.src_ports.first, 22);
  EXPECT_EQ(m.src_ports.last, 22);
  EXPECT_EQ(m.dst_ports.first, 0);
  EXPECT_EQ(m.dst_ports.last, 65535) << "port 0 means any, as in the appliance config";
  EXPECT_EQ(r->applications[0].default_profile.burst_bytes, 4096u);
  EXPECT_TRUE(r->applications[0].alternates.empty());
  EXPECT_FALSE(r->networks[2].class_enabled) << "class_enabled defaults to false";
}

TEST(ManagerConfig, DurationsInEveryUnit) {
  const std::pair<const char*, uint32_t> cases[] = {
      {"1s", 1}, {"90s", 90}, {"2m", 120}, {"1h", 3600}, {"1d", 86400}, {"7d", 604800},
  };
  for (const auto& [text, seconds] : cases) {
    auto r = parse(std::string("[manager]\nlease = \"") + text + "\"\nmax_lease = \"30d\"\n");
    ASSERT_TRUE(r.ok()) << text << ": " << r.error().message;
    EXPECT_EQ(r->lease_sec, seconds) << text;
  }
  auto any_proto = parse(
      "[[application]]\nname = \"x\"\nmatch = { proto = \"any\" }\n"
      "default = { class = \"EF\", rate = \"1mbit\", burst = \"1kB\" }\n");
  ASSERT_TRUE(any_proto.ok()) << any_proto.error().message;
  EXPECT_EQ(any_proto->applications[0].match->protocol, 0);
  auto sctp = parse(
      "[[application]]\nname = \"x\"\nmatch = { proto = \"sctp\", dport = \"5000\" }\n"
      "default = { class = \"EF\", rate = \"1mbit\", burst = \"1kB\" }\n");
  ASSERT_TRUE(sctp.ok()) << sctp.error().message;
  EXPECT_EQ(sctp->applications[0].match->protocol, 132);
  EXPECT_EQ(sctp->applications[0].match->dst_ports.first, 5000);
  EXPECT_EQ(sctp->applications[0].match->dst_ports.last, 5000);
}

TEST(ManagerConfig, RefusalsNameFileLineColumnAndKey) {
  struct Case {
    std::string body;
    std::string expected;  // a substring of the one-line error
  };
  // kBase is fourteen lines: a case's body starts on line 15.
  const Case cases[] = {
      // Unknown keys, at every level.
      {"[surprise]\nx = 1\n", "m.toml:15:2: surprise: unknown key"},
      {"top = 1\n", "m.toml:15:1: link[0].top: unknown key"},
      {"[manager]\nlisten = \"tcp://127.0.0.1:7700\"\nleese = \"60s\"\n",
       "m.toml:17:1: manager.leese: unknown key"},
      {"[metrics]\nlisten = \"127.0.0.1:9471\"\npath = \"/m\"\n",
       "m.toml:17:1: metrics.path: unknown key"},
      {"[[network]]\nname = \"x\"\nclass_enabled = true\nclasses = { EF = { dscp = 46, cap = "
       "\"1mbit\" } }\n",
       "m.toml:18:31: network[3].classes.EF.cap: unknown key"},
      {"[[network]]\nname = \"x\"\nprefix = [\"10.0.0.0/8\"]\n",
       "m.toml:17:1: network[3].prefix: unknown key"},
      {"[[link]]\nbetween = [\"wan\", \"lan-b\"]\nspeed = \"1gbit\"\n",
       "m.toml:17:1: link[1].speed: unknown key"},
      {"[[sla]]\nname = \"s\"\nnetwork = \"wan\"\nclasses = { EF = { rate = \"1mbit\", burst = "
       "\"1kB\" } }\n",
       "m.toml:18:36: sla[0].classes.EF.burst: unknown key"},
      {"[[application]]\nname = \"a\"\ndefault = { class = \"EF\", rate = \"1mbit\", burst = "
       "\"1kB\", dscp = 46 }\n",
       "m.toml:17:58: application[0].default.dscp: unknown key"},
      {"[[application]]\nname = \"a\"\nmatch = { proto = \"udp\", port = 5 }\ndefault = { class "
       "= \"EF\", rate = \"1mbit\", burst = \"1kB\" }\n",
       "m.toml:17:26: application[0].match.port: unknown key"},
      // Unknown classes.
      {"[[application]]\nname = \"a\"\ndefault = { class = \"AF11\", rate = \"1mbit\", burst = "
       "\"1kB\" }\n",
       "m.toml:17:21: application[0].default.class: unknown class 'AF11': no class-enabled "
       "network defines it"},
      {"[[application]]\nname = \"a\"\ndefault = { class = \"EF\", rate = \"1mbit\", burst = "
       "\"1kB\" }\nalternates = [ { class = \"EF\", rate = \"1mbit\", burst = \"1kB\" }, { class "
       "= \"CS6\", rate = \"1mbit\", burst = \"1kB\" } ]\n",
       "m.toml:18:75: application[0].alternates[1].class: unknown class 'CS6'"},
      {"[[sla]]\nname = \"s\"\nnetwork = \"wan\"\nclasses = { CS6 = { rate = \"1mbit\" } }\n",
       "m.toml:18:13: sla[0].classes.CS6: unknown class 'CS6': no class-enabled network defines "
       "it"},
      {"[[sla]]\nname = \"s\"\nnetwork = \"wan\"\nclasses = { BE = { rate = \"1mbit\" } }\n",
       "m.toml:18:13: sla[0].classes.BE: class 'BE' is not defined by network 'wan'"},
      // DSCP.
      {"[[network]]\nname = \"x\"\nclass_enabled = true\nclasses = { EF = { dscp = 64 } }\n",
       "m.toml:18:27: network[3].classes.EF.dscp: 64 is out of range 0..63"},
      {"[[network]]\nname = \"x\"\nclass_enabled = true\nclasses = { EF = { dscp = -1 } }\n",
       "m.toml:18:27: network[3].classes.EF.dscp: -1 is out of range 0..63"},
      {"[[network]]\nname = \"x\"\nclass_enabled = true\nclasses = { EF = { dscp = \"46\" } }\n",
       "m.toml:18:27: network[3].classes.EF.dscp: expected an integer"},
      {"[[network]]\nname = \"x\"\nclass_enabled = true\nclasses = { EF = { capacity = "
       "\"1mbit\" } }\n",
       "m.toml:18:18: network[3].classes.EF.dscp: missing"},
      {"[[network]]\nname = \"x\"\nclass_enabled = true\nclasses = { EF = { dscp = 46 }, VA = { "
       "dscp = 46 } }\n",
       "m.toml:18:47: network[3].classes.VA.dscp: 46 is already the DSCP of class EF"},
      // Prefixes.
      {"[[network]]\nname = \"x\"\nprefixes = [\"198.18.0.0/16\"]\n",
       "m.toml:17:13: network[3].prefixes[0]: 198.18.0.0/16 of network 'x' overlaps "
       "198.18.1.0/24 of network 'lan-a' (network[0].prefixes[0])"},
      {"[[network]]\nname = \"x\"\nprefixes = [\"10.0.0.0/8\", \"198.19.1.128/25\"]\n",
       "m.toml:17:27: network[3].prefixes[1]: 198.19.1.128/25 of network 'x' overlaps "
       "198.19.1.0/24 of network 'lan-b' (network[2].prefixes[0])"},
      {"[[network]]\nname = \"x\"\nprefixes = [\"2001:db8:a:1::/64\"]\n",
       "m.toml:17:13: network[3].prefixes[0]: 2001:db8:a:1::/64 of network 'x' overlaps "
       "2001:db8:a::/48 of network 'lan-a'"},
      {"[[network]]\nname = \"x\"\nprefixes = [\"198.19.1.0/24\"]\n",
       "network[3].prefixes[0]: 198.19.1.0/24 of network 'x' overlaps 198.19.1.0/24 of network "
       "'lan-b'"},
      {"[[network]]\nname = \"x\"\nprefixes = [\"10.1.0.0/16\", \"10.0.0.0/8\"]\n",
       "m.toml:17:28: network[3].prefixes[1]: 10.0.0.0/8 overlaps 10.1.0.0/16 (prefixes[0]) of "
       "the same network"},
      {"[[network]]\nname = \"x\"\nprefixes = [\"10.0.0.1/8\"]\n",
       "m.toml:17:13: network[3].prefixes[0]: prefix '10.0.0.1/8' has host bits set"},
      {"[[network]]\nname = \"x\"\nprefixes = [\"10.0.0.0/33\"]\n",
       "m.toml:17:13: network[3].prefixes[0]: invalid prefix length"},
      {"[[network]]\nname = \"x\"\nprefixes = [\"10.0.0.0/8\", 7]\n",
       "m.toml:17:27: network[3].prefixes[1]: expected a prefix string"},
      {"[[network]]\nname = \"x\"\nprefixes = \"10.0.0.0/8\"\n",
       "m.toml:17:12: network[3].prefixes: expected an array of prefixes"},
      // Links.
      {"[[link]]\nbetween = [\"wan\", \"lan-c\"]\n",
       "m.toml:16:19: link[1].between[1]: unknown network 'lan-c'"},
      {"[[link]]\nbetween = [\"wan\", \"wan\"]\n",
       "m.toml:16:11: link[1].between: a link joins two different networks, but both ends are "
       "'wan'"},
      {"[[link]]\nbetween = [\"wan\", \"lan-a\"]\n",
       "m.toml:16:11: link[1].between: 'wan' and 'lan-a' are already linked by link[0]"},
      {"[[link]]\nbetween = [\"wan\", \"lan-b\", \"lan-a\"]\n",
       "m.toml:16:11: link[1].between: expected the two networks the link joins"},
      {"[[link]]\n", "m.toml:15:1: link[1].between: missing"},
      // SLAs.
      {"[[sla]]\nname = \"s\"\nnetwork = \"wam\"\nclasses = { EF = { rate = \"1mbit\" } }\n",
       "m.toml:17:11: sla[0].network: unknown network 'wam'"},
      {"[[sla]]\nname = \"s\"\nnetwork = \"lan-b\"\nclasses = { EF = { rate = \"1mbit\" } }\n",
       "m.toml:17:11: sla[0].network: network 'lan-b' is not class_enabled"},
      {"[[sla]]\nname = \"s\"\nnetwork = \"wan\"\nclasses = { EF = { rate = \"0kbit\" } }\n",
       "m.toml:18:27: sla[0].classes.EF.rate: must be > 0"},
      {"[[sla]]\nname = \"s\"\nnetwork = \"wan\"\nclasses = {}\n",
       "m.toml:18:11: sla[0].classes: an SLA needs at least one class"},
      {"[[sla]]\nname = \"s\"\nnetwork = \"wan\"\nclasses = { EF = { rate = \"1mbit\" } }\n"
       "[[sla]]\nname = \"s\"\nnetwork = \"wan\"\nclasses = { EF = { rate = \"2mbit\" } }\n",
       "m.toml:20:8: sla[1].name: 's' is already the name of sla[0]"},
      // Rates and sizes of profiles.
      {"[[application]]\nname = \"a\"\ndefault = { class = \"EF\", rate = \"100\", burst = "
       "\"1kB\" }\n",
       "m.toml:17:34: application[0].default.rate: rate '100' has no unit"},
      {"[[application]]\nname = \"a\"\ndefault = { class = \"EF\", rate = \"100kbps\", burst = "
       "\"1kB\" }\n",
       "m.toml:17:34: application[0].default.rate: unknown unit 'kbps'"},
      {"[[application]]\nname = \"a\"\ndefault = { class = \"EF\", rate = \"0mbit\", burst = "
       "\"1kB\" }\n",
       "m.toml:17:34: application[0].default.rate: must be > 0"},
      {"[[application]]\nname = \"a\"\ndefault = { class = \"EF\", rate = \"1mbit\", burst = "
       "\"0B\" }\n",
       "m.toml:17:51: application[0].default.burst: must be > 0"},
      {"[[application]]\nname = \"a\"\ndefault = { class = \"EF\", rate = \"1mbit\", burst = "
       "\"1kB\" }\nalternates = [ { class = \"EF\", rate = \"0bit\", burst = \"1kB\" } ]\n",
       "m.toml:18:39: application[0].alternates[0].rate: must be > 0"},
      {"[[application]]\nname = \"a\"\ndefault = { class = \"EF\", burst = \"1kB\" }\n",
       "m.toml:17:11: application[0].default.rate: missing"},
      // Applications.
      {"[[application]]\nname = \"a\"\n",
       "m.toml:15:1: application[0].default: missing: an application needs a default profile"},
      {"[[application]]\nname = \"a\"\ndefault = { class = \"EF\", rate = \"1mbit\", burst = "
       "\"1kB\" }\n[[application]]\nname = \"a\"\ndefault = { class = \"EF\", rate = \"1mbit\", "
       "burst = \"1kB\" }\n",
       "m.toml:19:8: application[1].name: 'a' is already the name of application[0]"},
      {"[[application]]\nname = \"a\"\nmatch = { proto = \"icmp\" }\ndefault = { class = \"EF\", "
       "rate = \"1mbit\", burst = \"1kB\" }\n",
       "m.toml:17:19: application[0].match.proto: unknown protocol 'icmp'"},
      {"[[application]]\nname = \"a\"\nmatch = { dport = \"32767-16384\" }\ndefault = { class = "
       "\"EF\", rate = \"1mbit\", burst = \"1kB\" }\n",
       "m.toml:17:19: application[0].match.dport: expected a port 0..65535 or a range"},
      {"[[application]]\nname = \"a\"\nmatch = { sport = 70000 }\ndefault = { class = \"EF\", "
       "rate = \"1mbit\", burst = \"1kB\" }\n",
       "m.toml:17:19: application[0].match.sport: 70000 is out of range 0..65535"},
      {"[[application]]\nname = \"voice app\"\ndefault = { class = \"EF\", rate = \"1mbit\", "
       "burst = \"1kB\" }\n",
       "m.toml:16:8: application[0].name: invalid name 'voice app'"},
      // Networks.
      {"[[network]]\nname = \"wan\"\n",
       "m.toml:16:8: network[3].name: 'wan' is already the name of network[1]"},
      {"[[network]]\nname = \"x\"\nclass_enabled = false\nclasses = { EF = { dscp = 46 } }\n",
       "m.toml:18:11: network[3].classes: classes are given but class_enabled is false"},
      {"[[network]]\nname = \"x\"\nclasses = { EF = { dscp = 46 } }\n",
       "m.toml:17:11: network[3].classes: classes are given but class_enabled is false"},
      {"[[network]]\nname = \"x\"\nclass_enabled = true\n",
       "m.toml:15:1: network[3].classes: a class-enabled network needs at least one class"},
      {"[[network]]\nname = \"x\"\nclass_enabled = true\nclasses = {}\n",
       "m.toml:18:11: network[3].classes: a class-enabled network needs at least one class"},
      {"[[network]]\nname = \"x\"\nclass_enabled = true\nclasses = { \"E F\" = { dscp = 46 } }\n",
       "m.toml:18:13: network[3].classes.E F: invalid class name"},
      {"[[network]]\nname = \"x\"\nclass_enabled = true\nclasses = { EF = 46 }\n",
       "m.toml:18:18: network[3].classes.EF: expected a table such as"},
      {"[[network]]\nname = \"x\"\nclass_enabled = true\nclasses = { EF = { dscp = 46, capacity "
       "= \"0bit\" } }\n",
       "m.toml:18:42: network[3].classes.EF.capacity: must be > 0"},
      {"[[network]]\nname = \"x\"\nclass_enabled = true\nclasses = { EF = { dscp = 46, capacity "
       "= \"2\" } }\n",
       "m.toml:18:42: network[3].classes.EF.capacity: rate '2' has no unit"},
      {"[[network]]\nclass_enabled = false\n", "m.toml:15:1: network[3].name: missing"},
      // The [manager] table.
      {"[manager]\nlisten = \"http://127.0.0.1:7700\"\n",
       "m.toml:16:10: manager.listen: 'http://127.0.0.1:7700' is not a ZeroMQ endpoint"},
      {"[manager]\nlisten = \"tcp://127.0.0.1\"\n",
       "m.toml:16:10: manager.listen: 'tcp://127.0.0.1': expected tcp://HOST:PORT"},
      {"[manager]\nlisten = \"ipc://\"\n",
       "m.toml:16:10: manager.listen: 'ipc://' names no address"},
      {"[manager]\nlease = 60\n", "m.toml:16:9: manager.lease: a duration needs a unit"},
      {"[manager]\nlease = \"60\"\n", "m.toml:16:9: manager.lease: duration '60' has no unit"},
      {"[manager]\nlease = \"0s\"\n", "m.toml:16:9: manager.lease: duration '0s' must be > 0"},
      {"[manager]\nlease = \"500ms\"\n", "m.toml:16:9: manager.lease: unknown unit 'ms'"},
      {"[manager]\nlease = \"1.5h\"\n",
       "m.toml:16:9: manager.lease: duration '1.5h' is not a whole number"},
      {"[manager]\nmax_lease = \"99999999999d\"\n",
       "m.toml:16:13: manager.max_lease: duration '99999999999d' is too long"},
      {"[manager]\nlease = \"2h\"\nmax_lease = \"1h\"\n",
       "m.toml:16:9: manager.lease: the default lease (2h) is longer than max_lease (1h)"},
      {"[manager]\nmax_lease = \"30s\"\n",
       "m.toml:16:13: manager.max_lease: the default lease (1m) is longer than max_lease (30s)"},
      {"[metrics]\nlisten = \"9471\"\n",
       "m.toml:16:10: metrics.listen: '9471': expected HOST:PORT"},
      {"[metrics]\n", "m.toml:15:1: metrics.listen: missing"},
      // TOML syntax.
      {"[manager\n", "m.toml:15:"},
  };
  for (const Case& c : cases) {
    const std::string error = errorOf(c.body);
    EXPECT_NE(error.find(c.expected), std::string::npos)
        << "expected '" << c.expected << "' in:\n  " << error << "\nfor:\n"
        << c.body;
    EXPECT_EQ(error.find('\n'), std::string::npos) << "one line: " << error;
  }
}

TEST(ManagerConfig, AtLeastOneNetwork) {
  auto r = parseManagerConfig("[manager]\nlisten = \"inproc://qosmgr\"\n", "e.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("e.toml:1:1: at least one [[network]]"), std::string::npos)
      << r.error().message;
}

TEST(ManagerConfig, OverlapsAcrossFamiliesAreFine) {
  // ::/0 and 0.0.0.0/0 are of different families and do not overlap.
  auto r = parseManagerConfig(
      "[[network]]\nname = \"v4\"\nprefixes = [\"0.0.0.0/0\"]\n"
      "[[network]]\nname = \"v6\"\nprefixes = [\"::/0\"]\n",
      "f.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->networks[0].prefixes[0].length_bits, 0);
  auto within = parseManagerConfig(
      "[[network]]\nname = \"v4\"\nprefixes = [\"10.0.0.0/8\", \"11.0.0.0/8\", \"10.0.0.0/8\"]\n",
      "f.toml");
  ASSERT_FALSE(within.ok());
  EXPECT_NE(within.error().message.find("f.toml:3:41: network[0].prefixes[2]: 10.0.0.0/8 "
                                        "overlaps 10.0.0.0/8 (prefixes[0]) of the same network"),
            std::string::npos)
      << within.error().message;
}

TEST(ManagerConfig, LoadsFromAFileAndNamesItInErrors) {
  const std::string path = ::testing::TempDir() + "manager_config_test.toml";
  {
    std::ofstream out(path);
    out << kTwoLanExample;
  }
  auto good = loadManagerConfig(path);
  ASSERT_TRUE(good.ok()) << good.error().message;
  EXPECT_EQ(good->source_path, path);
  EXPECT_EQ(good->networks.size(), 3u);
  {
    std::ofstream out(path);
    out << kBase << "[[link]]\nbetween = [\"wan\", \"nowhere\"]\n";
  }
  auto bad = loadManagerConfig(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.rfind(path + ":16:19: link[1].between[1]: unknown network", 0), 0u)
      << bad.error().message;
  std::remove(path.c_str());

  auto missing = loadManagerConfig("/nonexistent/qosmgr.toml");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("/nonexistent/qosmgr.toml"), std::string::npos);
}

}  // namespace
}  // namespace qos::manager
