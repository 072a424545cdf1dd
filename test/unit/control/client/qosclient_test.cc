// The C API (qosclient.h) through libqosclient.so, against a real
// RequestServer on the loopback: statuses, messages, grants, denials,
// socket marking and release; bad arguments refused, never crashed on.
#include "qosclient.h"

#include <string>

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test/unit/manager/service/test_server.h"

namespace {

using qos::manager::test_data::TestServer;

class QosClientCTest : public ::testing::Test {
protected:
  void SetUp() override {
    // A two-way voip flow crosses lan-a twice: room for one in EF, one in AF41.
    const qos::Result<void> started =
        server_.start(qos::manager::test_data::voipWorld("200kbit", "200kbit"), {});
    ASSERT_TRUE(started.ok()) << started.error().message;
    qos_session_options options{};
    options.endpoint = server_.endpoint.c_str();
    options.timeout_ms = 2000;
    ASSERT_EQ(qos_session_open(&options, &session_, error_, sizeof error_), QOS_OK) << error_;
  }
  void TearDown() override { qos_session_close(session_); }

  static qos_flow voip(uint16_t sport) {
    qos_flow flow{};
    flow.app = "voip";
    flow.src = "198.18.1.10";
    flow.sport = sport;
    flow.dst = "198.19.1.20";
    flow.dport = 20000;
    flow.proto = "udp";
    flow.bidirectional = 1;
    return flow;
  }

  TestServer server_;
  qos_session* session_ = nullptr;
  char error_[256] = {};
};

TEST_F(QosClientCTest, GrantMarkReleaseThenAlternateThenDenial) {
  const qos_flow flow = voip(40000);
  qos_grant* grant = nullptr;
  ASSERT_EQ(qos_request(session_, &flow, nullptr, nullptr, &grant, error_, sizeof error_), QOS_OK)
      << error_;
  qos_grant_info info{};
  ASSERT_EQ(qos_grant_info_get(grant, &info), QOS_OK);
  EXPECT_EQ(info.dscp, 46);
  EXPECT_EQ(info.has_reverse_dscp, 1);
  EXPECT_STREQ(info.class_name, "EF");
  EXPECT_EQ(info.rate_bps, 100'000u);
  EXPECT_EQ(info.profile_index, 0u);
  EXPECT_TRUE(server_.engine->flow(info.flow_id).has_value());
  EXPECT_EQ(qos_grant_state_get(grant), QOS_GRANT_HELD);

  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_EQ(qos_grant_mark_socket(grant, fd, error_, sizeof error_), QOS_OK) << error_;
  int tos = 0;
  socklen_t length = sizeof tos;
  ASSERT_EQ(getsockopt(fd, IPPROTO_IP, IP_TOS, &tos, &length), 0);
  EXPECT_EQ(tos, 46 << 2);

  const qos_flow second_flow = voip(40001);
  qos_grant* second = nullptr;
  ASSERT_EQ(qos_request(session_, &second_flow, nullptr, nullptr, &second, error_, sizeof error_),
            QOS_OK)
      << error_;
  qos_grant_info second_info{};
  qos_grant_info_get(second, &second_info);
  EXPECT_EQ(second_info.profile_index, 1u) << "the alternate";
  EXPECT_STREQ(second_info.class_name, "AF41");

  const qos_flow third_flow = voip(40002);
  qos_grant* third = reinterpret_cast<qos_grant*>(0x1);
  EXPECT_EQ(qos_request(session_, &third_flow, nullptr, nullptr, &third, error_, sizeof error_),
            QOS_DENIED);
  EXPECT_EQ(third, nullptr);
  EXPECT_NE(std::string(error_).find("no_capacity: "), std::string::npos) << error_;

  ASSERT_EQ(qos_grant_release(grant, error_, sizeof error_), QOS_OK) << error_;
  EXPECT_EQ(qos_grant_state_get(grant), QOS_GRANT_RELEASED);
  EXPECT_FALSE(server_.engine->flow(info.flow_id).has_value());
  ASSERT_EQ(getsockopt(fd, IPPROTO_IP, IP_TOS, &tos, &length), 0);
  EXPECT_EQ(tos, 0) << "the socket is put back";
  close(fd);
  qos_grant_free(grant);

  qos_grant_free(second);  // still held: released as it is freed
  EXPECT_FALSE(server_.engine->flow(second_info.flow_id).has_value());
}

TEST_F(QosClientCTest, BadArgumentsAreRefusedWithAMessage) {
  qos_grant* grant = nullptr;
  EXPECT_EQ(qos_request(session_, nullptr, nullptr, nullptr, &grant, error_, sizeof error_),
            QOS_INVALID);
  qos_flow flow = voip(40000);
  flow.src = "198.18.1.300";
  EXPECT_EQ(qos_request(session_, &flow, nullptr, nullptr, &grant, error_, sizeof error_),
            QOS_INVALID);
  EXPECT_NE(std::string(error_).find("flow.src"), std::string::npos) << error_;
  flow = voip(40000);
  flow.proto = "icmp";
  EXPECT_EQ(qos_request(session_, &flow, nullptr, nullptr, &grant, error_, sizeof error_),
            QOS_INVALID);
  flow = voip(40000);
  flow.app = "nosuch";
  EXPECT_EQ(qos_request(session_, &flow, nullptr, nullptr, &grant, error_, sizeof error_),
            QOS_DENIED);
  EXPECT_NE(std::string(error_).find("unknown_application"), std::string::npos) << error_;

  EXPECT_EQ(qos_mark_socket(-1, 46, error_, sizeof error_), QOS_INVALID);
  EXPECT_EQ(qos_grant_info_get(nullptr, nullptr), QOS_INVALID);
  EXPECT_EQ(qos_grant_state_get(nullptr), QOS_GRANT_RELEASED);
  qos_grant_free(nullptr);
  qos_session_close(nullptr);
  EXPECT_STREQ(qos_status_name(QOS_DENIED), "denied");

  qos_session_options options{};
  qos_session* other = nullptr;
  EXPECT_EQ(qos_session_open(&options, &other, error_, sizeof error_), QOS_INVALID);
  options.endpoint = "tcp://127.0.0.1:1";
  options.secret_key_file = "/nonexistent/host.key";
  EXPECT_EQ(qos_session_open(&options, &other, error_, sizeof error_), QOS_INVALID)
      << "a key without the manager's";
  options.manager_public_key = "/nonexistent/qosmgr.pub";
  EXPECT_NE(qos_session_open(&options, &other, error_, sizeof error_), QOS_OK);
  EXPECT_NE(std::string(error_).find("/nonexistent/host.key"), std::string::npos) << error_;
  EXPECT_EQ(other, nullptr);
}

TEST_F(QosClientCTest, AnUnreachableManagerIsUnavailable) {
  server_.stop();
  const qos_flow flow = voip(40000);
  qos_grant* grant = nullptr;
  EXPECT_EQ(qos_request(session_, &flow, nullptr, nullptr, &grant, error_, sizeof error_),
            QOS_UNAVAILABLE);
  EXPECT_NE(std::string(error_).find("no reply"), std::string::npos) << error_;
}

}  // namespace
