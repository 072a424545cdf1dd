// When a host's grants are refreshed, retried and lost, on a clock the test moves.
#include "control/client/grant_keeper.h"

#include <gtest/gtest.h>

namespace qos::client {
namespace {

constexpr uint64_t kLeaseMs = 30'000;

TEST(GrantKeeperTest, ALeaseIsRefreshedWhenAThirdOfItHasPassed) {
  GrantKeeper keeper;
  keeper.add(7, kLeaseMs, 1000);
  EXPECT_TRUE(keeper.due(1000 + kLeaseMs / 3 - 1).empty());
  EXPECT_EQ(keeper.nextDueMs(), 1000 + kLeaseMs / 3);
  EXPECT_EQ(keeper.due(1000 + kLeaseMs / 3), std::vector<uint64_t>{7});
  keeper.refreshed(7, kLeaseMs, 12'000);
  EXPECT_TRUE(keeper.due(12'000 + kLeaseMs / 3 - 1).empty()) << "counted from the refresh";
  EXPECT_EQ(keeper.state(7), GrantState::Held);
}

TEST(GrantKeeperTest, AnUnreachableManagerIsRetriedWithBackoffUntilTheLeaseEnds) {
  GrantKeeper keeper;
  keeper.add(7, kLeaseMs, 0);
  uint64_t now = kLeaseMs / 3;
  const Error unreachable = makeError(ErrorCode::Unavailable, "no reply");
  std::vector<uint64_t> gaps;
  while (true) {
    const std::vector<uint64_t> due = keeper.due(now);
    if (keeper.state(7) != GrantState::Held) {
      break;
    }
    ASSERT_EQ(due, std::vector<uint64_t>{7}) << "at " << now;
    keeper.refreshFailed(7, unreachable, now);
    const uint64_t next = *keeper.nextDueMs();
    gaps.push_back(next - now);
    now = next;
  }
  ASSERT_GE(gaps.size(), 4u);
  EXPECT_EQ(gaps[0], GrantKeeper::kFirstRetryMs);
  EXPECT_EQ(gaps[1], 2 * GrantKeeper::kFirstRetryMs);
  for (uint64_t gap : gaps) {
    EXPECT_LE(gap, GrantKeeper::kMaxRetryMs);
  }
  EXPECT_EQ(now, kLeaseMs) << "lost exactly when the lease ran out";
  EXPECT_EQ(keeper.state(7), GrantState::Lost);
  EXPECT_NE(keeper.lostReason(7).find("could not be reached"), std::string::npos);
  EXPECT_EQ(keeper.takeNewlyLost(), std::vector<uint64_t>{7});
  EXPECT_TRUE(keeper.takeNewlyLost().empty()) << "told once";
  EXPECT_FALSE(keeper.nextDueMs().has_value());
}

TEST(GrantKeeperTest, ARefreshAfterAFailureStartsTheBackoffAgain) {
  GrantKeeper keeper;
  keeper.add(7, kLeaseMs, 0);
  keeper.refreshFailed(7, makeError(ErrorCode::Unavailable, "no reply"), 10'000);
  keeper.refreshFailed(7, makeError(ErrorCode::Unavailable, "no reply"), 10'250);
  keeper.refreshed(7, kLeaseMs, 10'750);
  keeper.refreshFailed(7, makeError(ErrorCode::Unavailable, "no reply"), 20'750);
  EXPECT_EQ(*keeper.nextDueMs(), 20'750 + GrantKeeper::kFirstRetryMs);
}

TEST(GrantKeeperTest, AFlowTheManagerDoesNotKnowIsLostAtOnce) {
  GrantKeeper keeper;
  keeper.add(7, kLeaseMs, 0);
  keeper.add(8, kLeaseMs, 0);
  keeper.refreshFailed(7, makeError(ErrorCode::NotFound, "no flow 7 (unknown_flow)"), 10'000);
  EXPECT_EQ(keeper.state(7), GrantState::Lost);
  EXPECT_NE(keeper.lostReason(7).find("no longer holds it"), std::string::npos);
  EXPECT_EQ(keeper.state(8), GrantState::Held);
  EXPECT_EQ(keeper.held(), 1u);
  EXPECT_EQ(keeper.heldFlows(), std::vector<uint64_t>{8});
}

TEST(GrantKeeperTest, AReleasedFlowIsNeitherRefreshedNorLost) {
  GrantKeeper keeper;
  keeper.add(7, kLeaseMs, 0);
  keeper.released(7);
  EXPECT_TRUE(keeper.due(kLeaseMs * 2).empty());
  EXPECT_EQ(keeper.state(7), GrantState::Released);
  EXPECT_TRUE(keeper.takeNewlyLost().empty());
}

TEST(GrantKeeperTest, TheLeaseIsNeverLongerThanAskedNorShorterThanASecond) {
  EXPECT_EQ(leaseMsOf(61'000, 1'000, 0), 60'000u) << "the manager's expiry, by this clock";
  EXPECT_EQ(leaseMsOf(91'000, 1'000, 60), 60'000u) << "a clock behind the manager's";
  EXPECT_EQ(leaseMsOf(41'000, 1'000, 60), 40'000u) << "a clock ahead of the manager's";
  EXPECT_EQ(leaseMsOf(500, 1'000, 60), 60'000u) << "a clock far ahead: what was asked";
  EXPECT_EQ(leaseMsOf(500, 1'000, 0), 1'000u) << "nothing known: refresh often";
}

}  // namespace
}  // namespace qos::client
