#include "control/client/grant_keeper.h"

#include <algorithm>
#include <utility>

namespace qos::client {

const char* grantStateName(GrantState state) {
  switch (state) {
    case GrantState::Held:
      return "held";
    case GrantState::Lost:
      return "lost";
    case GrantState::Released:
      return "released";
  }
  return "?";
}

void GrantKeeper::add(uint64_t flow_id, uint64_t lease_ms, uint64_t now_ms) {
  Kept kept;
  kept.lease_ms = lease_ms;
  kept.lease_ends_ms = now_ms + lease_ms;
  kept.next_try_ms = now_ms + lease_ms / 3;
  kept_[flow_id] = std::move(kept);
}

std::vector<uint64_t> GrantKeeper::due(uint64_t now_ms) {
  std::vector<uint64_t> flows;
  for (auto& [flow_id, kept] : kept_) {
    if (kept.state != GrantState::Held) {
      continue;
    }
    if (now_ms >= kept.lease_ends_ms) {
      lose(flow_id, kept,
           kept.retry_ms != 0 ? "its lease ran out while the manager could not be reached"
                              : "its lease ran out before it could be refreshed");
      continue;
    }
    if (now_ms >= kept.next_try_ms) {
      flows.push_back(flow_id);
    }
  }
  return flows;
}

void GrantKeeper::refreshed(uint64_t flow_id, uint64_t lease_ms, uint64_t now_ms) {
  auto it = kept_.find(flow_id);
  if (it == kept_.end() || it->second.state != GrantState::Held) {
    return;
  }
  Kept& kept = it->second;
  kept.lease_ms = lease_ms;
  kept.lease_ends_ms = now_ms + lease_ms;
  kept.next_try_ms = now_ms + lease_ms / 3;
  kept.retry_ms = 0;
}

void GrantKeeper::refreshFailed(uint64_t flow_id, const Error& error, uint64_t now_ms) {
  auto it = kept_.find(flow_id);
  if (it == kept_.end() || it->second.state != GrantState::Held) {
    return;
  }
  Kept& kept = it->second;
  if (error.code == ErrorCode::NotFound || error.code == ErrorCode::Unauthorized) {
    lose(flow_id, kept, "the manager no longer holds it: " + error.message);
    return;
  }
  kept.retry_ms = kept.retry_ms == 0 ? kFirstRetryMs : std::min(kMaxRetryMs, kept.retry_ms * 2);
  const uint64_t left = kept.lease_ends_ms > now_ms ? kept.lease_ends_ms - now_ms : 0;
  kept.next_try_ms = now_ms + std::max<uint64_t>(1, std::min(kept.retry_ms, left / 2));
}

void GrantKeeper::released(uint64_t flow_id) {
  // Forgotten: a long-running holder (qos-agent) keeps nothing per past grant.
  kept_.erase(flow_id);
}

std::optional<uint64_t> GrantKeeper::nextDueMs() const {
  std::optional<uint64_t> next;
  for (const auto& [flow_id, kept] : kept_) {
    if (kept.state == GrantState::Held) {
      const uint64_t at = std::min(kept.next_try_ms, kept.lease_ends_ms);
      next = next ? std::min(*next, at) : at;
    }
  }
  return next;
}

GrantState GrantKeeper::state(uint64_t flow_id) const {
  auto it = kept_.find(flow_id);
  return it == kept_.end() ? GrantState::Released : it->second.state;
}

std::string GrantKeeper::lostReason(uint64_t flow_id) const {
  auto it = kept_.find(flow_id);
  return it == kept_.end() ? "" : it->second.lost_reason;
}

std::vector<uint64_t> GrantKeeper::takeNewlyLost() { return std::exchange(newly_lost_, {}); }

size_t GrantKeeper::held() const {
  return static_cast<size_t>(std::count_if(kept_.begin(), kept_.end(), [](const auto& entry) {
    return entry.second.state == GrantState::Held;
  }));
}

std::vector<uint64_t> GrantKeeper::heldFlows() const {
  std::vector<uint64_t> flows;
  for (const auto& [flow_id, kept] : kept_) {
    if (kept.state == GrantState::Held) {
      flows.push_back(flow_id);
    }
  }
  return flows;
}

void GrantKeeper::lose(uint64_t flow_id, Kept& kept, std::string why) {
  kept.state = GrantState::Lost;
  kept.lost_reason = std::move(why);
  newly_lost_.push_back(flow_id);
}

uint64_t leaseMsOf(uint64_t expires_at_ms, uint64_t wall_now_ms, uint32_t asked_sec) {
  constexpr uint64_t kMinLeaseMs = 1000;
  const uint64_t by_clock = expires_at_ms > wall_now_ms ? expires_at_ms - wall_now_ms : 0;
  uint64_t lease = by_clock;
  if (asked_sec != 0) {
    const uint64_t asked = uint64_t{asked_sec} * 1000;
    // A clock behind the manager's makes the lease look longer than asked.
    lease = by_clock == 0 ? asked : std::min(asked, by_clock);
  }
  return std::max(kMinLeaseMs, lease);
}

}  // namespace qos::client
