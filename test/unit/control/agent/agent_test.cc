// qos-agent between local clients and a real RequestServer, all in process
// over inproc://, on one clock the test moves: grants through the agent,
// heartbeats that keep a live client's grants, a silent client's grants
// released, a grant lost upstream reported to its client, and everything
// released when the agent stops.
#include "control/agent/agent.h"

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "control/agent/agent_config.h"
#include "control/protocol/fields.h"
#include "test/unit/control/agent/inproc_agent.h"
#include "test/unit/manager/service/test_server.h"

namespace qos::agent {
namespace {

using manager::test_data::TestServer;
using manager::test_data::voipWorld;

constexpr uint64_t kStartMs = 1'700'000'000'000;
constexpr uint64_t kClientTimeoutMs = 5000;
constexpr const char* kManager = "inproc://qos-agent-test-manager";
constexpr const char* kAgent = "inproc://qos-agent-test-agent";

control::AdmissionRequest voip(uint16_t sport) {
  control::AdmissionRequest request;
  request.application = "voip";
  request.flow.src = *parseIpAddress("198.18.1.10");
  request.flow.dst = *parseIpAddress("198.19.1.20");
  request.flow.protocol = 17;
  request.flow.src_port = sport;
  request.flow.dst_port = 20000;
  return request;
}

class AgentTest : public ::testing::Test {
protected:
  void SetUp() override {
    TestServer::Options server_options;
    server_options.context = &context_;
    server_options.endpoint = kManager;
    server_options.clock = [this] { return now_.load(); };
    const Result<void> started = server_.start(voipWorld("10mbit", "10mbit"), server_options);
    ASSERT_TRUE(started.ok()) << started.error().message;

    Agent::Options options = test::inprocAgentOptions(context_, kAgent, kManager, now_);
    options.config.client_timeout_ms = kClientTimeoutMs;
    Result<std::unique_ptr<Agent>> agent = Agent::start(std::move(options));
    ASSERT_TRUE(agent.ok()) << agent.error().message;
    agent_ = std::move(*agent);
    serving_ = std::thread([this] { agent_->run(stop_); });
  }

  void TearDown() override { stopAgent(); }

  void stopAgent() {
    stop_ = true;
    if (serving_.joinable()) {
      serving_.join();
    }
    agent_.reset();
  }

  std::unique_ptr<client::Session> openClient() {
    client::SessionOptions options;
    options.endpoint = kAgent;
    options.context = &context_;
    options.timeout_ms = 2000;
    options.steady_ms = [this] { return now_.load(); };
    options.wall_ms = [this] { return now_.load(); };
    Result<std::unique_ptr<client::Session>> session = client::Session::open(std::move(options));
    EXPECT_TRUE(session.ok()) << session.error().message;
    return session.ok() ? std::move(*session) : nullptr;
  }

  std::shared_ptr<client::HeldGrant> grant(client::Session& session, uint16_t sport) {
    Result<client::Outcome> outcome = session.request(voip(sport));
    EXPECT_TRUE(outcome.ok()) << outcome.error().message;
    if (!outcome.ok() || !std::holds_alternative<std::shared_ptr<client::HeldGrant>>(*outcome)) {
      return nullptr;
    }
    return std::get<std::shared_ptr<client::HeldGrant>>(*outcome);
  }

  bool managerHolds(uint64_t flow_id) const { return server_.engine->flow(flow_id).has_value(); }

  /** Waits (real time, up to 5 s) until @p done, waking @p session meanwhile. */
  template <typename Done>
  static bool eventually(client::Session* session, Done done) {
    for (int i = 0; i < 500; ++i) {
      if (done()) {
        return true;
      }
      if (session != nullptr) {
        session->wake();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return done();
  }

  zmq::context_t context_{1};
  std::atomic<uint64_t> now_{kStartMs};
  TestServer server_;
  std::unique_ptr<Agent> agent_;
  std::atomic<bool> stop_{false};
  std::thread serving_;
};

TEST_F(AgentTest, AGrantThroughTheAgentIsTheManagersAndAskedForHeartbeats) {
  std::unique_ptr<client::Session> session = openClient();
  ASSERT_NE(session, nullptr);
  std::shared_ptr<client::HeldGrant> held = grant(*session, 40000);
  ASSERT_NE(held, nullptr);
  EXPECT_EQ(held->grant().dscp, 46);
  EXPECT_TRUE(managerHolds(held->flowId()));
  ASSERT_TRUE(eventually(nullptr, [&] { return agent_->grants() == 1; }));

  ASSERT_TRUE(held->release().ok());
  EXPECT_FALSE(managerHolds(held->flowId()));
  EXPECT_EQ(agent_->grants(), 0u);
}

TEST_F(AgentTest, ALiveClientKeepsItsGrantsASilentOneLosesThem) {
  std::unique_ptr<client::Session> live = openClient();
  std::shared_ptr<client::HeldGrant> kept = grant(*live, 40000);
  ASSERT_NE(kept, nullptr);

  // A client that asks once and then says nothing more (a process killed).
  control::RequestClient silent(context_);
  ASSERT_TRUE(silent.connect(kAgent, 2000).ok());
  control::AdmissionRequest request = voip(40001);
  request.request_id = "silent-1";
  Result<control::Reply> reply = silent.callEncoded("provision", control::encodeObject(request));
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  ASSERT_EQ(reply->status, control::ReplyStatus::Ok);
  const uint64_t silent_flow = reply->body.at("flow_id").get<uint64_t>();
  EXPECT_EQ(reply->body.at("heartbeat_ms").get<uint64_t>(), kClientTimeoutMs / 3);
  EXPECT_TRUE(managerHolds(silent_flow));

  // 8 s pass, a quarter second at a time; the live client's session pings
  // every 5 s / 3 and has 3.3 s (13 steps, ~0.6 s here) to be heard.
  for (int step = 0; step < 32; ++step) {
    now_ += 250;
    live->wake();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(eventually(live.get(), [&] { return !managerHolds(silent_flow); }))
      << "the silent client's grant is released";
  EXPECT_TRUE(managerHolds(kept->flowId())) << "the live client's is kept";
  EXPECT_EQ(kept->state(), client::GrantState::Held);
}

TEST_F(AgentTest, AGrantLostUpstreamIsReportedToItsClient) {
  std::unique_ptr<client::Session> session = openClient();
  std::shared_ptr<client::HeldGrant> held = grant(*session, 40000);
  ASSERT_NE(held, nullptr);
  ASSERT_TRUE(server_.engine->release(held->flowId()).has_value());  // an admin's release
  // The agent's refresh finds it gone; the client's next refresh is told.
  // (Both fall due together; whichever runs first, a third more of the
  // lease later the client knows.)
  for (int i = 0; i < 3 && held->state() != client::GrantState::Lost; ++i) {
    now_ += 60'000 / 3 + 1;
    eventually(session.get(), [&] { return held->state() == client::GrantState::Lost; });
  }
  ASSERT_EQ(held->state(), client::GrantState::Lost);
  // Told by the agent (its own refresh came first) or, through it, by the manager.
  const std::string why = held->lostReason();
  EXPECT_TRUE(why.find("was lost") != std::string::npos ||
              why.find("no longer holds it") != std::string::npos)
      << why;
}

TEST_F(AgentTest, OnlyTheFlowMessagesAreServedAndBadOnesAnswered) {
  control::RequestClient raw(context_);
  ASSERT_TRUE(raw.connect(kAgent, 2000).ok());
  Result<control::Reply> networks = raw.call("networks", nlohmann::json::object());
  ASSERT_TRUE(networks.ok());
  EXPECT_EQ(networks->error.code, "not_authorized");
  Result<control::Reply> garbage = raw.callRaw("{not json");
  ASSERT_TRUE(garbage.ok());
  EXPECT_EQ(garbage->error.code, "bad_json");
  Result<control::Reply> bad_body = raw.call("provision", {{"app", 7}});
  ASSERT_TRUE(bad_body.ok());
  EXPECT_EQ(bad_body->error.code, "bad_request");
  Result<control::Reply> other = raw.call("release", {{"flow_id", 12345}});
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->error.code, "unknown_flow");
  Result<control::Reply> huge =
      raw.callRaw("{\"v\":1,\"type\":\"ping\",\"id\":\"x\",\"body\":{\"pad\":\"" +
                  std::string(100'000, 'a') + "\"}}");
  ASSERT_TRUE(huge.ok()) << huge.error().message;
  EXPECT_EQ(huge->error.code, "too_large");
  // After all of that, still serving.
  Result<control::Reply> ping = raw.call("ping", nlohmann::json::object());
  ASSERT_TRUE(ping.ok());
  EXPECT_EQ(ping->body.at("peer"), "host-a");
}

TEST_F(AgentTest, AStoppingAgentReleasesWhatItHolds) {
  std::unique_ptr<client::Session> session = openClient();
  std::shared_ptr<client::HeldGrant> held = grant(*session, 40000);
  ASSERT_NE(held, nullptr);
  const uint64_t flow = held->flowId();
  stopAgent();
  EXPECT_FALSE(managerHolds(flow));
}

}  // namespace
}  // namespace qos::agent
