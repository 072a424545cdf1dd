// RequestServer with a real reservation store: replies go out only once what
// they tell of is committed, and a failed commit takes back what it admitted,
// also from replies already prepared behind it (pipelined group commit).
// Also the server's metrics, as a scrape would see them.
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <zmq.hpp>

#include "control/protocol/envelope.h"
#include "control/transport/client.h"
#include "manager/config/manager_config.h"
#include "manager/service/request_server.h"
#include "manager/service/server_metrics.h"
#include "manager/store/reservation_store.h"
#include "manager/topology/topology.h"
#include "test/unit/manager/service/test_server.h"

namespace qos::manager {
namespace {

using control::ReplyStatus;
using nlohmann::json;

json provision(int n) { return test_data::voipProvision(40000 + n, "r-" + std::to_string(n)); }

/** Counter value of the series of @p family with every label in @p labels; -1 if none. */
double counterValue(const std::vector<prometheus::MetricFamily>& families,
                    const std::string& family,
                    const std::vector<std::pair<std::string, std::string>>& labels) {
  for (const auto& f : families) {
    if (f.name != family) {
      continue;
    }
    for (const auto& metric : f.metric) {
      size_t matched = 0;
      for (const auto& [name, value] : labels) {
        for (const auto& label : metric.label) {
          matched += label.name == name && label.value == value ? 1 : 0;
        }
      }
      if (matched == labels.size()) {
        return metric.counter.value;
      }
    }
  }
  return -1;
}

class ServerStoreTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::string dir_template = ::testing::TempDir() + "server_store_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir_template.data()), nullptr) << std::strerror(errno);
    dir_ = dir_template;
    auto store = ReservationStore::open(dir_ + "/state.db");
    ASSERT_TRUE(store.ok()) << store.error().message;
    store_ = std::move(*store);
    const Result<void> started = test_.start(test_data::voipWorld("100mbit", "100mbit"),
                                             {.store = store_.get(), .metrics = true});
    ASSERT_TRUE(started.ok()) << started.error().message;
    endpoint_ = test_.endpoint;
    metrics_ = test_.metrics.get();
    // Long enough for a commit that waits out the store's busy timeout.
    ASSERT_TRUE(client_.connect(endpoint_, 3 * ReservationStore::kBusyTimeoutMs).ok());
  }
  void TearDown() override {
    test_.stop();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  size_t storedCount() {
    auto grants = store_->loadAll();
    EXPECT_TRUE(grants.ok()) << grants.error().message;
    return grants.ok() ? grants->size() : 0;
  }

  std::string dir_;
  std::unique_ptr<ReservationStore> store_;
  test_data::TestServer test_;  ///< after the store: stops before the store closes
  std::string endpoint_;
  ServerMetrics* metrics_ = nullptr;
  control::RequestClient client_;
};

TEST_F(ServerStoreTest, EveryAnsweredChangeIsAlreadyStored) {
  // Many requests in flight at once, so batches are committed while the
  // next ones are handled.
  zmq::context_t ctx;
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(endpoint_);
  constexpr int kFlows = 300;
  for (int i = 0; i < kFlows; ++i) {
    const std::string payload =
        control::encodeRequest({"provision", std::to_string(i), provision(i)});
    dealer.send(zmq::message_t(), zmq::send_flags::sndmore);
    dealer.send(zmq::buffer(payload), zmq::send_flags::none);
  }
  dealer.set(zmq::sockopt::rcvtimeo, 5000);
  std::vector<uint64_t> flow_ids;
  for (int i = 0; i < kFlows; ++i) {
    zmq::message_t empty;
    zmq::message_t payload;
    ASSERT_TRUE(dealer.recv(empty) && dealer.recv(payload)) << "reply " << i << " missing";
    auto reply = control::decodeReply(payload.to_string_view());
    ASSERT_TRUE(reply.ok()) << reply.error().message;
    ASSERT_EQ(reply->status, ReplyStatus::Ok) << reply->error.message;
    flow_ids.push_back(reply->body["flow_id"].get<uint64_t>());
    // Answered, hence stored: it is in the file already.
    if (i % 50 == 0) {
      EXPECT_GE(storedCount(), flow_ids.size());
    }
  }
  EXPECT_EQ(storedCount(), static_cast<size_t>(kFlows));
  for (uint64_t id : flow_ids) {
    auto released = client_.call("release", {{"flow_id", id}});
    ASSERT_TRUE(released.ok() && released->status == ReplyStatus::Ok);
  }
  EXPECT_EQ(storedCount(), 0u);

  const auto families = metrics_->collect();
  EXPECT_EQ(
      counterValue(families, "qosmgr_requests_total", {{"type", "provision"}, {"status", "ok"}}),
      kFlows);
  EXPECT_EQ(
      counterValue(families, "qosmgr_requests_total", {{"type", "release"}, {"status", "ok"}}),
      kFlows);
  EXPECT_EQ(counterValue(families, "qosmgr_admissions_total", {{"profile", "default"}}), kFlows);
  EXPECT_EQ(counterValue(families, "qosmgr_store_changes_total", {}), 2 * kFlows);
}

TEST_F(ServerStoreTest, FailedCommitTakesBackTheGrantAndItsRetry) {
  // Another connection holds the file's write lock: the next commit waits
  // out the busy timeout and fails.
  sqlite3* blocker = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/state.db").c_str(), &blocker), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(blocker, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);

  // The request and, while its commit is pending, a retry of it.
  zmq::context_t ctx;
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.set(zmq::sockopt::rcvtimeo, 3 * ReservationStore::kBusyTimeoutMs);
  dealer.connect(endpoint_);
  for (const char* id : {"first", "retry"}) {
    const std::string payload = control::encodeRequest({"provision", id, provision(1)});
    dealer.send(zmq::message_t(), zmq::send_flags::sndmore);
    dealer.send(zmq::buffer(payload), zmq::send_flags::none);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  for (const char* id : {"first", "retry"}) {
    zmq::message_t empty;
    zmq::message_t payload;
    ASSERT_TRUE(dealer.recv(empty) && dealer.recv(payload)) << "reply to " << id << " missing";
    auto reply = control::decodeReply(payload.to_string_view());
    ASSERT_TRUE(reply.ok()) << reply.error().message;
    EXPECT_EQ(reply->id, id);
    EXPECT_EQ(reply->status, ReplyStatus::Error) << reply->id << ": " << payload.to_string();
    EXPECT_EQ(reply->error.code, "unavailable") << reply->id << ": a retry may succeed";
    EXPECT_EQ(test_.engine->flowCount(), 0u) << "the grant was taken back";
    if (blocker != nullptr) {
      // The store works again from here on.
      ASSERT_EQ(sqlite3_exec(blocker, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
      sqlite3_close(blocker);
      blocker = nullptr;
    }
  }

  // The same request is granted anew, and stored.
  auto again = client_.call("provision", provision(1));
  ASSERT_TRUE(again.ok()) << again.error().message;
  ASSERT_EQ(again->status, ReplyStatus::Ok) << again->error.message;
  EXPECT_EQ(again->body["retried"], false);
  EXPECT_EQ(storedCount(), 1u);
}

TEST_F(ServerStoreTest, ClientsCannotCreateMetricSeries) {
  for (int i = 0; i < 5; ++i) {
    auto r = client_.call("made-up-" + std::to_string(i), json::object());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->error.code, "unknown_type");
  }
  const auto families = metrics_->collect();
  EXPECT_EQ(
      counterValue(families, "qosmgr_requests_total", {{"type", "unknown"}, {"status", "error"}}),
      5);
  EXPECT_EQ(counterValue(families, "qosmgr_requests_total", {{"type", "made-up-0"}}), -1);
}

}  // namespace
}  // namespace qos::manager
