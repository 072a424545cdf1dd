// qos-agent's config: the example's keys, and refusals with file:line:column.
#include "control/agent/agent_config.h"

#include <string>

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace qos::agent
