// ManagerLink: qosgate's control agent's connection to the manager.  It
// keeps one sync in flight at all times (the long-poll of
// manager/appliances/appliance_hub.h), hands each reply to the SyncSession,
// and sends the next sync at once, with the counters that changed.
//
//   send sync ─► wait for its reply (the manager answers within its
//   heartbeat) ─► session.onReply() applies it ─► send the next sync ...
//
// Losing the manager never stops forwarding: the rules stay as they are.
// No reply within three heartbeats (plus a second) means the manager is
// gone: the link drops the connection and tries again after a backoff (0.5 s,
// doubling up to max_backoff_ms), with a new connection; the session then
// learns from the manager whether its changes continue or it needs a
// snapshot.  A key the manager refuses is logged and retried at the longest
// backoff (an operator may be adding it).
//
// It never blocks longer than the wait poll() is given, so the control
// thread (qosgate's main lcore) stays responsive to signals and reclaims
// RCU memory on time.  Control thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "appliance/control/sync_session.h"
#include "control/protocol/messages.h"
#include "control/transport/client.h"

namespace qos::appliance {

/** Where the counters the syncs carry come from (the appliance, or a fake). */
class CounterSource {
public:
  virtual ~CounterSource() = default;
  /** Counters to report, at most @p max; @p more if some were left. */
  virtual std::vector<control::RuleCounters> takeCounters(size_t max, bool& more) = 0;
  /** The sync that carried @p counters was lost: report them again. */
  virtual void unreport(const std::vector<control::RuleCounters>& counters) = 0;
};

struct ManagerLinkOptions {
  std::string endpoint;                           ///< the manager's, "tcp://HOST:PORT"
  std::optional<control::CurveClientKeys> curve;  ///< none: no CURVE (local manager only)
  uint32_t max_backoff_ms = 10'000;
};

class ManagerLink {
public:
  /** Counters carried by one sync at most (each about 190 bytes of a 64 kB request). */
  static constexpr size_t kMaxCountersPerSync = 200;
  /**
   * Counters are read at most this often (a round reads every manager
   * rule's entry, and goes on over as many syncs as it takes); in between,
   * syncs carry none.
   */
  static constexpr uint64_t kCounterIntervalMs = 1000;

  /** Monotonic milliseconds; a parameter so tests can move time. */
  using Clock = std::function<uint64_t()>;
  static uint64_t steadyClockMs();

  /**
   * @param context  a ZeroMQ context to use (inproc:// in tests), or null for its own
   * @param counters may be null: no counters are reported
   */
  ManagerLink(zmq::context_t* context, ManagerLinkOptions options, SyncSession session,
              RuleTarget& target, CounterSource* counters, Clock clock = steadyClockMs);

  /** Connects (in the background).  Fails only on a bad endpoint or bad keys. */
  Result<void> start();

  /** Does what is due, waiting at most @p wait_ms for the manager. */
  void poll(int wait_ms);

  /** Whether the manager answered within its timeout. */
  bool connected() const { return connected_; }
  const SyncSession& session() const { return session_; }
  /** Replies taken so far. */
  uint64_t replies() const { return replies_; }

private:
  enum class State : uint8_t { Idle, Waiting, Backoff };

  void sendNext(uint64_t now_ms);
  void takeReply(const control::Reply& reply, uint64_t now_ms);
  /** The manager is gone or refuses us: drop the connection, retry after a backoff. */
  void lose(const std::string& why, uint64_t now_ms, bool longest_backoff);
  uint64_t replyTimeoutMs() const;

  ManagerLinkOptions options_;
  SyncSession session_;
  RuleTarget& target_;
  CounterSource* counters_;
  Clock clock_;
  control::RequestClient client_;
  State state_ = State::Idle;
  std::string in_flight_id_;
  std::vector<control::RuleCounters> in_flight_counters_;
  uint64_t sent_at_ms_ = 0;
  uint64_t idle_since_ms_ = 0;  ///< when sending became possible-but-failing
  uint64_t retry_at_ms_ = 0;
  uint64_t next_counters_ms_ = 0;     ///< when the next round of counters starts
  bool counters_round_open_ = false;  ///< a round left counters for the next sync
  uint32_t backoff_ms_ = 0;
  bool connected_ = false;
  uint64_t replies_ = 0;
  std::string last_problem_;  ///< logged once until it changes
};

}  // namespace qos::appliance
