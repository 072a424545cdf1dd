// libqosclient's session against a real RequestServer in process (inproc://),
// on one clock the test moves for both: grants and denials, leases kept
// alive past their first expiry, a grant an admin released turning lost,
// a lease lost while the manager was away, releases on release(), on the
// last copy going, and when the session closes.
#include "control/client/session.h"

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.hpp>

#include "test/unit/manager/service/test_server.h"

namespace qos::client {
namespace {

using manager::test_data::TestServer;
using manager::test_data::voipWorld;

constexpr uint64_t kStartMs = 1'700'000'000'000;  // epoch ms
constexpr uint64_t kLeaseMs = 60'000;             // the world's default lease

/** Waits (real time, up to 5 s) until @p done; @return whether it came true. */
template <typename Done>
bool eventually(Session& session, Done done) {
  for (int i = 0; i < 500; ++i) {
    if (done()) {
      return true;
    }
    session.wake();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

control::AdmissionRequest voip(uint16_t sport) {
  control::AdmissionRequest request;
  request.application = "voip";
  request.flow.src = *parseIpAddress("198.18.1.10");
  request.flow.dst = *parseIpAddress("198.19.1.20");
  request.flow.protocol = 17;
  request.flow.src_port = sport;
  request.flow.dst_port = 20000;
  request.bidirectional = true;
  return request;
}

class SessionTest : public ::testing::Test {
protected:
  void SetUp() override { startServer(); }

  void startServer() {
    server_ = std::make_unique<TestServer>();
    TestServer::Options options;
    options.context = &context_;
    options.endpoint = kEndpoint;
    options.clock = [this] { return now_.load(); };
    // A two-way voip flow crosses lan-a twice: room for one in EF, one in AF41.
    Result<void> started = server_->start(voipWorld("200kbit", "200kbit"), options);
    ASSERT_TRUE(started.ok()) << started.error().message;
  }

  std::unique_ptr<Session> open(int timeout_ms = 1000) {
    SessionOptions options;
    options.endpoint = kEndpoint;
    options.context = &context_;
    options.timeout_ms = timeout_ms;
    options.steady_ms = [this] { return now_.load(); };
    options.wall_ms = [this] { return now_.load(); };
    Result<std::unique_ptr<Session>> session = Session::open(std::move(options));
    EXPECT_TRUE(session.ok()) << session.error().message;
    return session.ok() ? std::move(*session) : nullptr;
  }

  std::shared_ptr<HeldGrant> grant(Session& session, uint16_t sport, LostCallback lost = {}) {
    Result<Outcome> outcome = session.request(voip(sport), std::move(lost));
    EXPECT_TRUE(outcome.ok()) << outcome.error().message;
    if (!outcome.ok()) {
      return nullptr;
    }
    if (const auto* denial = std::get_if<control::Denial>(&*outcome)) {
      ADD_FAILURE() << "denied: " << denial->message;
      return nullptr;
    }
    return std::get<std::shared_ptr<HeldGrant>>(*outcome);
  }

  bool managerHolds(uint64_t flow_id) const { return server_->engine->flow(flow_id).has_value(); }

  static constexpr const char* kEndpoint = "inproc://qos-session-test";
  zmq::context_t context_{1};
  std::atomic<uint64_t> now_{kStartMs};
  std::unique_ptr<TestServer> server_;
};

TEST_F(SessionTest, GrantsTheDefaultThenTheAlternateThenDenies) {
  std::unique_ptr<Session> session = open();
  ASSERT_NE(session, nullptr);
  std::shared_ptr<HeldGrant> first = grant(*session, 40000);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->grant().dscp, 46);
  EXPECT_EQ(first->grant().profile_index, 0u);
  EXPECT_EQ(first->grant().profile.class_name, "EF");
  EXPECT_TRUE(first->grant().bidirectional);
  EXPECT_EQ(first->state(), GrantState::Held);

  std::shared_ptr<HeldGrant> second = grant(*session, 40001);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->grant().profile_index, 1u) << "EF is full: the alternate, AF41";
  EXPECT_EQ(second->grant().dscp, 34);

  Result<Outcome> third = session->request(voip(40002));
  ASSERT_TRUE(third.ok()) << third.error().message;
  ASSERT_TRUE(std::holds_alternative<control::Denial>(*third));
  EXPECT_EQ(std::get<control::Denial>(*third).reason, control::DenyReason::NoCapacity);
  EXPECT_EQ(session->held(), 2u);
}

TEST_F(SessionTest, ALeaseIsRefreshedBeforeItLapses) {
  std::unique_ptr<Session> session = open();
  std::shared_ptr<HeldGrant> held = grant(*session, 40000);
  ASSERT_NE(held, nullptr);
  const uint64_t flow = held->flowId();
  const uint64_t first_expiry = server_->engine->flow(flow)->expires_at_ms;
  EXPECT_EQ(first_expiry, kStartMs + kLeaseMs);

  now_ += kLeaseMs / 3 + 1;
  ASSERT_TRUE(eventually(*session, [&] {
    return server_->engine->flow(flow)->expires_at_ms > first_expiry;
  })) << "refreshed once a third of the lease passed";

  now_ = first_expiry + 1000;  // past the first lease's end
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(managerHolds(flow)) << "the manager still holds it";
  EXPECT_EQ(held->state(), GrantState::Held);
}

TEST_F(SessionTest, AGrantAnAdminReleasedIsLostAndTheApplicationTold) {
  std::unique_ptr<Session> session = open();
  std::atomic<uint64_t> told_flow{0};
  std::string told_why;
  std::atomic<bool> told{false};
  std::shared_ptr<HeldGrant> held =
      grant(*session, 40000, [&](uint64_t flow_id, const std::string& why) {
        told_flow = flow_id;
        told_why = why;
        told = true;
      });
  ASSERT_NE(held, nullptr);
  ASSERT_TRUE(server_->engine->release(held->flowId()).has_value());  // as an admin would
  now_ += kLeaseMs / 3 + 1;
  ASSERT_TRUE(eventually(*session, [&] { return told.load(); }));
  EXPECT_EQ(told_flow.load(), held->flowId());
  EXPECT_NE(told_why.find("no longer holds it"), std::string::npos) << told_why;
  EXPECT_EQ(held->state(), GrantState::Lost);
  EXPECT_EQ(held->lostReason(), told_why);
  EXPECT_TRUE(held->release().ok()) << "nothing to release: no error";
}

TEST_F(SessionTest, TheLostCallbackMayUseTheSession) {
  std::unique_ptr<Session> session = open();
  std::shared_ptr<HeldGrant> other = grant(*session, 40001);
  ASSERT_NE(other, nullptr);
  std::atomic<bool> released_other{false};
  std::shared_ptr<HeldGrant> held = grant(*session, 40000, [&](uint64_t, const std::string&) {
    released_other = other->release().ok();  // a call from the session's own thread
  });
  ASSERT_NE(held, nullptr);
  ASSERT_TRUE(server_->engine->release(held->flowId()).has_value());
  now_ += kLeaseMs / 3 + 1;
  ASSERT_TRUE(eventually(*session, [&] { return released_other.load(); }));
  EXPECT_FALSE(managerHolds(other->flowId()));
}

TEST_F(SessionTest, ALeaseLostWhileTheManagerWasAwayIsReportedLost) {
  std::unique_ptr<Session> session = open(100);
  std::shared_ptr<HeldGrant> held = grant(*session, 40000);
  ASSERT_NE(held, nullptr);
  server_.reset();  // the manager goes away
  now_ += kLeaseMs / 3 + 1;
  session->wake();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a refresh or two time out
  EXPECT_EQ(held->state(), GrantState::Held) << "kept while the lease lasts";
  now_ = kStartMs + kLeaseMs;
  ASSERT_TRUE(eventually(*session, [&] { return held->state() == GrantState::Lost; }));
  EXPECT_NE(held->lostReason().find("could not be reached"), std::string::npos)
      << held->lostReason();
}

TEST_F(SessionTest, ReleasedOnReleaseOnTheLastCopyAndWhenTheSessionCloses) {
  std::unique_ptr<Session> session = open();
  std::shared_ptr<HeldGrant> a = grant(*session, 40000);
  std::shared_ptr<HeldGrant> b = grant(*session, 40001);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const uint64_t flow_a = a->flowId();
  const uint64_t flow_b = b->flowId();

  ASSERT_TRUE(a->release().ok());
  EXPECT_FALSE(managerHolds(flow_a));
  EXPECT_EQ(a->state(), GrantState::Released);
  b.reset();  // the last copy
  EXPECT_FALSE(managerHolds(flow_b));
  EXPECT_EQ(session->held(), 0u);

  std::shared_ptr<HeldGrant> c = grant(*session, 40002);
  ASSERT_NE(c, nullptr);
  const uint64_t flow_c = c->flowId();
  session.reset();
  EXPECT_FALSE(managerHolds(flow_c)) << "a session that closes releases what it holds";
  EXPECT_EQ(c->state(), GrantState::Released);
}

TEST_F(SessionTest, AMarkedSocketGetsItsDscpBackOnRelease) {
  std::unique_ptr<Session> session = open();
  std::shared_ptr<HeldGrant> held = grant(*session, 40000);
  ASSERT_NE(held, nullptr);
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(held->markSocket(fd).ok());
  EXPECT_EQ(*socketDscp(fd), 46);
  ASSERT_TRUE(held->release().ok());
  EXPECT_EQ(*socketDscp(fd), 0);
  EXPECT_FALSE(held->markSocket(fd).ok()) << "a released grant marks nothing";
  close(fd);
}

}  // namespace
}  // namespace qos::client
