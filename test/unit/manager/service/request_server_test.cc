// RequestServer in-process: a real ROUTER socket on loopback TCP, driven by
// RequestClient, including every kind of bad message a client can send.
#include "manager/service/request_server.h"

#include <atomic>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <prometheus/metric_family.h>
#include <zmq.hpp>

#include "control/transport/client.h"
#include "manager/config/manager_config.h"
#include "manager/topology/topology.h"
#include "test/unit/manager/service/test_server.h"

namespace qos::manager {
namespace {

using control::ReplyStatus;
using nlohmann::json;

// A server on an ephemeral port, served from a thread, with a clock the test moves.
class ServerFixture : public ::testing::Test {
protected:
  void SetUp() override {
    const Result<void> started = test_.start(test_data::voipWorld("300kbit", "1mbit"),
                                             {.clock = [this] { return now_ms_.load(); }});
    ASSERT_TRUE(started.ok()) << started.error().message;
    endpoint_ = test_.endpoint;
    engine_ = test_.engine.get();
    ASSERT_TRUE(client_.connect(endpoint_, 2000).ok());
  }

  static json provision(uint16_t sport) {
    return test_data::voipProvision(sport, "r-" + std::to_string(sport));
  }

  std::atomic<uint64_t> now_ms_{1'000'000};
  test_data::TestServer test_;
  std::string endpoint_;
  AdmissionEngine* engine_ = nullptr;
  control::RequestClient client_;
};

TEST_F(ServerFixture, ProvisionFallsBackThenDenies) {
  // EF 300kbit: three flows at 100kbit; then AF41 1mbit: ten more; then denied.
  for (uint16_t i = 0; i < 3; ++i) {
    auto r = client_.call("provision", provision(static_cast<uint16_t>(40000 + i)));
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->status, ReplyStatus::Ok) << r->error.message;
    EXPECT_EQ(r->body["dscp"], 46);
  }
  for (uint16_t i = 3; i < 13; ++i) {
    auto r = client_.call("provision", provision(static_cast<uint16_t>(40000 + i)));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->status, ReplyStatus::Ok) << r->error.message;
    EXPECT_EQ(r->body["dscp"], 34);
    EXPECT_EQ(r->body["profile_index"], 1);
  }
  auto denied = client_.call("provision", provision(50000));
  ASSERT_TRUE(denied.ok());
  EXPECT_EQ(denied->status, ReplyStatus::Denied);
  EXPECT_EQ(denied->error.code, "no_capacity");
  EXPECT_NE(denied->error.message.find("lan-a"), std::string::npos) << denied->error.message;

  auto networks = client_.call("networks", json::object());
  ASSERT_TRUE(networks.ok());
  ASSERT_EQ(networks->status, ReplyStatus::Ok);
  ASSERT_TRUE(networks->body["classes"].is_array());
  auto flows = client_.call("flows", json::object());
  ASSERT_TRUE(flows.ok());
  EXPECT_EQ(flows->body["flows"].size(), 13u);
}

TEST_F(ServerFixture, RetryReturnsTheSameGrantAndReleaseFrees) {
  json body = provision(40000);
  body["client"] = "host-a";
  body["request_id"] = "r-1";
  auto first = client_.call("provision", body);
  auto again = client_.call("provision", body);
  ASSERT_TRUE(first.ok() && again.ok());
  ASSERT_EQ(first->status, ReplyStatus::Ok);
  EXPECT_EQ(first->body["flow_id"], again->body["flow_id"]);
  EXPECT_EQ(again->body["retried"], true);
  EXPECT_EQ(engine_->flowCount(), 1u);

  auto released = client_.call("release", {{"flow_id", first->body["flow_id"]}});
  ASSERT_TRUE(released.ok());
  EXPECT_EQ(released->status, ReplyStatus::Ok);
  EXPECT_EQ(engine_->flowCount(), 0u);
  auto twice = client_.call("release", {{"flow_id", first->body["flow_id"]}});
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(twice->status, ReplyStatus::Error);
  EXPECT_EQ(twice->error.code, "unknown_flow");
}

TEST_F(ServerFixture, LeasesLapseAndRefreshExtends) {
  auto a = client_.call("provision", provision(40000));
  auto b = client_.call("provision", provision(40001));
  ASSERT_TRUE(a.ok() && b.ok());
  now_ms_ += 50'000;
  auto refreshed = client_.call("refresh", {{"flow_id", b->body["flow_id"]}, {"lease", 60}});
  ASSERT_TRUE(refreshed.ok());
  ASSERT_EQ(refreshed->status, ReplyStatus::Ok) << refreshed->error.message;
  now_ms_ += 20'000;  // a: 70 s old, lapsed; b: refreshed 20 s ago
  for (int i = 0; i < 50 && engine_->flowCount() != 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(engine_->flowCount(), 1u);
  EXPECT_TRUE(engine_->flow(b->body["flow_id"].get<uint64_t>()).has_value());
}

TEST_F(ServerFixture, BadMessagesGetErrorRepliesAndTheServerLivesOn) {
  struct Case {
    std::string payload;
    std::string code;
  };
  const Case cases[] = {
      {"{not json", "bad_json"},
      {R"({"v":2,"type":"ping","id":"x","body":{}})", "bad_version"},
      {R"({"v":1,"type":"ping","body":{}})", "bad_envelope"},
      {R"([1,2,3])", "bad_envelope"},
      {R"({"v":1,"type":"launch_missiles","id":"x","body":{}})", "unknown_type"},
      {R"({"v":1,"type":"provision","id":"x","body":{"src":"nope"}})", "bad_request"},
      {R"({"v":1,"type":"release","id":"x","body":{"flow_id":"seven"}})", "bad_request"},
      {std::string(100'000, '['), "too_large"},
      {std::string(5'000, '[') + std::string(5'000, ']'), "too_deep"},
      {"{\"v\":1,\"type\":\"ping\",\"id\":\"x\",\"body\":{\"pad\":\"" + std::string(70'000, 'a') +
           "\"}}",
       "too_large"},
  };
  for (const Case& c : cases) {
    auto r = client_.callRaw(c.payload);
    ASSERT_TRUE(r.ok()) << "no reply for " << c.code << ": " << r.error().message;
    EXPECT_EQ(r->status, ReplyStatus::Error);
    EXPECT_EQ(r->error.code, c.code) << r->error.message;
  }
  // Wrong framing from a raw DEALER (no empty delimiter): answered, not fatal.
  zmq::context_t ctx;
  zmq::socket_t raw(ctx, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.set(zmq::sockopt::rcvtimeo, 2000);
  raw.connect(endpoint_);
  raw.send(zmq::str_buffer("a"), zmq::send_flags::sndmore);
  raw.send(zmq::str_buffer("b"), zmq::send_flags::none);
  zmq::message_t frame;
  ASSERT_TRUE(raw.recv(frame));  // the empty delimiter
  ASSERT_TRUE(raw.recv(frame));
  EXPECT_NE(frame.to_string().find("bad_envelope"), std::string::npos) << frame.to_string();
  // A frame over the hard cap (128 KiB) makes libzmq drop that peer; others are unaffected.
  zmq::socket_t huge(ctx, zmq::socket_type::dealer);
  huge.set(zmq::sockopt::linger, 0);
  huge.connect(endpoint_);
  huge.send(zmq::message_t(), zmq::send_flags::sndmore);
  huge.send(zmq::message_t(std::string(2 << 20, 'x')), zmq::send_flags::none);

  auto ping = client_.call("ping", json::object());
  ASSERT_TRUE(ping.ok()) << ping.error().message;
  EXPECT_EQ(ping->status, ReplyStatus::Ok);
  auto ok = client_.call("provision", provision(40000));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, ReplyStatus::Ok);
}

}  // namespace
}  // namespace qos::manager

namespace qos::manager {
namespace {

// The appliances' state reaches the metrics: a scrape shows each, up or not,
// with its rules by state.
TEST(ServerMetricsTest, AppliancesAreScraped) {
  test_data::TestServer server;
  const Result<void> started = server.start(test_data::voipWorld("1mbit", "1mbit") +
                                                "[[appliance]]\nname = \"gw1\"\n"
                                                "link = [\"lan-a\", \"lan-b\"]\n",
                                            {.metrics = true});
  ASSERT_TRUE(started.ok()) << started.error().message;
  const auto gauge = [&server](const std::string& family,
                               const std::string& state) -> std::optional<double> {
    for (const prometheus::MetricFamily& f : server.metrics->collect()) {
      if (f.name != family) {
        continue;
      }
      for (const prometheus::ClientMetric& m : f.metric) {
        bool named = false;
        bool in_state = state.empty();
        for (const prometheus::ClientMetric::Label& l : m.label) {
          named = named || (l.name == "appliance" && l.value == "gw1");
          in_state = in_state || (l.name == "state" && l.value == state);
        }
        if (named && in_state) {
          return m.gauge.value;
        }
      }
    }
    return std::nullopt;
  };
  for (int i = 0; i < 100 && !gauge("qosmgr_appliance_up", ""); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(gauge("qosmgr_appliance_up", ""), 0.0) << "never synced: down";
  EXPECT_EQ(gauge("qosmgr_appliance_rules", "pending"), 0.0);
  EXPECT_TRUE(gauge("qosmgr_appliance_rules", "installed").has_value());
}

}  // namespace
}  // namespace qos::manager
