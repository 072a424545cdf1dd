// The appliance sync, both ends in one process: the manager's ApplianceHub
// and the appliance's SyncSession over a rule book, with time in our hands.
// Sequence, snapshot pages with changes between them, gaps, restarts of
// either side, heartbeats, acknowledgements and what they mean for grants.
#include "manager/appliances/appliance_hub.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "appliance/control/sync_session.h"
#include "test/fakes/fake_rule_target.h"
#include "test/fakes/two_lan_example.h"

namespace qos::manager {
namespace {

using appliance::RuleId;
using appliance::RuleOrigin;
using appliance::SyncSession;
using control::ApplianceState;
using control::Direction;
using control::SyncKind;
using control::SyncReply;

constexpr uint64_t kStartMs = 1'000'000;

/** One appliance: its session, its rules, and the reply the hub gave it (or still holds). */
struct FakeAppliance {
  explicit FakeAppliance(std::string n, std::string instance = "i-1")
      : name(n), session(n, std::move(instance), "test", {}) {}

  /** Sends the next sync.  @return true if it was answered at once (and taken). */
  bool sync(ApplianceHub& hub, uint64_t now_ms, std::vector<control::RuleCounters> counters = {}) {
    reply.reset();
    hub.sync(session.nextRequest(std::move(counters), false),
             Peer{name, control::Role::Appliance, "10.0.0.1:5555"}, now_ms,
             [this](const SyncReply& r) { reply = r; });
    return takeReply();
  }
  /** Takes a reply the hub gave since, if any (a held sync answered). */
  bool takeReply() {
    if (!reply) {
      return false;
    }
    last = *reply;
    reply.reset();
    session.onReply(*last, target);
    return true;
  }
  /** Syncs until the hub holds the sync (nothing more to tell). */
  void catchUp(ApplianceHub& hub, uint64_t now_ms) {
    for (int i = 0; i < 1000 && sync(hub, now_ms); ++i) {
    }
  }
  size_t rules() const { return target.book.count(RuleOrigin::Manager); }

  std::string name;
  SyncSession session;
  test_fakes::FakeRuleTarget target;
  std::optional<SyncReply> reply;
  std::optional<SyncReply> last;
};

ManagerConfig world(const std::string& heartbeat = "1s") {
  Result<ManagerConfig> config =
      parseManagerConfig(std::string(test_data::kTwoLanExample) +
                             "\n[[appliance]]\nname = \"gw1\"\n"
                             "link = [\"lan-a\", \"wan\"]\n[[appliance]]\nname = \"gw2\"\n"
                             "link = [\"wan\", \"lan-b\"]\n",
                         "hub.toml");
  EXPECT_TRUE(config.ok()) << config.error().message;
  ManagerConfig c = config.ok() ? *config : ManagerConfig{};
  c.heartbeat_ms = heartbeat == "1s" ? 1000 : 500;
  return c;
}

Grant grant(uint64_t flow_id, bool bidir = false) {
  Grant g;
  g.flow_id = flow_id;
  g.profile = {"EF", 100'000, 10'000};
  g.flow.src = *parseIpAddress("198.18.1.10");
  g.flow.dst = *parseIpAddress("198.19.1.20");
  g.flow.src_port = static_cast<uint16_t>(40000 + flow_id);
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

std::vector<FlowEvent> granted(std::vector<uint64_t> ids) {
  std::vector<FlowEvent> events;
  for (const uint64_t id : ids) {
    events.push_back({FlowEvent::Kind::Granted, grant(id)});
  }
  return events;
}

TEST(ApplianceHubTest, ASnapshotFirstThenChangesAsTheyAreGrantedAndReleased) {
  const ManagerConfig config = world();
  ApplianceHub hub(config);
  hub.load({grant(1)});
  FakeAppliance gw1("gw1");
  ASSERT_TRUE(gw1.sync(hub, kStartMs));
  EXPECT_EQ(gw1.last->kind, SyncKind::Snapshot);
  EXPECT_TRUE(gw1.last->last_page);
  EXPECT_EQ(gw1.session.epoch(), hub.epoch());
  EXPECT_EQ(gw1.rules(), 1u);
  EXPECT_EQ(gw1.target.book.find(RuleId::manager(1, Direction::Forward))->dscp, 40)
      << "gw1 writes wan's EF";

  // In sync: the next sync is held, until there is something to say.
  EXPECT_FALSE(gw1.sync(hub, kStartMs));
  EXPECT_EQ(hub.status(kStartMs)[0].state, ApplianceState::Up);
  hub.publish(granted({2, 3}));
  ASSERT_TRUE(gw1.takeReply()) << "a held sync is answered when its appliance has changes";
  EXPECT_EQ(gw1.last->kind, SyncKind::Updates);
  EXPECT_EQ(gw1.last->changes.size(), 2u);
  EXPECT_EQ(gw1.rules(), 3u);
  EXPECT_EQ(hub.status(kStartMs)[0].state, ApplianceState::Syncing) << "not acknowledged yet";
  EXPECT_FALSE(gw1.sync(hub, kStartMs));  // acknowledges, then held
  const control::ApplianceStatus s = hub.status(kStartMs)[0];
  EXPECT_EQ(s.state, ApplianceState::Up);
  EXPECT_EQ(s.seq_acked, s.seq);
  EXPECT_EQ(s.rules_installed, 3u);
  EXPECT_EQ(s.address, "10.0.0.1:5555");

  hub.publish({{FlowEvent::Kind::Released, grant(2)}, {FlowEvent::Kind::Expired, grant(1)}});
  ASSERT_TRUE(gw1.takeReply());
  EXPECT_EQ(gw1.rules(), 1u);
  EXPECT_NE(gw1.target.book.find(RuleId::manager(3, Direction::Forward)), nullptr);
}

TEST(ApplianceHubTest, SnapshotPagesWithChangesBetweenThemEndExact) {
  const ManagerConfig config = world();
  ApplianceHub hub(config, ApplianceHubLimits{.page_rules = 2, .max_log = 1000});
  hub.load({grant(1), grant(2), grant(3), grant(4), grant(5)});
  FakeAppliance gw1("gw1");
  ASSERT_TRUE(gw1.sync(hub, kStartMs));
  EXPECT_EQ(gw1.last->rules.size(), 2u);
  EXPECT_FALSE(gw1.last->last_page);
  EXPECT_TRUE(gw1.session.inSnapshot());
  // While it pages: flow 1 (in the page it has) and flow 5 (in one it has
  // not) go, flows 6 and 7 come.
  hub.publish({{FlowEvent::Kind::Released, grant(1)}, {FlowEvent::Kind::Released, grant(5)}});
  hub.publish(granted({6, 7}));
  gw1.catchUp(hub, kStartMs);
  EXPECT_FALSE(gw1.session.inSnapshot());
  std::vector<uint64_t> held;
  gw1.target.book.forEach(
      RuleOrigin::Manager,
      [&held](const RuleId& id, const appliance::FlowRule&) { held.push_back(id.flow_id); });
  EXPECT_EQ(held, (std::vector<uint64_t>{2, 3, 4, 6, 7}));
  EXPECT_EQ(hub.status(kStartMs)[0].state, ApplianceState::Up);
}

TEST(ApplianceHubTest, AManagerRestartReconcilesAndLeavesUnchangedRulesAlone) {
  const ManagerConfig config = world();
  FakeAppliance gw1("gw1");
  {
    ApplianceHub before(config);
    before.load({grant(1), grant(2, /*bidir=*/true), grant(3)});
    gw1.catchUp(before, kStartMs);
    ASSERT_EQ(gw1.rules(), 4u);
  }
  // The manager comes back with a new epoch; flow 3 was released while it
  // was away, flow 4 granted.
  ApplianceHub after(config);
  after.load({grant(1), grant(2, true), grant(4)});
  ASSERT_NE(after.epoch(), gw1.session.epoch());
  const size_t ops_before = gw1.target.table_ops;
  gw1.catchUp(after, kStartMs);
  EXPECT_EQ(gw1.session.epoch(), after.epoch());
  EXPECT_EQ(gw1.rules(), 4u);
  EXPECT_EQ(gw1.target.book.find(RuleId::manager(3, Direction::Forward)), nullptr);
  EXPECT_NE(gw1.target.book.find(RuleId::manager(4, Direction::Forward)), nullptr);
  EXPECT_EQ(gw1.target.table_ops - ops_before, 2u)
      << "one removal and one install; the three unchanged rules are not replaced";
}

TEST(ApplianceHubTest, AnApplianceRestartGetsItsRulesBack) {
  const ManagerConfig config = world();
  ApplianceHub hub(config);
  hub.load({grant(1), grant(2)});
  FakeAppliance gw1("gw1");
  gw1.catchUp(hub, kStartMs);
  FakeAppliance restarted("gw1", "i-2");  // no epoch, no rules
  restarted.catchUp(hub, kStartMs + 10);
  EXPECT_EQ(restarted.rules(), 2u);
  EXPECT_EQ(hub.status(kStartMs + 10)[0].state, ApplianceState::Up);
}

TEST(ApplianceHubTest, ChangesTheLogNoLongerHoldsGiveASnapshot) {
  const ManagerConfig config = world();
  ApplianceHub hub(config, ApplianceHubLimits{.page_rules = 100, .max_log = 3});
  FakeAppliance gw1("gw1");
  gw1.catchUp(hub, kStartMs);
  // Away: its held sync is dropped, changes pile up past the log's cap.
  hub.tick(kStartMs + 10'000);
  for (uint64_t id = 1; id <= 10; ++id) {
    hub.publish(granted({id}));
  }
  ASSERT_TRUE(gw1.sync(hub, kStartMs + 11'000));
  EXPECT_EQ(gw1.last->kind, SyncKind::Snapshot) << "a gap is never skipped";
  gw1.catchUp(hub, kStartMs + 11'000);
  EXPECT_EQ(gw1.rules(), 10u);
}

TEST(ApplianceHubTest, HeartbeatsBothWaysAndDownAfterThreeMissed) {
  const ManagerConfig config = world();
  ApplianceHub hub(config);
  FakeAppliance gw1("gw1");
  EXPECT_EQ(hub.status(kStartMs)[0].state, ApplianceState::Down) << "never heard from";
  EXPECT_FALSE(hub.status(kStartMs)[0].last_heartbeat_age_ms.has_value());
  gw1.catchUp(hub, kStartMs);
  hub.tick(kStartMs + 999);
  EXPECT_FALSE(gw1.takeReply());
  hub.tick(kStartMs + 1000);
  ASSERT_TRUE(gw1.takeReply()) << "the held sync is answered at the heartbeat";
  EXPECT_TRUE(gw1.last->changes.empty());
  EXPECT_EQ(gw1.last->heartbeat_ms, 1000u);
  EXPECT_EQ(hub.status(kStartMs + 3000)[0].state, ApplianceState::Up);
  EXPECT_EQ(hub.status(kStartMs + 3001)[0].state, ApplianceState::Down);
  EXPECT_EQ(*hub.status(kStartMs + 3001)[0].last_heartbeat_age_ms, 3001u);
  EXPECT_EQ(hub.status(kStartMs)[1].state, ApplianceState::Down) << "gw2 never came";
}

TEST(ApplianceHubTest, AGrantReplyWaitsForTheAppliancesThatAreUp) {
  const ManagerConfig config = world();
  ApplianceHub hub(config);
  FakeAppliance gw1("gw1");
  gw1.catchUp(hub, kStartMs);
  // gw2 is down: it neither delays the reply nor counts as enforcing.
  const Grant g = grant(9);
  hub.publish(granted({9}));
  std::optional<control::Enforcement> answered;
  ASSERT_TRUE(hub.awaitEnforcement(g, kStartMs, kStartMs + 1000,
                                   [&](const control::Enforcement& e) { answered = e; }));
  EXPECT_FALSE(answered);
  ASSERT_TRUE(gw1.takeReply());               // the change
  EXPECT_FALSE(gw1.sync(hub, kStartMs + 5));  // its acknowledgement
  ASSERT_TRUE(answered) << "answered on the acknowledgement, not at the deadline";
  EXPECT_EQ(answered->enforced_by, (std::vector<std::string>{"gw1"}));
  EXPECT_EQ(answered->pending, (std::vector<std::string>{"gw2"}));
  EXPECT_FALSE(
      hub.awaitEnforcement(g, kStartMs + 6, kStartMs + 1000, [](const control::Enforcement&) {}))
      << "nothing left to wait for";

  // At the deadline, whatever is known.
  const Grant late = grant(10);
  hub.publish(granted({10}));
  answered.reset();
  ASSERT_TRUE(hub.awaitEnforcement(late, kStartMs + 10, kStartMs + 500,
                                   [&](const control::Enforcement& e) { answered = e; }));
  hub.tick(kStartMs + 499);
  EXPECT_FALSE(answered);
  hub.tick(kStartMs + 500);
  ASSERT_TRUE(answered);
  EXPECT_EQ(answered->pending, (std::vector<std::string>{"gw1", "gw2"}));
}

TEST(ApplianceHubTest, AnApplianceSyncsOnlyAsItself) {
  const ManagerConfig config = world();
  ApplianceHub hub(config);
  control::SyncRequest request;
  request.name = "gw1";
  request.instance = "x";
  const Peer gw2{"gw2", control::Role::Appliance, ""};
  EXPECT_EQ(hub.admit(request, gw2, /*authenticated=*/true)->code, "not_authorized");
  EXPECT_FALSE(hub.admit(request, gw2, /*authenticated=*/false).has_value());
  request.name = "gw9";
  EXPECT_EQ(hub.admit(request, Peer{"gw9", control::Role::Appliance, ""}, true)->code,
            "unknown_appliance");
}

TEST(ApplianceHubTest, ARuleTheApplianceCannotTakeIsRejectedAndTheRestGoesOn) {
  const ManagerConfig config = world();
  ApplianceHub hub(config);
  FakeAppliance gw1("gw1");
  gw1.target.refused_src_ports.insert(40002);  // flow 2's source port
  gw1.catchUp(hub, kStartMs);
  hub.publish(granted({1, 2, 3}));
  ASSERT_TRUE(gw1.takeReply());
  EXPECT_EQ(gw1.rules(), 2u);
  EXPECT_FALSE(gw1.sync(hub, kStartMs));  // acknowledges, with the rejection
  const control::ApplianceStatus s = hub.status(kStartMs)[0];
  EXPECT_EQ(s.rules_rejected, 1u);
  EXPECT_EQ(s.rules_installed, 2u);
  EXPECT_EQ(s.seq_acked, s.seq);
  EXPECT_EQ(hub.enforcement(grant(2), kStartMs).pending, (std::vector<std::string>{"gw1", "gw2"}));
  EXPECT_EQ(hub.enforcement(grant(3), kStartMs).enforced_by, (std::vector<std::string>{"gw1"}));
}

TEST(ApplianceHubTest, CountersGiveTheDeliveredRateAndIdleFlowsAreReleased) {
  ManagerConfig config = world();
  config.idle_release_sec = 60;
  // One appliance only, so that every appliance on the path reports.
  config.appliances.pop_back();
  ApplianceHub hub(config);
  hub.load({grant(1), grant(2)});
  FakeAppliance gw1("gw1");
  gw1.catchUp(hub, kStartMs);
  const auto counters = [](uint64_t flow_id, uint64_t bytes, uint64_t red,
                           std::optional<uint64_t> idle_ms) {
    control::RuleCounters c;
    c.flow_id = flow_id;
    c.green_pkts = bytes / 100;
    c.green_bytes = bytes;
    c.red_pkts = red;
    c.idle_ms = idle_ms;
    return c;
  };
  hub.tick(kStartMs + 1000);  // the held sync's heartbeat
  ASSERT_TRUE(gw1.takeReply());
  EXPECT_FALSE(gw1.sync(hub, kStartMs + 1000,
                        {counters(1, 100'000, 0, 0), counters(2, 0, 0, std::nullopt)}));
  hub.tick(kStartMs + 2000);
  ASSERT_TRUE(gw1.takeReply());
  EXPECT_FALSE(gw1.sync(hub, kStartMs + 2000, {counters(1, 225'000, 7, 0)}));
  const control::Delivery d = hub.delivery(grant(1));
  ASSERT_TRUE(d.delivered_bps.has_value());
  EXPECT_EQ(*d.delivered_bps, 1'000'000u) << "125000 bytes in 1 s";
  EXPECT_EQ(d.policed_pkts, 7u);
  EXPECT_EQ(*d.last_seen_ms, kStartMs + 2000);

  // Flow 2 never carried a packet: released 60 s after it was first reported.
  EXPECT_TRUE(hub.tick(kStartMs + 60'999).empty());
  hub.tick(kStartMs + 61'000);  // heartbeats keep the appliance up
  ASSERT_TRUE(gw1.takeReply());
  EXPECT_FALSE(gw1.sync(hub, kStartMs + 61'000, {counters(1, 225'000, 7, 58'000)}));
  EXPECT_EQ(hub.tick(kStartMs + 62'000), (std::vector<uint64_t>{2}));
  // Flow 1 last seen at 61000 - 58000 = 3000: idle from 63000.
  ASSERT_TRUE(gw1.takeReply());
  EXPECT_FALSE(gw1.sync(hub, kStartMs + 62'500));
  EXPECT_EQ(hub.tick(kStartMs + 63'600), (std::vector<uint64_t>{1, 2}));
}

}  // namespace
}  // namespace qos::manager
