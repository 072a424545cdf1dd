// What keeps a host's grants alive, without threads or sockets: when each
// grant's lease is due for a refresh, what a refresh's outcome does to it,
// and when a grant is lost.  The session (session.h) asks it what to do and
// tells it what happened; tests drive it with a clock of their own.
//
// A lease is refreshed when a third of it has passed, so two refreshes can
// fail before it is at risk.  A refresh that finds the manager unreachable
// is tried again with backoff (0.25 s doubling to 5 s, never later than
// halfway to the lease's end); a grant whose lease ends meanwhile is lost:
// the manager has released it.  A refresh the manager answers "no such
// flow" loses the grant at once (an admin released it, or it lapsed there).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "control/common/result.h"

namespace qos::client {

enum class GrantState : uint8_t {
  Held,      ///< granted, its lease kept alive
  Lost,      ///< released at the manager without us: see lostReason()
  Released,  ///< released by the application
};

const char* grantStateName(GrantState state);

class GrantKeeper {
public:
  static constexpr uint64_t kFirstRetryMs = 250;
  static constexpr uint64_t kMaxRetryMs = 5000;

  /** Starts keeping flow @p flow_id, whose lease (@p lease_ms long) began at @p now_ms. */
  void add(uint64_t flow_id, uint64_t lease_ms, uint64_t now_ms);

  /** The flows whose refresh is due at @p now_ms; marks those past their lease lost. */
  std::vector<uint64_t> due(uint64_t now_ms);

  /** A refresh succeeded: the lease, @p lease_ms long, starts again at @p now_ms. */
  void refreshed(uint64_t flow_id, uint64_t lease_ms, uint64_t now_ms);

  /**
   * A refresh failed with @p error: the manager does not know the flow
   * (ErrorCode::NotFound) or will not let us keep it (Unauthorized): lost;
   * anything else: tried again later, unless the lease ends first.
   */
  void refreshFailed(uint64_t flow_id, const Error& error, uint64_t now_ms);

  /**
   * The application released the flow (or is releasing it, or gave up a
   * lost one): no more refreshes, and nothing kept of it; state() is
   * Released from now on.
   */
  void released(uint64_t flow_id);

  /** When due() next has something to do; nullopt if nothing is held. */
  std::optional<uint64_t> nextDueMs() const;

  GrantState state(uint64_t flow_id) const;
  /** Why a lost grant was lost; "" otherwise. */
  std::string lostReason(uint64_t flow_id) const;
  /** Flows lost since the last call (to tell the application once). */
  std::vector<uint64_t> takeNewlyLost();
  size_t held() const;
  /** The flows held now. */
  std::vector<uint64_t> heldFlows() const;

private:
  struct Kept {
    GrantState state = GrantState::Held;
    uint64_t lease_ms = 0;
    uint64_t lease_ends_ms = 0;
    uint64_t next_try_ms = 0;
    uint64_t retry_ms = 0;  ///< 0 until a refresh fails
    std::string lost_reason;
  };
  void lose(uint64_t flow_id, Kept& kept, std::string why);

  std::map<uint64_t, Kept> kept_;
  std::vector<uint64_t> newly_lost_;
};

/**
 * How long a lease granted or refreshed now lasts, in ms: from the
 * manager's expiry (epoch ms) and this host's wall clock, bounded by the
 * lease asked for (0: the manager's default) so that a host clock ahead or
 * behind cannot make it look longer than it is.  At least 1 s.
 */
uint64_t leaseMsOf(uint64_t expires_at_ms, uint64_t wall_now_ms, uint32_t asked_sec);

}  // namespace qos::client
