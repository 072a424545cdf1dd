// Which appliance enforces what: a grant's path gives the appliances, and
// each writes the class's DSCP of the network the packets enter there.
#include "manager/appliances/rule_plan.h"

#include <gtest/gtest.h>

#include "test/fakes/two_lan_example.h"

namespace qos::manager {
namespace {

using control::Direction;
using control::Grant;
using control::MeterParams;

// lan-a (EF 46) -- wan (EF 40) -- lan-b (not class-enabled), gw1 on lan-a/wan
// (inside lan-a), gw2 on wan/lan-b (inside lan-b: written the other way round).
ManagerConfig twoGateways() {
  Result<ManagerConfig> config = parseManagerConfig(std::string(test_data::kTwoLanExample) + R"(
[[appliance]]
name = "gw1"
link = ["lan-a", "wan"]
[[appliance]]
name = "gw2"
link = ["lan-b", "wan"]
)",
                                                    "two.toml");
  EXPECT_TRUE(config.ok()) << config.error().message;
  return config.ok() ? *config : ManagerConfig{};
}

Grant voipGrant(bool bidir) {
  Grant g;
  g.flow_id = 7;
  g.profile = {"EF", 100'000, 10'000};
  g.flow.src = *parseIpAddress("198.18.1.10");
  g.flow.dst = *parseIpAddress("198.19.1.20");
  g.flow.src_port = 40000;
  g.flow.dst_port = 20000;
  g.flow.protocol = 17;
  g.dscp = 46;
  g.path = {"lan-a", "wan", "lan-b"};
  if (bidir) {
    g.bidirectional = true;
    g.reverse_dscp = 40;
    g.reverse_path = {"lan-b", "wan", "lan-a"};
  }
  g.meter = {100'000, 10'000, 10'000};
  return g;
}

TEST(RulePlannerTest, EachApplianceWritesTheDscpOfTheNetworkEntered) {
  const ManagerConfig config = twoGateways();
  const RulePlanner planner(config);
  const std::vector<PlannedRule> rules = planner.plan(voipGrant(/*bidir=*/true));
  ASSERT_EQ(rules.size(), 4u);
  // Forward: gw1 (entering wan: 40), gw2 (entering lan-b, not class-enabled:
  // keeps wan's 40).
  EXPECT_EQ(config.appliances[rules[0].appliance].name, "gw1");
  EXPECT_EQ(rules[0].rule.dir, Direction::Forward);
  EXPECT_EQ(rules[0].rule.dscp, 40);
  EXPECT_EQ(rules[0].rule.flow.src, *parseIpAddress("198.18.1.10"));
  EXPECT_EQ(rules[0].rule.flow.dst_port, 20000);
  EXPECT_EQ(config.appliances[rules[1].appliance].name, "gw2");
  EXPECT_EQ(rules[1].rule.dscp, 40);
  // Reverse: gw2 (entering wan: 40), gw1 (entering lan-a: 46); the 5-tuple swapped.
  EXPECT_EQ(config.appliances[rules[2].appliance].name, "gw2");
  EXPECT_EQ(rules[2].rule.dir, Direction::Reverse);
  EXPECT_EQ(rules[2].rule.dscp, 40);
  EXPECT_EQ(rules[2].rule.flow.src, *parseIpAddress("198.19.1.20"));
  EXPECT_EQ(rules[2].rule.flow.src_port, 20000);
  EXPECT_EQ(rules[2].rule.flow.dst_port, 40000);
  EXPECT_EQ(config.appliances[rules[3].appliance].name, "gw1");
  EXPECT_EQ(rules[3].rule.dscp, 46);
  for (const PlannedRule& r : rules) {
    EXPECT_EQ(r.rule.flow_id, 7u);
    EXPECT_EQ(r.rule.meter, (MeterParams{100'000, 10'000, 10'000}));
  }
}

TEST(RulePlannerTest, BeforeAnyClassEnabledNetworkTheHostsDscpIsKept) {
  // lan-b (no classes) -- x (no classes) -- wan: an appliance between lan-b
  // and x lets the packets keep the DSCP the host marked (the grant's).
  Result<ManagerConfig> config = parseManagerConfig(R"(
[[network]]
name = "lan-b"
prefixes = ["198.19.1.0/24"]
[[network]]
name = "x"
[[network]]
name = "wan"
prefixes = ["198.18.1.0/24"]
class_enabled = true
classes = { EF = { dscp = 40 } }
[[link]]
between = ["lan-b", "x"]
[[link]]
between = ["x", "wan"]
[[appliance]]
name = "edge"
link = ["lan-b", "x"]
[[application]]
name = "voip"
default = { class = "EF", rate = "100kbit", burst = "10kB" }
)",
                                                    "chain.toml");
  ASSERT_TRUE(config.ok()) << config.error().message;
  Grant g = voipGrant(false);
  g.path = {"lan-b", "x", "wan"};
  g.dscp = 40;
  const std::vector<PlannedRule> rules = RulePlanner(*config).plan(g);
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_EQ(rules[0].rule.dscp, 40);
}

TEST(RulePlannerTest, NoApplianceOnThePathNoRule) {
  const ManagerConfig config = twoGateways();
  Grant local = voipGrant(false);
  local.path = {"lan-a"};
  EXPECT_TRUE(RulePlanner(config).plan(local).empty());
  EXPECT_TRUE(RulePlanner(config).appliancesOn({"lan-a"}).empty());
  EXPECT_EQ(RulePlanner(config).appliancesOn({"lan-a", "wan", "lan-b"}).size(), 2u);
}

TEST(ManagerConfigAppliancesTest, UnknownLinkAndDuplicateNameAreRefusedWithTheirPlace) {
  const auto errorOf = [](const std::string& appliance) {
    Result<ManagerConfig> config =
        parseManagerConfig(std::string(test_data::kTwoLanExample) + appliance, "bad.toml");
    return config.ok() ? std::string("accepted") : config.error().message;
  };
  EXPECT_EQ(errorOf("[[appliance]]\nname = \"gw1\"\nlink = [\"lan-a\", \"lan-b\"]\n")
                    .find("are not joined by any [[link]]") != std::string::npos,
            true);
  const std::string unknown =
      errorOf("[[appliance]]\nname = \"gw1\"\nlink = [\"lan-a\", \"nope\"]\n");
  EXPECT_NE(unknown.find("unknown network 'nope'"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("bad.toml:"), std::string::npos) << unknown;
  const std::string dup = errorOf(
      "[[appliance]]\nname = \"gw1\"\nlink = [\"lan-a\", \"wan\"]\n"
      "[[appliance]]\nname = \"gw1\"\nlink = [\"wan\", \"lan-b\"]\n");
  EXPECT_NE(dup.find("already the name of appliance[0]"), std::string::npos) << dup;
}

}  // namespace
}  // namespace qos::manager
