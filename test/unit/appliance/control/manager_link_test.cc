// The appliance's control agent against a real RequestServer, in process
// over inproc://: a grant reaches the appliance's rules and its reply says
// so; the manager goes away (time moved past the link's timeout) and comes
// back with a new epoch, and the appliance resyncs without touching a rule
// that did not change.
#include "appliance/control/manager_link.h"

#include <atomic>
#include <chrono>
#include <future>
#include <string>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "control/transport/client.h"
#include "test/fakes/fake_rule_target.h"
#include "test/unit/manager/service/test_server.h"

namespace qos::appliance {
namespace {

using manager::test_data::TestServer;
using nlohmann::json;

constexpr const char* kEndpoint = "inproc://qosmgr-link-test";

std::string world() {
  return manager::test_data::voipWorld("1mbit", "10mbit") + R"(
[[appliance]]
name = "gw1"
link = ["lan-a", "lan-b"]
)";
}

class ManagerLinkTest : public ::testing::Test {
protected:
  void SetUp() override {
    startManager(nullptr);
    link_ = std::make_unique<ManagerLink>(
        &context_, ManagerLinkOptions{kEndpoint, std::nullopt, 10'000},
        SyncSession("gw1", "i-1", "test", {}), target_, nullptr,
        [this] { return ManagerLink::steadyClockMs() + skew_ms_.load(); });
    ASSERT_TRUE(link_->start().ok());
  }

  void startManager(const std::vector<manager::Grant>* restore) {
    manager_ = std::make_unique<TestServer>();
    manager_->config.heartbeat_ms = 200;
    const Result<void> started =
        manager_->start(world(), {.context = &context_, .endpoint = kEndpoint, .restore = restore});
    ASSERT_TRUE(started.ok()) << started.error().message;
  }

  /** Polls the link until @p done, at most @p turns turns of 10 ms. */
  template <typename Done>
  bool pollUntil(Done done, int turns = 500) {
    for (int i = 0; i < turns && !done(); ++i) {
      link_->poll(10);
    }
    return done();
  }

  zmq::context_t context_{1};
  std::unique_ptr<TestServer> manager_;
  test_fakes::FakeRuleTarget target_;
  std::atomic<uint64_t> skew_ms_{0};
  std::unique_ptr<ManagerLink> link_;
};

TEST_F(ManagerLinkTest, AGrantReachesTheApplianceBeforeItsReply) {
  ASSERT_TRUE(pollUntil([&] { return link_->connected(); }));
  // The provision's reply waits for the appliance: ask from another thread.
  std::future<Result<control::Reply>> reply = std::async(std::launch::async, [this] {
    control::RequestClient client(context_);
    EXPECT_TRUE(client.connect(kEndpoint, 3000).ok());
    return client.call("provision", manager::test_data::voipProvision(20000, "r-1"));
  });
  ASSERT_TRUE(pollUntil(
      [&] { return reply.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }));
  const Result<control::Reply> r = reply.get();
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->status, control::ReplyStatus::Ok) << r->error.message;
  EXPECT_EQ(r->body["enforced_by"], json::array({"gw1"}));
  EXPECT_EQ(target_.book.count(RuleOrigin::Manager), 1u);
  const FlowRule* rule =
      target_.book.find(RuleId::manager(r->body["flow_id"], control::Direction::Forward));
  ASSERT_NE(rule, nullptr);
  EXPECT_EQ(rule->dscp, 46) << "lan-b, the network entered, is not class-enabled: the packets "
                               "keep lan-a's EF";
}

TEST_F(ManagerLinkTest, AManagerThatComesBackIsResyncedWithoutTouchingUnchangedRules) {
  ASSERT_TRUE(pollUntil([&] { return link_->connected(); }));
  std::future<Result<control::Reply>> reply = std::async(std::launch::async, [this] {
    control::RequestClient client(context_);
    EXPECT_TRUE(client.connect(kEndpoint, 3000).ok());
    return client.call("provision", manager::test_data::voipProvision(20001, "r-2"));
  });
  ASSERT_TRUE(pollUntil(
      [&] { return reply.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }));
  ASSERT_TRUE(reply.get().ok());
  const std::vector<manager::Grant> live = manager_->engine->flows();
  ASSERT_EQ(live.size(), 1u);
  const std::string first_epoch = link_->session().epoch();
  const size_t ops = target_.table_ops;

  // The manager goes away; the link notices once its timeout passed.
  manager_.reset();
  skew_ms_ = 10'000;
  ASSERT_TRUE(pollUntil([&] { return !link_->connected(); }));
  EXPECT_EQ(target_.book.count(RuleOrigin::Manager), 1u) << "the rules stay while it is away";

  // It comes back (a new process: a new epoch) with the same reservation.
  startManager(&live);
  skew_ms_ = 30'000;  // past the backoff
  ASSERT_TRUE(
      pollUntil([&] { return link_->connected() && link_->session().epoch() != first_epoch; }));
  ASSERT_TRUE(pollUntil([&] { return !link_->session().inSnapshot(); }));
  EXPECT_EQ(target_.book.count(RuleOrigin::Manager), 1u);
  EXPECT_EQ(target_.table_ops, ops) << "an unchanged rule is not replaced";
}

}  // namespace
}  // namespace qos::appliance
