// Standing policies: flows qos-agent holds QoS for on the host's behalf,
// declared in its config ([[policy]]) for applications that never ask
// (a media server, a backup job, a legacy softphone).
//
//   config [[policy]] ─► PolicyHolder ─ask─► qosmgr (through the agent's session)
//                          │  held: the session refreshes the lease
//                          │  denied / manager away / lost: asked again, with backoff
//                          └─ removed from the config, or the agent stops: released
//
// The holder has no thread and no socket: the agent calls tick() from its
// loop, and tests drive it with a clock of their own.  Asking waits for the
// manager's reply (the agent's request_timeout at most).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "control/agent/agent_config.h"
#include "control/client/session.h"
#include "control/common/result.h"
#include "control/protocol/fields.h"
#include "control/protocol/messages.h"

namespace qos::agent {

enum class PolicyState : uint8_t {
  Asking,       ///< not asked yet, or being asked again now
  Held,         ///< granted; the lease is kept alive
  Denied,       ///< the manager has no room: asked again later
  Unreachable,  ///< the manager did not answer: asked again later
  Refused,      ///< the manager refused the request (unknown app, not allowed): asked again later
  Lost,         ///< granted, then released without us (an admin; a lapsed lease): asked again
};

inline constexpr std::array<control::EnumName<PolicyState>, 6> kPolicyStates = {{
    {PolicyState::Asking, "asking"},
    {PolicyState::Held, "held"},
    {PolicyState::Denied, "denied"},
    {PolicyState::Unreachable, "unreachable"},
    {PolicyState::Refused, "refused"},
    {PolicyState::Lost, "lost"},
}};

constexpr std::string_view policyStateName(PolicyState state) {
  for (const auto& row : kPolicyStates) {
    if (row.value == state) {
      return row.name;
    }
  }
  return "unknown";
}

/** What qos-agent --status shows of one policy. */
struct PolicyStatus {
  std::string name;
  std::string application;
  control::FlowSpec flow;
  bool bidirectional = false;
  PolicyState state = PolicyState::Asking;
  uint64_t flow_id = 0;  ///< 0 unless held
  std::optional<uint8_t> dscp;
  std::optional<uint8_t> reverse_dscp;
  std::string class_name;
  uint64_t rate_bps = 0;
  uint64_t burst_bytes = 0;
  uint32_t attempts = 0;                   ///< asks since it was last held (or added)
  std::optional<uint64_t> next_try_in_ms;  ///< when it is asked again, unless held
  std::string reason;                      ///< why it is not held ("" when held)
  bool enforced = false;                   ///< by this host's kernel (the agent's [enforce])

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("name", self.name, control::Need::Required);
    f.field("app", self.application);
    control::FlowSpec::members(self.flow, f, control::ProtocolForm::PortsByName);
    f.field("bidir", self.bidirectional);
    f.enumeration("state", self.state, kPolicyStates);
    f.field("flow_id", self.flow_id);
    f.field("dscp", self.dscp);
    f.field("reverse_dscp", self.reverse_dscp);
    f.field("class", self.class_name);
    f.field("rate_bps", self.rate_bps);
    f.field("burst_bytes", self.burst_bytes);
    f.field("attempts", self.attempts);
    f.field("next_try_in_ms", self.next_try_in_ms);
    f.field("reason", self.reason);
    f.field("enforced", self.enforced);
  }
};

class PolicyHolder {
public:
  /** Asks the manager for one flow (the agent's upstream session). */
  using Ask = std::function<Result<client::Outcome>(control::AdmissionRequest)>;
  /** Told when a grant starts or stops being held for a policy (enforcement). */
  using Watch = std::function<void(const control::Grant& grant, bool held)>;

  static constexpr uint64_t kFirstRetryMs = 1000;
  static constexpr uint64_t kMaxRetryMs = 60'000;
  /// Asks per tick() at most: the agent serves its clients between ticks.
  static constexpr unsigned kMaxAsksPerTick = 8;

  struct Options {
    Ask ask;
    std::function<uint64_t()> steady_ms;
    Watch watch;        ///< may be empty
    uint64_t seed = 0;  ///< of the retry jitter; 0: from std::random_device
  };

  explicit PolicyHolder(Options options);
  /** Releases every grant held. */
  ~PolicyHolder();
  PolicyHolder(const PolicyHolder&) = delete;
  PolicyHolder& operator=(const PolicyHolder&) = delete;

  /**
   * Makes @p policies the set held (at start, and on reload): a policy whose
   * name and request are unchanged keeps its grant; a removed or changed one
   * is released; a new one is asked for at the next tick().
   * @return one line per change, for the log
   */
  std::vector<std::string> set(std::vector<StandingPolicy> policies);

  /** Asks for every policy that is due, and notices grants lost meanwhile. */
  void tick();

  /** When tick() next has something to do (steady ms); nullopt: nothing. */
  std::optional<uint64_t> nextDueMs() const;

  std::vector<PolicyStatus> status() const;
  size_t held() const;
  size_t size() const { return kept_.size(); }

  /** Releases every grant held; the policies stay, not asked again until set(). */
  void releaseAll();

private:
  struct Kept {
    StandingPolicy policy;
    PolicyState state = PolicyState::Asking;
    std::shared_ptr<client::HeldGrant> grant;
    uint64_t next_try_ms = 0;
    uint64_t retry_ms = 0;  ///< the next wait; 0 until an ask fails
    uint32_t attempts = 0;
    std::string reason;
  };
  void ask(Kept& kept);
  /** Schedules the next ask after a failure, with backoff and jitter. */
  void retryLater(Kept& kept, PolicyState state, std::string reason, uint64_t now_ms,
                  bool at_max = false);
  void drop(Kept& kept);

  Options options_;
  std::mt19937_64 jitter_;
  std::vector<Kept> kept_;
  bool stopped_ = false;
};

}  // namespace qos::agent
