// The control channel with CURVE: the ZAP handler lets in only the
// configured keys, identity comes from the key, and each role may do only
// what it may (control/protocol/message_types.h).
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include "control/protocol/fields.h"
#include "control/protocol/messages.h"
#include "control/transport/client.h"
#include "control/transport/curve_keys.h"
#include "control/transport/zap_handler.h"
#include "test/unit/manager/service/test_server.h"

namespace qos::manager {
namespace {

using control::ReplyStatus;
using nlohmann::json;

class SecurityTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::string dir = ::testing::TempDir() + "security_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir.data()), nullptr);
    dir_ = dir;
    std::filesystem::create_directory(dir_ + "/keys");
    for (const char* name : {"qosmgr", "gw1", "ops", "host-a", "host-b", "stranger"}) {
      Result<control::CurveKeyPair> pair = control::generateCurveKeyPair();
      ASSERT_TRUE(pair.ok());
      ASSERT_TRUE(control::writeCurveKeyFiles(dir_ + "/keys/" + name, *pair).ok());
      keys_[name] = *pair;
    }
    const std::string config = test_data::voipWorld("1mbit", "10mbit") + R"(
[[appliance]]
name = "gw1"
link = ["lan-a", "lan-b"]
[security]
mode = "curve"
secret_key = "keys/qosmgr.key"
[[peer]]
name = "gw1"
role = "appliance"
public_key = "keys/gw1.pub"
[[peer]]
name = "ops"
role = "admin"
public_key = "keys/ops.pub"
[[peer]]
name = "host-a"
role = "host"
public_key = "keys/host-a.pub"
[[peer]]
name = "host-b"
role = "host"
public_key = ")" + keys_["host-b"].public_z85 +
                               "\"\n";
    std::map<std::string, std::string> zap_keys;
    for (const char* name : {"gw1", "ops", "host-a", "host-b"}) {
      zap_keys[keys_[name].public_z85] = name;
    }
    Result<std::unique_ptr<control::ZapHandler>> zap =
        control::ZapHandler::start(context_, zap_keys, std::string(RequestServer::kZapDomain));
    ASSERT_TRUE(zap.ok()) << zap.error().message;
    zap_ = std::move(*zap);
    const Result<void> started =
        server_.start(config, {.context = &context_, .source_path = dir_ + "/test.toml"});
    ASSERT_TRUE(started.ok()) << started.error().message;
  }

  void TearDown() override {
    server_.stop();
    server_.server.reset();  // its socket closes before the ZAP handler stops
    zap_.reset();
    std::filesystem::remove_all(dir_);
  }

  /** A client speaking CURVE with @p name's key. */
  control::RequestClient client(const std::string& name, int timeout_ms = 2000) {
    control::RequestClient c;
    control::CurveClientKeys keys{keys_[name].public_z85, keys_[name].secret_z85,
                                  keys_["qosmgr"].public_z85};
    EXPECT_TRUE(c.connect(server_.endpoint, timeout_ms, &keys).ok());
    return c;
  }

  /** @p name's call, expecting a reply. */
  control::Reply call(const std::string& name, const std::string& type,
                      json body = json::object()) {
    control::RequestClient c = client(name);
    Result<control::Reply> reply = c.call(type, std::move(body));
    EXPECT_TRUE(reply.ok()) << name << " " << type << ": " << reply.error().message;
    return reply.ok() ? *reply : control::Reply{};
  }

  uint64_t grantFor(const std::string& name, int sport) {
    json body = test_data::voipProvision(sport, "r-" + std::to_string(sport));
    body["client"] = "ops";  // a claim: identity comes from the key
    const control::Reply reply = call(name, "provision", body);
    EXPECT_EQ(reply.status, ReplyStatus::Ok) << reply.error.message;
    EXPECT_EQ(reply.body.value("client", ""), name) << "the key's name, not the body's";
    return reply.body.value("flow_id", uint64_t{0});
  }

  std::string dir_;
  std::map<std::string, control::CurveKeyPair> keys_;
  zmq::context_t context_{1};
  std::unique_ptr<control::ZapHandler> zap_;
  test_data::TestServer server_;
};

TEST_F(SecurityTest, AnUnknownKeyIsRefusedAtOnce) {
  control::RequestClient stranger = client("stranger", 5000);
  const auto start = std::chrono::steady_clock::now();
  Result<control::Reply> reply = stranger.call("ping", json::object());
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code, ErrorCode::Unauthorized) << reply.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));

  control::RequestClient plain;  // no CURVE at all
  ASSERT_TRUE(plain.connect(server_.endpoint, 5000).ok());
  Result<control::Reply> unsecured = plain.call("ping", json::object());
  ASSERT_FALSE(unsecured.ok());
  EXPECT_EQ(unsecured.error().code, ErrorCode::Unauthorized) << unsecured.error().message;
}

TEST_F(SecurityTest, RefusalsOfEveryKindLeaveTheServerServing) {
  // An unknown key: refused at the handshake.
  control::RequestClient stranger = client("stranger");
  Result<control::Reply> unknown = stranger.call("ping", json::object());
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::Unauthorized);
  // A known key whose role may not: an error reply.
  EXPECT_EQ(call("host-a", "networks").error.code, "not_authorized");
  EXPECT_EQ(call("gw1", "provision", test_data::voipProvision(20000, "r")).error.code,
            "not_authorized");
  // Malformed and oversized messages from a known key: error replies.
  control::RequestClient ops = client("ops");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"{not json", "bad_json"},
      {R"({"v":1,"type":"provision","id":"x","body":{"src":"nope"}})", "bad_request"},
      {"{\"v\":1,\"type\":\"ping\",\"id\":\"x\",\"body\":{\"pad\":\"" + std::string(100'000, 'a') +
           "\"}}",
       "too_large"},
  };
  for (const auto& [payload, code] : bad) {
    Result<control::Reply> reply = ops.callRaw(payload);
    ASSERT_TRUE(reply.ok()) << code << ": " << reply.error().message;
    EXPECT_EQ(reply->error.code, code);
  }
  // And the server goes on serving every known key.
  EXPECT_EQ(call("ops", "ping").status, ReplyStatus::Ok);
  EXPECT_NE(grantFor("host-a", 20002), 0u);
}

TEST_F(SecurityTest, APingSaysWhoTheKeyIs) {
  const control::Reply pong = call("host-a", "ping");
  ASSERT_EQ(pong.status, ReplyStatus::Ok);
  EXPECT_EQ(pong.body["peer"], "host-a");
  EXPECT_EQ(pong.body["role"], "host");
}

TEST_F(SecurityTest, AHostSeesAndTouchesOnlyItsOwnFlows) {
  const uint64_t mine = grantFor("host-a", 20000);
  const uint64_t theirs = grantFor("host-b", 20001);
  ASSERT_NE(mine, 0u);
  ASSERT_NE(theirs, 0u);

  const control::Reply flows = call("host-a", "flows");
  ASSERT_EQ(flows.status, ReplyStatus::Ok);
  ASSERT_EQ(flows.body["flows"].size(), 1u);
  EXPECT_EQ(flows.body["flows"][0]["flow_id"], mine);

  for (const char* type : {"release", "refresh"}) {
    const control::Reply other = call("host-a", type, {{"flow_id", theirs}});
    EXPECT_EQ(other.status, ReplyStatus::Error) << type;
    EXPECT_EQ(other.error.code, "unknown_flow") << type << ": nothing told of others' flows";
  }
  EXPECT_TRUE(server_.engine->flow(theirs).has_value()) << "host-b's flow stays";
  EXPECT_EQ(call("host-a", "refresh", {{"flow_id", mine}}).status, ReplyStatus::Ok);
  EXPECT_EQ(call("host-a", "release", {{"flow_id", mine}}).status, ReplyStatus::Ok);

  for (const char* type : {"networks", "appliances", "stats"}) {
    const control::Reply refused = call("host-a", type);
    EXPECT_EQ(refused.error.code, "not_authorized") << type;
  }
}

TEST_F(SecurityTest, AnApplianceMaySyncOnlyAsItself) {
  control::SyncRequest sync;
  sync.name = "gw1";
  sync.instance = "i";
  const json as_gw1 = json::parse(control::encodeObject(sync));
  EXPECT_EQ(call("gw1", "sync", as_gw1).status, ReplyStatus::Ok);
  EXPECT_EQ(call("ops", "sync", as_gw1).error.code, "not_authorized")
      << "not even an admin syncs as an appliance";
  EXPECT_EQ(call("host-a", "sync", as_gw1).error.code, "not_authorized");
  for (const char* type : {"provision", "flows", "release", "networks"}) {
    json body = std::string(type) == "provision" ? test_data::voipProvision(20002, "x")
                : std::string(type) == "release" ? json{{"flow_id", 1}}
                                                 : json::object();
    EXPECT_EQ(call("gw1", type, body).error.code, "not_authorized") << type;
  }
}

TEST_F(SecurityTest, AnAdminDoesEverything) {
  const uint64_t hosts = grantFor("host-a", 20003);
  EXPECT_EQ(call("ops", "flows").body["flows"].size(), 1u);
  for (const char* type : {"networks", "appliances", "stats", "ping"}) {
    EXPECT_EQ(call("ops", type).status, ReplyStatus::Ok) << type;
  }
  EXPECT_EQ(call("ops", "release", {{"flow_id", hosts}}).status, ReplyStatus::Ok);
}

TEST_F(SecurityTest, RevokingAKeyShutsItOut) {
  ASSERT_EQ(call("host-b", "ping").status, ReplyStatus::Ok);
  zap_->setKeys({{keys_["ops"].public_z85, "ops"}});
  control::RequestClient revoked = client("host-b");
  Result<control::Reply> reply = revoked.call("ping", json::object());
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().code, ErrorCode::Unauthorized);
}

}  // namespace
}  // namespace qos::manager
