// ApplianceHub: what each appliance must enforce, what it has acknowledged,
// and what it reports.  The manager's side of the appliance sync.
//
// The session (a long-poll on the manager's ROUTER; no PUB/SUB, so nothing
// is dropped at a high-water mark):
//
//   appliance                                     manager (this hub)
//   sync {epoch:"", applied:0}            ─────►  new session: snapshot page 1 of
//                                         ◄─────  {epoch E, snapshot_seq S, rules...}
//   sync {epoch E, in_snapshot, after R}  ─────►  next page (rules after R)
//                                         ◄─────  ... {last_page}
//   (reconciles: its manager rules become the snapshot, unchanged ones untouched)
//   sync {epoch E, applied S}             ─────►  changes after S, or held until
//                                         ◄─────  there are some, or heartbeat_ms
//   sync {epoch E, applied N, counters}   ─────►  ack of N; changes after N ...
//
// Every change to an appliance's rules gets the next sequence number of that
// appliance, in this manager's epoch (a random id per manager process).  A
// change carries the whole rule and sets its state (add or remove), so that
// replaying one already applied changes nothing: the changes made while a
// snapshot is paged out are replayed after it, and the result is exact.
// The appliance's `applied` is its acknowledgement; its next sync comes at
// once after each reply, so syncs are also its heartbeats, and the held
// replies (at least one per heartbeat_ms) are the manager's.
//
// When the appliance comes back after either side restarted, its epoch is
// not this one (or it has none): it gets a snapshot and reconciles.  When it
// asks for changes the log no longer holds (it was away long, or the log hit
// its cap), it gets a snapshot too.  Nothing is ever skipped.
//
// The feed: durable flow events (request_server.h's outbox) become changes
// through the RulePlanner (rule_plan.h).  A held sync is answered as soon
// as its appliance has changes.
//
// A grant reply may wait (awaitEnforcement()) until every appliance on the
// grant's path that is up has acknowledged its rules, or a deadline: then
// the host starts marking only once the gateways enforce.  Appliances that
// are down do not delay it; the reply lists them as pending.
//
// Single-threaded: the request loop's thread calls everything.  Time is an
// argument.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "control/protocol/envelope.h"
#include "control/protocol/messages.h"
#include "manager/appliances/rule_plan.h"
#include "manager/config/manager_config.h"
#include "manager/service/batch.h"

namespace qos::manager {

/** How much the hub sends and keeps per appliance. */
struct ApplianceHubLimits {
  size_t page_rules = 2000;          ///< rules per snapshot page and changes per reply
  size_t max_log = size_t{1} << 20;  ///< changes kept for an appliance that is behind
};

class ApplianceHub {
public:
  using Limits = ApplianceHubLimits;
  using SyncResponder = std::function<void(const control::SyncReply& reply)>;
  using EnforcementResponder = std::function<void(const control::Enforcement& enforcement)>;

  /** @p config must outlive the hub (or the next reconfigure()). */
  explicit ApplianceHub(const ManagerConfig& config, Limits limits = {});
  ApplianceHub(const ApplianceHub&) = delete;
  ApplianceHub& operator=(const ApplianceHub&) = delete;

  /** This manager's epoch: 16 random hex digits, new with every process. */
  const std::string& epoch() const { return epoch_; }

  /** The rules of the grants live at start (restored from the store). */
  void load(const std::vector<Grant>& live);

  /**
   * A reloaded config: every live grant is planned again, and what changed
   * for each appliance becomes changes (an appliance that is new gets its
   * rules; one that is gone is forgotten).  @p config must outlive the hub.
   */
  void reconfigure(const ManagerConfig& config, const std::vector<Grant>& live);

  /** Durable flow events, in order: changes for the appliances on their paths. */
  void publish(const std::vector<FlowEvent>& events);

  /**
   * Whether @p peer may sync as request.name: it must be a configured
   * appliance and, when peers are authenticated, the peer's own name.
   * @return the error to answer with, or nullopt
   */
  std::optional<control::WireError> admit(const control::SyncRequest& request, const Peer& peer,
                                          bool authenticated) const;

  /**
   * Serves an admitted sync: takes its acknowledgement, counters and
   * rejections, then answers through @p respond, now or (when it asks for
   * changes and there are none) once there are some or heartbeat_ms passed.
   */
  void sync(const control::SyncRequest& request, const Peer& peer, uint64_t now_ms,
            SyncResponder respond);

  /** Which appliances on @p grant's path enforce it now, and which do not (yet). */
  control::Enforcement enforcement(const Grant& grant, uint64_t now_ms) const;

  /** Whether an appliance on @p grant's path is up and has not acknowledged its rules yet. */
  bool awaitsEnforcement(const Grant& grant, uint64_t now_ms) const;

  /**
   * Calls @p respond with the grant's enforcement once every appliance on
   * its path that is up has acknowledged its rules, or at @p deadline_ms.
   * @return false, without calling @p respond, when there is nothing to
   *         wait for (the caller answers at once)
   */
  bool awaitEnforcement(const Grant& grant, uint64_t now_ms, uint64_t deadline_ms,
                        EnforcementResponder respond);

  /** What the appliances on @p grant's path reported of it. */
  control::Delivery delivery(const Grant& grant) const;

  /** `qosctl appliances`. */
  std::vector<control::ApplianceStatus> status(uint64_t now_ms) const;

  /**
   * Timers: answers held syncs at their heartbeat, waits at their deadline,
   * marks appliances that went quiet as down.
   * @return flows no appliance on their path saw for idle_release (when on),
   *         for the caller to release
   */
  std::vector<uint64_t> tick(uint64_t now_ms);

  /** Appliances not down now. */
  size_t appliancesUp(uint64_t now_ms) const;
  /** Whether any appliance is configured. */
  bool hasAppliances() const { return !feeds_.empty(); }

private:
  using RuleKey = std::pair<uint64_t, control::Direction>;

  struct Desired {
    control::ApplianceRule rule;
    uint64_t seq = 0;  ///< the change that added it
  };

  struct Counters {
    control::RuleCounters last;
    uint64_t first_report_ms = 0;
    uint64_t report_ms = 0;
    std::optional<uint64_t> rate_bps;        ///< passed rate between the last two reports
    std::optional<uint64_t> last_packet_ms;  ///< when it last saw a packet, in our clock
  };

  struct Held {
    SyncResponder respond;
    uint64_t deadline_ms = 0;
  };

  struct Feed {
    const ApplianceSite* site = nullptr;
    std::map<RuleKey, Desired> rules;      ///< what it must enforce
    std::deque<control::RuleChange> log;   ///< changes not yet trimmed, in seq order
    uint64_t seq = 0;                      ///< the latest change
    uint64_t acked = 0;                    ///< the latest it applied, when on_epoch
    bool on_epoch = false;                 ///< its rules are this epoch's (acked means something)
    bool log_lost = false;                 ///< the log was dropped at its cap: it needs a snapshot
    std::optional<uint64_t> snapshot_seq;  ///< a snapshot is paged out from this seq
    uint64_t last_seen_ms = 0;             ///< its last sync; 0: never
    std::string instance;
    std::string version;
    std::string address;
    std::optional<Held> held;
    std::map<RuleKey, Counters> counters;
    std::map<RuleKey, std::string> rejected;
  };

  struct Awaiting {
    Grant grant;
    uint64_t deadline_ms = 0;
    EnforcementResponder respond;
  };

  void buildFeeds(const ManagerConfig& config);
  Feed* feedNamed(const std::string& name);
  void change(Feed& feed, control::ChangeOp op, const control::ApplianceRule& rule);
  void trim(Feed& feed);
  bool isUp(const Feed& feed, uint64_t now_ms) const;
  bool enforces(const Feed& feed, const RuleKey& key) const;
  /** Changes after @p applied, at most a page. */
  control::SyncReply updatesAfter(const Feed& feed, uint64_t applied) const;
  control::SyncReply snapshotPage(Feed& feed, uint64_t seq, std::optional<RuleKey> after) const;
  control::SyncReply baseReply() const;
  void answerHeld(Feed& feed, const control::SyncReply& reply);
  void absorbCounters(Feed& feed, const std::vector<control::RuleCounters>& counters,
                      uint64_t now_ms);
  void resolveAwaiting(uint64_t now_ms, bool deadline_only);
  std::vector<uint64_t> idleFlows(uint64_t now_ms) const;

  const ManagerConfig* config_;
  Limits limits_;
  std::string epoch_;
  RulePlanner planner_;
  std::vector<Feed> feeds_;  ///< by index in config_->appliances
  std::list<Awaiting> awaiting_;
  uint64_t last_idle_check_ms_ = 0;
};

}  // namespace qos::manager
