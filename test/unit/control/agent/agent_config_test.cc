// qos-agent's config: the example's keys, and refusals with file:line:column.
#include "control/agent/agent_config.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "control/common/ip_prefix.h"

namespace qos::agent {
namespace {

std::string errorOf(const std::string& text) {
  Result<AgentConfig> r = parseAgentConfig(text, "/etc/qos-agent/agent.toml");
  EXPECT_FALSE(r.ok()) << "accepted:\n" << text;
  return r.ok() ? "" : r.error().message;
}

TEST(AgentConfigTest, TheExampleKeys) {
  Result<AgentConfig> r = parseAgentConfig(R"([agent]
listen = "ipc:///run/qos-agent/agent.sock"
name = "host-a"
manager = "tcp://192.0.2.7:7700"
secret_key = "keys/host-a.key"
manager_public_key = "keys/qosmgr.pub"
client_timeout = "5s"
)",
                                           "/etc/qos-agent/agent.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->listen, "ipc:///run/qos-agent/agent.sock");
  EXPECT_EQ(r->name, "host-a");
  EXPECT_EQ(r->secret_key_path, "/etc/qos-agent/keys/host-a.key");
  EXPECT_EQ(r->manager_public_key, "/etc/qos-agent/keys/qosmgr.pub");
  EXPECT_EQ(r->client_timeout_ms, 5000u);

  Result<AgentConfig> defaults =
      parseAgentConfig("[agent]\nname = \"h\"\nmanager = \"tcp://127.0.0.1:7700\"\n", "a.toml");
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_EQ(defaults->listen, kDefaultListen);
  EXPECT_TRUE(defaults->secret_key_path.empty()) << "a loopback manager may go without CURVE";
  EXPECT_EQ(defaults->socket_mode, 0660u);
  EXPECT_TRUE(defaults->socket_group.empty());
}

TEST(AgentConfigTest, TheSocketsModeAndGroup) {
  const std::string head = "[agent]\nname = \"h\"\nmanager = \"tcp://127.0.0.1:7700\"\n";
  // "root" is group 0 on every Linux host.
  Result<AgentConfig> r =
      parseAgentConfig(head + "socket_mode = \"0600\"\nsocket_group = \"root\"\n", "a.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->socket_mode, 0600u);
  EXPECT_EQ(r->socket_group, "root");
  EXPECT_EQ(r->socket_gid, 0u);

  std::string e = errorOf(head + "socket_mode = \"0999\"\n");
  EXPECT_NE(e.find("agent.toml:4:"), std::string::npos) << e;
  EXPECT_NE(e.find("not a file mode"), std::string::npos) << e;
  e = errorOf(head + "socket_mode = \"01777\"\n");
  EXPECT_NE(e.find("at most 0777"), std::string::npos) << e;
  e = errorOf(head + "socket_group = \"no-such-group-here\"\n");
  EXPECT_NE(e.find("agent.toml:4:"), std::string::npos) << e;
  EXPECT_NE(e.find("no group 'no-such-group-here'"), std::string::npos) << e;
  e = errorOf(
      "[agent]\nname = \"h\"\nmanager = \"tcp://127.0.0.1:7700\"\n"
      "listen = \"tcp://127.0.0.1:7701\"\nsocket_mode = \"0660\"\n");
  EXPECT_NE(e.find("agent.toml:5:"), std::string::npos) << e;
  EXPECT_NE(e.find("for an ipc:// listen"), std::string::npos) << e;
}

TEST(AgentConfigTest, RefusalsNameFileLineColumnAndKey) {
  const std::string head = "[agent]\nname = \"host-a\"\n";
  std::string e =
      errorOf(head + "manager = \"tcp://192.0.2.7:7700\"\nlisten = \"tcp://0.0.0.0:7701\"\n");
  EXPECT_NE(e.find("agent.toml:4:"), std::string::npos) << e;
  EXPECT_NE(e.find("serves this host only"), std::string::npos) << e;

  e = errorOf(head + "manager = \"tcp://192.0.2.7:7700\"\n");
  EXPECT_NE(e.find("not on this machine"), std::string::npos) << e;

  e = errorOf(head + "manager = \"tcp://127.0.0.1:7700\"\nclient_timeout = \"5\"\n");
  EXPECT_NE(e.find("agent.toml:4:"), std::string::npos) << e;
  EXPECT_NE(e.find("no unit"), std::string::npos) << e;

  e = errorOf(head + "manager = \"tcp://127.0.0.1:7700\"\nsecret_key = \"k.key\"\n");
  EXPECT_NE(e.find("needs both"), std::string::npos) << e;

  e = errorOf(head + "manager = \"tcp://127.0.0.1:7700\"\nlisten_on = \"x\"\n");
  EXPECT_NE(e.find("listen_on"), std::string::npos) << e;

  e = errorOf("[agent]\nname = \"host a\"\nmanager = \"tcp://127.0.0.1:7700\"\n");
  EXPECT_NE(e.find("agent.toml:2:"), std::string::npos) << e;

  e = errorOf("[agnet]\n");
  EXPECT_FALSE(e.empty());
}

TEST(AgentConfigTest, StandingPolicies) {
  Result<AgentConfig> r = parseAgentConfig(R"([agent]
name = "host-a"
manager = "tcp://127.0.0.1:7700"

[[policy]]
name = "media"
app = "media"
src = "198.18.1.10"
dst = "198.19.1.20"
proto = "udp"
dport = 5004
bidir = true
lease = "2m"

[[policy]]
src = "2001:db8::1"
dst = "2001:db8:1::2"
proto = "tcp"
)",
                                           "a.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->policies.size(), 2u);
  const control::AdmissionRequest& media = r->policies[0].request;
  EXPECT_EQ(r->policies[0].name, "media");
  EXPECT_EQ(media.application, "media");
  EXPECT_EQ(formatIpAddress(media.flow.src), "198.18.1.10");
  EXPECT_EQ(formatIpAddress(media.flow.dst), "198.19.1.20");
  EXPECT_EQ(media.flow.protocol, 17);
  EXPECT_EQ(media.flow.src_port, 0) << "absent: any";
  EXPECT_EQ(media.flow.dst_port, 5004);
  EXPECT_TRUE(media.bidirectional);
  EXPECT_EQ(media.lease_sec, 120u);
  const StandingPolicy& second = r->policies[1];
  EXPECT_EQ(second.name, "policy-2") << "an unnamed policy is named by its place";
  EXPECT_EQ(second.request.application, "") << "the manager identifies it";
  EXPECT_EQ(second.request.flow.protocol, 6);
  EXPECT_FALSE(second.request.bidirectional);
  EXPECT_EQ(second.request.lease_sec, 0u) << "the manager's default";
}

TEST(AgentConfigTest, StandingPolicyRefusalsNameFileLineColumn) {
  const std::string head = "[agent]\nname = \"h\"\nmanager = \"tcp://127.0.0.1:7700\"\n";
  const std::string flow = "src = \"198.18.1.10\"\ndst = \"198.19.1.20\"\nproto = \"udp\"\n";
  struct Case {
    std::string body;      // after "[[policy]]" on line 4
    std::string location;  // "a.toml:LINE:"
    std::string says;
  };
  const std::vector<Case> cases = {
      {"src = \"198.18.1.300\"\ndst = \"198.19.1.20\"\nproto = \"udp\"\n",
       "agent.toml:5:", "198.18.1.300"},
      {"src = \"198.18.1.10\"\ndst = \"2001:db8::1\"\nproto = \"udp\"\n",
       "agent.toml:6:", "IPv4 or both IPv6"},
      {"src = \"198.18.1.10\"\ndst = \"198.19.1.20\"\nproto = \"icmp\"\n",
       "agent.toml:7:", "udp, tcp or sctp"},
      {flow + "dport = 70000\n", "agent.toml:8:", "dport"},
      {flow + "lease = \"0s\"\n", "agent.toml:8:", "lease"},
      {flow + "lease = \"25h\"\n", "agent.toml:8:", "from 1s to 24h"},
      {flow + "lease = \"soon\"\n", "agent.toml:8:", "lease"},
      {flow + "name = \"my policy\"\n", "agent.toml:8:", "invalid name"},
      {flow + "app = \"\"\n", "agent.toml:8:", "omit app"},
      {flow + "port = 5004\n", "agent.toml:8:", "port"},
      {"src = \"198.18.1.10\"\nproto = \"udp\"\n", "agent.toml:4:", "dst"},
      {flow + "\n[[policy]]\n" + flow, "agent.toml:9:", "same flow"},
      {flow + "name = \"x\"\n\n[[policy]]\nname = \"x\"\n" + flow, "agent.toml:11:", "named 'x'"},
  };
  for (const Case& c : cases) {
    const std::string e = errorOf(head + "[[policy]]\n" + c.body);
    EXPECT_NE(e.find(c.location), std::string::npos) << c.body << "\n-> " << e;
    EXPECT_NE(e.find(c.says), std::string::npos) << c.body << "\n-> " << e;
  }
}

TEST(AgentConfigTest, Enforcement) {
  const std::string head = "[agent]\nname = \"h\"\nmanager = \"tcp://127.0.0.1:7700\"\n";
  Result<AgentConfig> none = parseAgentConfig(head, "a.toml");
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_EQ(none->enforce.mode, EnforceMode::None) << "the kernel is left alone by default";

  Result<AgentConfig> r = parseAgentConfig(
      head + "[enforce]\nmode = \"nftables\"\nlimit = \"police\"\ninterface = \"eth1\"\n",
      "a.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->enforce.mode, EnforceMode::Nftables);
  EXPECT_EQ(r->enforce.limit, LimitMode::Police);
  EXPECT_EQ(r->enforce.interface, "eth1");
  Result<AgentConfig> defaults = parseAgentConfig(head + "[enforce]\nmode = \"nftables\"\n", "a");
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_EQ(defaults->enforce.limit, LimitMode::Auto);
  EXPECT_EQ(defaults->enforce.interface, "") << "the default route's";

  std::string e = errorOf(head + "[enforce]\nmode = \"iptables\"\n");
  EXPECT_NE(e.find("agent.toml:5:"), std::string::npos) << e;
  EXPECT_NE(e.find("\"none\" or \"nftables\""), std::string::npos) << e;
  e = errorOf(head + "[enforce]\nmode = \"nftables\"\nlimit = \"drop\"\n");
  EXPECT_NE(e.find("agent.toml:6:"), std::string::npos) << e;
  e = errorOf(head + "[enforce]\nmode = \"nftables\"\ninterface = \"eth0/1\"\n");
  EXPECT_NE(e.find("not an interface name"), std::string::npos) << e;
  e = errorOf(head + "[enforce]\nlimit = \"shape\"\n");
  EXPECT_NE(e.find("mode = \"nftables\""), std::string::npos) << e;
  e = errorOf(head + "[enforce]\nmode = \"nftables\"\nshape = true\n");
  EXPECT_NE(e.find("shape"), std::string::npos) << e;
}

}  // namespace
}  // namespace qos::agent
