// Standing policies against a real RequestServer in process, on a clock the
// test moves: a policy is granted and shown; a denied one is asked again
// with backoff until room frees; a manager that does not answer is asked
// less and less often, never less than once a minute; a lost grant is
// asked for again; removed and changed policies are released; everything is
// released when the holder goes; and the agent answers "status" with it all.
#include "control/agent/standing_policies.h"

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "control/agent/agent.h"
#include "control/agent/agent_status.h"
#include "control/transport/client.h"
#include "test/fakes/fake_host_kernel.h"
#include "test/unit/control/agent/inproc_agent.h"
#include "test/unit/manager/service/test_server.h"

namespace qos::agent {
namespace {

using manager::test_data::TestServer;
using manager::test_data::voipWorld;

constexpr uint64_t kStartMs = 1'700'000'000'000;
constexpr const char* kManager = "inproc://standing-policies-manager";

StandingPolicy voipPolicy(const std::string& name, uint16_t sport) {
  StandingPolicy policy;
  policy.name = name;
  policy.request.application = "voip";
  policy.request.flow.src = *parseIpAddress("198.18.1.10");
  policy.request.flow.dst = *parseIpAddress("198.19.1.20");
  policy.request.flow.protocol = 17;
  policy.request.flow.src_port = sport;
  policy.request.flow.dst_port = 20000;
  return policy;
}

class StandingPoliciesTest : public ::testing::Test {
protected:
  /** Starts the manager with @p ef of EF and @p af41 of AF41 on lan-a. */
  void startManager(const std::string& ef, const std::string& af41) {
    TestServer::Options options;
    options.context = &context_;
    options.endpoint = kManager;
    options.clock = [this] { return now_.load(); };
    const Result<void> started = server_.start(voipWorld(ef, af41), options);
    ASSERT_TRUE(started.ok()) << started.error().message;
  }

  std::unique_ptr<client::Session> openSession(const std::string& endpoint, int timeout_ms) {
    client::SessionOptions options;
    options.endpoint = endpoint;
    options.context = &context_;
    options.timeout_ms = timeout_ms;
    options.steady_ms = [this] { return now_.load(); };
    options.wall_ms = [this] { return now_.load(); };
    Result<std::unique_ptr<client::Session>> session = client::Session::open(std::move(options));
    EXPECT_TRUE(session.ok()) << session.error().message;
    return session.ok() ? std::move(*session) : nullptr;
  }

  std::unique_ptr<PolicyHolder> makeHolder(client::Session& session) {
    PolicyHolder::Options options;
    options.ask = [&session](control::AdmissionRequest r) { return session.request(std::move(r)); };
    options.steady_ms = [this] { return now_.load(); };
    options.watch = [this](const control::Grant& g, bool held) {
      watched_.push_back((held ? "+" : "-") + std::to_string(g.flow_id));
    };
    options.seed = 7;
    return std::make_unique<PolicyHolder>(std::move(options));
  }

  static const PolicyStatus& only(const std::vector<PolicyStatus>& all) {
    EXPECT_EQ(all.size(), 1u);
    return all.front();
  }

  bool managerHolds(uint64_t flow_id) const { return server_.engine->flow(flow_id).has_value(); }

  zmq::context_t context_{1};
  std::atomic<uint64_t> now_{kStartMs};
  TestServer server_;
  std::vector<std::string> watched_;
};

TEST_F(StandingPoliciesTest, APolicyIsGrantedShownAndReleasedWithTheHolder) {
  startManager("10mbit", "10mbit");
  auto session = openSession(kManager, 1000);
  auto holder = makeHolder(*session);
  const std::vector<std::string> changes = holder->set({voipPolicy("phone", 40000)});
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0], "policy phone: added");
  EXPECT_EQ(only(holder->status()).state, PolicyState::Asking);

  holder->tick();
  const PolicyStatus s = only(holder->status());
  ASSERT_EQ(s.state, PolicyState::Held) << s.reason;
  EXPECT_EQ(s.name, "phone");
  EXPECT_EQ(s.application, "voip");
  EXPECT_EQ(s.dscp, 46);
  EXPECT_EQ(s.class_name, "EF");
  EXPECT_EQ(s.rate_bps, 100'000u);
  EXPECT_EQ(s.burst_bytes, 10'000u);
  EXPECT_FALSE(s.next_try_in_ms.has_value());
  EXPECT_TRUE(managerHolds(s.flow_id));
  EXPECT_EQ(watched_, std::vector<std::string>{"+" + std::to_string(s.flow_id)});
  EXPECT_EQ(holder->nextDueMs(), std::nullopt) << "a held policy waits for nothing";

  holder->tick();  // held: not asked again
  EXPECT_EQ(only(holder->status()).flow_id, s.flow_id);

  holder.reset();
  EXPECT_FALSE(managerHolds(s.flow_id)) << "the holder's end releases what it held";
  EXPECT_EQ(watched_.back(), "-" + std::to_string(s.flow_id));
}

TEST_F(StandingPoliciesTest, ADeniedPolicyIsAskedAgainWithBackoffUntilRoomFrees) {
  startManager("100kbit", "100kbit");  // room for one voip flow in EF, one in AF41
  auto session = openSession(kManager, 1000);
  std::vector<std::shared_ptr<client::HeldGrant>> others;
  for (uint16_t sport : {41000, 41001}) {
    control::AdmissionRequest r = voipPolicy("x", sport).request;
    Result<client::Outcome> outcome = session->request(r);
    ASSERT_TRUE(outcome.ok()) << outcome.error().message;
    ASSERT_TRUE(std::holds_alternative<std::shared_ptr<client::HeldGrant>>(*outcome));
    others.push_back(std::get<std::shared_ptr<client::HeldGrant>>(*outcome));
  }
  auto holder = makeHolder(*session);
  holder->set({voipPolicy("phone", 40000)});
  holder->tick();
  PolicyStatus s = only(holder->status());
  ASSERT_EQ(s.state, PolicyState::Denied);
  EXPECT_NE(s.reason.find("no_capacity"), std::string::npos) << s.reason;
  EXPECT_EQ(s.attempts, 1u);
  ASSERT_TRUE(s.next_try_in_ms.has_value());
  EXPECT_GE(*s.next_try_in_ms, 800u);  // 1 s, ±20 %
  EXPECT_LE(*s.next_try_in_ms, 1200u);

  holder->tick();  // not due yet
  EXPECT_EQ(only(holder->status()).attempts, 1u);
  now_ += 1200;
  holder->tick();
  s = only(holder->status());
  EXPECT_EQ(s.attempts, 2u);
  ASSERT_TRUE(s.next_try_in_ms.has_value());
  EXPECT_GE(*s.next_try_in_ms, 1600u);  // doubled: 2 s, ±20 %
  EXPECT_LE(*s.next_try_in_ms, 2400u);

  ASSERT_TRUE(others[0]->release().ok());  // room again
  now_ += 2400;
  holder->tick();
  s = only(holder->status());
  ASSERT_EQ(s.state, PolicyState::Held) << s.reason;
  EXPECT_EQ(s.class_name, "EF");
  EXPECT_EQ(s.attempts, 0u);
  EXPECT_TRUE(s.reason.empty());
}

TEST_F(StandingPoliciesTest, AManagerThatDoesNotAnswerIsAskedLessOftenDownToOnceAMinute) {
  // Nothing is bound at this endpoint: every ask times out.
  auto session = openSession("inproc://standing-policies-nobody", 50);
  auto holder = makeHolder(*session);
  holder->set({voipPolicy("phone", 40000)});
  uint64_t last_wait = 0;
  for (int i = 0; i < 9; ++i) {
    holder->tick();
    const PolicyStatus s = only(holder->status());
    ASSERT_EQ(s.state, PolicyState::Unreachable) << s.reason;
    ASSERT_TRUE(s.next_try_in_ms.has_value());
    const uint64_t nominal = std::min<uint64_t>(1000u << i, PolicyHolder::kMaxRetryMs);
    EXPECT_GE(*s.next_try_in_ms, nominal * 8 / 10) << "try " << i + 1;
    EXPECT_LE(*s.next_try_in_ms, nominal * 12 / 10) << "try " << i + 1;
    last_wait = *s.next_try_in_ms;
    now_ += last_wait;
  }
  EXPECT_EQ(only(holder->status()).attempts, 9u);
  EXPECT_GE(last_wait, PolicyHolder::kMaxRetryMs * 8 / 10);
}

TEST_F(StandingPoliciesTest, OneUnansweredAskSparesTheOthersTheWait) {
  auto session = openSession("inproc://standing-policies-nobody", 50);
  auto holder = makeHolder(*session);
  holder->set({voipPolicy("a", 40000), voipPolicy("b", 40001), voipPolicy("c", 40002)});
  holder->tick();
  const std::vector<PolicyStatus> all = holder->status();
  ASSERT_EQ(all.size(), 3u);
  for (const PolicyStatus& s : all) {
    EXPECT_EQ(s.state, PolicyState::Unreachable) << s.name;
    EXPECT_TRUE(s.next_try_in_ms.has_value()) << s.name;
  }
  EXPECT_EQ(all[0].attempts, 1u);
  EXPECT_EQ(all[1].attempts, 0u) << "not asked: the manager had just not answered";
  EXPECT_EQ(all[2].attempts, 0u);
}

TEST_F(StandingPoliciesTest, RemovedAndChangedPoliciesAreReleasedUnchangedOnesKept) {
  startManager("10mbit", "10mbit");
  auto session = openSession(kManager, 1000);
  auto holder = makeHolder(*session);
  holder->set({voipPolicy("a", 40000), voipPolicy("b", 40001), voipPolicy("c", 40002)});
  holder->tick();
  ASSERT_EQ(holder->held(), 3u);
  const std::vector<PolicyStatus> before = holder->status();

  // a unchanged, b's port changed, c removed, d new.
  const std::vector<std::string> changes =
      holder->set({voipPolicy("a", 40000), voipPolicy("b", 40011), voipPolicy("d", 40003)});
  EXPECT_EQ(changes.size(), 4u);  // b (new form) and d added, b (old form) changed, c removed
  EXPECT_TRUE(managerHolds(before[0].flow_id)) << "an unchanged policy keeps its grant";
  EXPECT_FALSE(managerHolds(before[1].flow_id)) << "a changed policy's old grant is released";
  EXPECT_FALSE(managerHolds(before[2].flow_id)) << "a removed policy's grant is released";
  holder->tick();
  const std::vector<PolicyStatus> after = holder->status();
  ASSERT_EQ(after.size(), 3u);
  EXPECT_EQ(after[0].flow_id, before[0].flow_id);
  for (const PolicyStatus& s : after) {
    EXPECT_EQ(s.state, PolicyState::Held) << s.name << ": " << s.reason;
    EXPECT_TRUE(managerHolds(s.flow_id)) << s.name;
  }
  EXPECT_EQ(after[1].flow.src_port, 40011);
  EXPECT_EQ(server_.engine->flows().size(), 3u);
}

TEST_F(StandingPoliciesTest, ALostGrantIsAskedForAgain) {
  startManager("10mbit", "10mbit");
  auto session = openSession(kManager, 1000);
  auto holder = makeHolder(*session);
  holder->set({voipPolicy("phone", 40000)});
  holder->tick();
  const uint64_t first = only(holder->status()).flow_id;
  ASSERT_TRUE(server_.engine->release(first).has_value());  // an admin's release
  // The session's next refresh (a third of the 60 s lease on) finds it gone.
  now_ += 60'000 / 3 + 1;
  for (int i = 0; i < 500 && only(holder->status()).state == PolicyState::Held; ++i) {
    session->wake();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    holder->tick();
  }
  PolicyStatus s = only(holder->status());
  ASSERT_EQ(s.state, PolicyState::Lost);
  EXPECT_NE(s.reason.find("lost"), std::string::npos) << s.reason;
  now_ += 1200;
  holder->tick();
  s = only(holder->status());
  ASSERT_EQ(s.state, PolicyState::Held) << s.reason;
  EXPECT_NE(s.flow_id, first);
  EXPECT_TRUE(managerHolds(s.flow_id));
  EXPECT_EQ(watched_,
            (std::vector<std::string>{"+" + std::to_string(first), "-" + std::to_string(first),
                                      "+" + std::to_string(s.flow_id)}));
}

TEST_F(StandingPoliciesTest, TheAgentHoldsItsConfigsPoliciesAndAnswersStatus) {
  startManager("10mbit", "10mbit");
  Agent::Options options =
      test::inprocAgentOptions(context_, "inproc://standing-policies-agent", kManager, now_);
  options.config.policies = {voipPolicy("phone", 40000), voipPolicy("fax", 40001)};
  Result<std::unique_ptr<Agent>> agent = Agent::start(std::move(options));
  ASSERT_TRUE(agent.ok()) << agent.error().message;

  (*agent)->serveOnce(0);  // the first pass asks for the policies
  std::atomic<bool> answered{false};
  Result<control::Reply> reply = makeError(ErrorCode::Internal, "not asked");
  std::thread asking([&] {
    control::RequestClient client(context_);
    if (client.connect("inproc://standing-policies-agent", 2000).ok()) {
      reply = client.call(kStatusRequest, nlohmann::json::object());
    }
    answered = true;
  });
  for (int i = 0; i < 300 && !answered; ++i) {
    (*agent)->serveOnce(10);
  }
  asking.join();
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  ASSERT_EQ(reply->status, control::ReplyStatus::Ok) << reply->error.message;
  Result<AgentStatus> status =
      control::decodeObject<AgentStatus>(reply->body, control::Unknown::Reject, "status");
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_EQ(status->name, "host-a");
  EXPECT_EQ(status->clients, 0u) << "asking for status does not make one a client";
  ASSERT_EQ(status->policies.size(), 2u);
  EXPECT_EQ(status->policies[0].name, "phone");
  EXPECT_EQ(status->policies[0].state, PolicyState::Held);
  EXPECT_EQ(status->policies[1].state, PolicyState::Held);
  EXPECT_EQ(server_.engine->flows().size(), 2u);

  // A reload without "fax" releases it; the agent's end releases the rest.
  AgentConfig changed;
  changed.listen = "inproc://standing-policies-agent";
  changed.name = "host-a";
  changed.manager = kManager;
  changed.policies = {voipPolicy("phone", 40000)};
  (*agent)->reload(changed);
  EXPECT_EQ((*agent)->policies().size(), 1u);
  EXPECT_EQ(server_.engine->flows().size(), 1u);
  agent->reset();
  EXPECT_EQ(server_.engine->flows().size(), 0u);
}

TEST_F(StandingPoliciesTest, TheAgentEnforcesEveryGrantItHoldsAndTakesItBack) {
  startManager("10mbit", "10mbit");
  qos::test::FakeHostKernel::State kernel;
  kernel.roots["eth0"] = RootQdisc{"fq_codel", 0};
  Agent::Options options = test::inprocAgentOptions(
      context_, "inproc://standing-policies-enforcing-agent", kManager, now_);
  options.config.policies = {voipPolicy("phone", 40000)};
  options.config.enforce.mode = EnforceMode::Nftables;
  options.open_kernel = [&kernel]() -> Result<std::unique_ptr<HostKernel>> {
    return std::unique_ptr<HostKernel>(new qos::test::FakeHostKernel(kernel));
  };
  Result<std::unique_ptr<Agent>> started = Agent::start(std::move(options));
  ASSERT_TRUE(started.ok()) << started.error().message;
  std::unique_ptr<Agent> agent = std::move(*started);
  ASSERT_NE(agent->enforcer(), nullptr);
  std::atomic<bool> stop{false};
  std::thread serving([&] { agent->run(stop); });
  const auto eventually = [](auto done) {
    for (int i = 0; i < 500 && !done(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return done();
  };
  // The policy's grant, enforced as soon as it is held.
  ASSERT_TRUE(eventually([&] { return agent->enforcer()->size() == 1; }));
  EXPECT_TRUE(kernel.elements.contains("198.18.1.10 . 198.19.1.20 . udp . 40000 . 20000"));

  // A local client's grant too, until the client releases it.
  auto session = openSession("inproc://standing-policies-enforcing-agent", 2000);
  Result<client::Outcome> outcome = session->request(voipPolicy("x", 40001).request);
  ASSERT_TRUE(outcome.ok()) << outcome.error().message;
  auto held = std::get<std::shared_ptr<client::HeldGrant>>(*outcome);
  EXPECT_TRUE(eventually([&] { return kernel.elements.size() == 2; }));
  EXPECT_TRUE(kernel.elements.contains("198.18.1.10 . 198.19.1.20 . udp . 40001 . 20000"));
  ASSERT_TRUE(held->release().ok());
  EXPECT_TRUE(eventually([&] { return kernel.elements.size() == 1; }));
  EXPECT_EQ(kernel.classes["eth0"].size(), 1u) << "the client's class went with its grant";

  stop = true;
  serving.join();
  agent.reset();
  EXPECT_FALSE(kernel.table) << "the agent's end deletes its table";
  EXPECT_EQ(kernel.roots["eth0"].handle, 0u) << "and its HTB tree";
  EXPECT_EQ(server_.engine->flows().size(), 0u);
}

}  // namespace
}  // namespace qos::agent
