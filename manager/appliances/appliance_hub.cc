#include "manager/appliances/appliance_hub.h"

#include <algorithm>

#include "control/common/log.h"
#include "control/common/random_id.h"

namespace qos::manager {
namespace {

using control::ApplianceRule;
using control::ChangeOp;
using control::Direction;
using control::RuleChange;
using control::SyncKind;
using control::SyncReply;

/** An appliance not heard from for this many heartbeats is down. */
constexpr uint64_t kDownAfterHeartbeats = 3;
/** How often idle flows are looked for, at most. */
constexpr uint64_t kIdleCheckIntervalMs = 1000;

uint64_t passedBytes(const control::RuleCounters& c) { return c.green_bytes + c.yellow_bytes; }

}  // namespace

ApplianceHub::ApplianceHub(const ManagerConfig& config, Limits limits)
    : config_(&config), limits_(limits), epoch_(randomHexId()), planner_(config) {
  buildFeeds(config);
}

void ApplianceHub::buildFeeds(const ManagerConfig& config) {
  std::vector<Feed> feeds(config.appliances.size());
  for (size_t i = 0; i < config.appliances.size(); ++i) {
    const ApplianceSite& site = config.appliances[i];
    if (Feed* old = feedNamed(site.name)) {
      feeds[i] = std::move(*old);
    }
    feeds[i].site = &site;
  }
  feeds_ = std::move(feeds);
}

ApplianceHub::Feed* ApplianceHub::feedNamed(const std::string& name) {
  for (Feed& feed : feeds_) {
    if (feed.site != nullptr && feed.site->name == name) {
      return &feed;
    }
  }
  return nullptr;
}

void ApplianceHub::change(Feed& feed, ChangeOp op, const ApplianceRule& rule) {
  const RuleKey key{rule.flow_id, rule.dir};
  const auto it = feed.rules.find(key);
  if (op == ChangeOp::Add) {
    if (it != feed.rules.end() && it->second.rule == rule) {
      return;
    }
    const uint64_t seq = ++feed.seq;
    feed.rules[key] = Desired{rule, seq};
    feed.rejected.erase(key);
    feed.log.push_back(RuleChange{seq, op, rule});
  } else {
    if (it == feed.rules.end()) {
      return;
    }
    const uint64_t seq = ++feed.seq;
    feed.log.push_back(RuleChange{seq, op, it->second.rule});
    feed.rules.erase(it);
    feed.rejected.erase(key);
    feed.counters.erase(key);
  }
  trim(feed);
}

void ApplianceHub::trim(Feed& feed) {
  // Keep what the appliance still needs: changes after its acknowledgement,
  // or after the snapshot it is taking.
  std::optional<uint64_t> floor;
  if (feed.snapshot_seq) {
    floor = *feed.snapshot_seq;
  } else if (feed.on_epoch) {
    floor = feed.acked;
  }
  if (floor) {
    while (!feed.log.empty() && feed.log.front().seq <= *floor) {
      feed.log.pop_front();
    }
  }
  if (feed.log.size() > limits_.max_log) {
    // Too far behind to replay: it gets a snapshot when it asks.
    feed.log.clear();
    feed.log_lost = true;
    feed.snapshot_seq.reset();
  }
}

void ApplianceHub::load(const std::vector<Grant>& live) {
  for (const Grant& grant : live) {
    for (const PlannedRule& planned : planner_.plan(grant)) {
      change(feeds_[planned.appliance], ChangeOp::Add, planned.rule);
    }
  }
}

void ApplianceHub::reconfigure(const ManagerConfig& config, const std::vector<Grant>& live) {
  config_ = &config;
  planner_ = RulePlanner(config);
  buildFeeds(config);
  // What each appliance must enforce now, against what it had.
  std::vector<std::map<RuleKey, ApplianceRule>> wanted(feeds_.size());
  for (const Grant& grant : live) {
    for (const PlannedRule& planned : planner_.plan(grant)) {
      const RuleKey key{planned.rule.flow_id, planned.rule.dir};
      wanted[planned.appliance].emplace(key, planned.rule);
    }
  }
  for (size_t i = 0; i < feeds_.size(); ++i) {
    Feed& feed = feeds_[i];
    std::vector<ApplianceRule> gone;
    for (const auto& [key, desired] : feed.rules) {
      if (wanted[i].count(key) == 0) {
        gone.push_back(desired.rule);
      }
    }
    for (const ApplianceRule& rule : gone) {
      change(feed, ChangeOp::Remove, rule);
    }
    for (const auto& [key, rule] : wanted[i]) {
      change(feed, ChangeOp::Add, rule);
    }
    if (feed.held && feed.on_epoch && feed.acked < feed.seq) {
      answerHeld(feed, updatesAfter(feed, feed.acked));
    }
  }
}

void ApplianceHub::publish(const std::vector<FlowEvent>& events) {
  if (feeds_.empty()) {
    return;
  }
  std::vector<bool> touched(feeds_.size(), false);
  for (const FlowEvent& event : events) {
    const ChangeOp op = event.kind == FlowEvent::Kind::Granted ? ChangeOp::Add : ChangeOp::Remove;
    for (const PlannedRule& planned : planner_.plan(event.grant)) {
      change(feeds_[planned.appliance], op, planned.rule);
      touched[planned.appliance] = true;
    }
  }
  for (size_t i = 0; i < feeds_.size(); ++i) {
    Feed& feed = feeds_[i];
    if (touched[i] && feed.held && feed.on_epoch && feed.acked < feed.seq) {
      answerHeld(feed, updatesAfter(feed, feed.acked));
    }
  }
}

std::optional<control::WireError> ApplianceHub::admit(const control::SyncRequest& request,
                                                      const Peer& peer, bool authenticated) const {
  if (authenticated && peer.name != request.name) {
    return control::WireError{"not_authorized", "this key belongs to '" + peer.name +
                                                    "', which may sync only as itself, not as '" +
                                                    request.name + "'"};
  }
  const auto known = std::find_if(feeds_.begin(), feeds_.end(), [&](const Feed& feed) {
    return feed.site->name == request.name;
  });
  if (known == feeds_.end()) {
    return control::WireError{"unknown_appliance", "no [[appliance]] named '" + request.name +
                                                       "' in the manager's config"};
  }
  return std::nullopt;
}

SyncReply ApplianceHub::baseReply() const {
  SyncReply reply;
  reply.epoch = epoch_;
  reply.heartbeat_ms = config_->heartbeat_ms;
  return reply;
}

SyncReply ApplianceHub::updatesAfter(const Feed& feed, uint64_t applied) const {
  SyncReply reply = baseReply();
  reply.kind = SyncKind::Updates;
  reply.to = applied;
  // The log is in seq order and holds every change after the point it was
  // trimmed to, which is never past what this appliance acknowledged.
  auto it = std::lower_bound(feed.log.begin(), feed.log.end(), applied + 1,
                             [](const RuleChange& c, uint64_t seq) { return c.seq < seq; });
  for (; it != feed.log.end() && reply.changes.size() < limits_.page_rules; ++it) {
    reply.changes.push_back(*it);
    reply.to = it->seq;
  }
  if (reply.changes.empty()) {
    reply.to = feed.seq;
  }
  return reply;
}

SyncReply ApplianceHub::snapshotPage(Feed& feed, uint64_t seq, std::optional<RuleKey> after) const {
  SyncReply reply = baseReply();
  reply.kind = SyncKind::Snapshot;
  reply.snapshot_seq = seq;
  auto it = after ? feed.rules.upper_bound(*after) : feed.rules.begin();
  for (; it != feed.rules.end() && reply.rules.size() < limits_.page_rules; ++it) {
    reply.rules.push_back(it->second.rule);
  }
  reply.last_page = it == feed.rules.end();
  return reply;
}

void ApplianceHub::answerHeld(Feed& feed, const SyncReply& reply) {
  if (!feed.held) {
    return;
  }
  SyncResponder respond = std::move(feed.held->respond);
  feed.held.reset();
  respond(reply);
}

void ApplianceHub::absorbCounters(Feed& feed, const std::vector<control::RuleCounters>& counters,
                                  uint64_t now_ms) {
  for (const control::RuleCounters& c : counters) {
    const RuleKey key{c.flow_id, c.dir};
    if (feed.rules.count(key) == 0) {
      continue;  // a rule removed since: its counters are no longer ours to keep
    }
    Counters& state = feed.counters[key];
    if (state.first_report_ms == 0) {
      state.first_report_ms = now_ms;
    } else if (now_ms > state.report_ms) {
      // A counter that went down was reset (the rule was installed anew): no rate.
      const uint64_t before = passedBytes(state.last);
      const uint64_t after = passedBytes(c);
      if (after >= before) {
        state.rate_bps = (after - before) * 8 * 1000 / (now_ms - state.report_ms);
      } else {
        state.rate_bps.reset();
      }
    }
    if (c.idle_ms && *c.idle_ms <= now_ms) {
      state.last_packet_ms = now_ms - *c.idle_ms;
    }
    state.last = c;
    state.report_ms = now_ms;
  }
}

void ApplianceHub::sync(const control::SyncRequest& request, const Peer& peer, uint64_t now_ms,
                        SyncResponder respond) {
  Feed* found = feedNamed(request.name);
  if (found == nullptr) {
    return;  // admit() said no already
  }
  Feed& feed = *found;
  if (feed.instance != request.instance) {
    log::info("appliance " + request.name + " (" + request.version + ") connected from " +
              (peer.address.empty() ? std::string("?") : peer.address) +
              (feed.instance.empty() ? "" : " (a new instance: it restarted)"));
    feed.instance = request.instance;
    feed.counters.clear();
  }
  feed.version = request.version;
  feed.address = peer.address;
  feed.last_seen_ms = now_ms;
  // A newer sync supersedes a held one (the appliance gave up waiting).
  if (feed.held) {
    answerHeld(feed, updatesAfter(feed, feed.on_epoch ? feed.acked : 0));
  }
  absorbCounters(feed, request.counters, now_ms);

  if (request.epoch == epoch_ && request.in_snapshot) {
    // The next page of a snapshot, if the log still holds everything after it.
    const uint64_t seq = request.snapshot_seq;
    const uint64_t floor = feed.log.empty() ? feed.seq : feed.log.front().seq - 1;
    if (seq <= feed.seq && seq >= floor && !feed.log_lost) {
      feed.snapshot_seq = seq;
      respond(snapshotPage(feed, seq,
                           RuleKey{request.snapshot_after_flow, request.snapshot_after_dir}));
      return;
    }
  } else if (request.epoch == epoch_ && request.applied <= feed.seq && !feed.log_lost) {
    const uint64_t floor = feed.log.empty() ? feed.seq : feed.log.front().seq - 1;
    if (request.applied >= floor || request.applied == feed.seq) {
      // Its acknowledgement; then the changes after it, now or held.
      if (!feed.on_epoch) {
        log::info("appliance " + request.name + " is in sync at change " +
                  std::to_string(request.applied));
      }
      feed.on_epoch = true;
      feed.snapshot_seq.reset();
      feed.acked = request.applied;
      size_t n_rejected = 0;
      for (const control::RuleRejection& r : request.rejected) {
        const RuleKey key{r.flow_id, r.dir};
        if (feed.rules.count(key) != 0) {
          if (n_rejected++ == 0) {
            log::warning("appliance " + request.name + " could not install the rule of flow " +
                         std::to_string(r.flow_id) + ": " + r.reason);
          }
          feed.rejected[key] = r.reason;
        }
      }
      if (n_rejected > 1) {
        log::warning("appliance " + request.name + " rejected " + std::to_string(n_rejected - 1) +
                     " more rule(s) (qosctl appliances counts them)");
      }
      trim(feed);
      resolveAwaiting(now_ms, /*deadline_only=*/false);
      SyncReply reply = updatesAfter(feed, request.applied);
      if (!reply.changes.empty() || request.more) {
        respond(reply);
      } else {
        feed.held = Held{std::move(respond), now_ms + config_->heartbeat_ms};
      }
      return;
    }
  }
  // A new session, or one the log can no longer continue: a snapshot.
  feed.on_epoch = false;
  feed.log_lost = false;
  feed.snapshot_seq = feed.seq;
  trim(feed);
  respond(snapshotPage(feed, feed.seq, std::nullopt));
}

bool ApplianceHub::isUp(const Feed& feed, uint64_t now_ms) const {
  return feed.last_seen_ms != 0 &&
         now_ms - feed.last_seen_ms <= kDownAfterHeartbeats * config_->heartbeat_ms;
}

bool ApplianceHub::enforces(const Feed& feed, const RuleKey& key) const {
  const auto it = feed.rules.find(key);
  return feed.on_epoch && it != feed.rules.end() && it->second.seq <= feed.acked &&
         feed.rejected.count(key) == 0;
}

control::Enforcement ApplianceHub::enforcement(const Grant& grant, uint64_t now_ms) const {
  (void)now_ms;
  control::Enforcement out;
  std::vector<uint32_t> order;
  std::map<uint32_t, bool> enforced;  // by appliance: every rule of the grant there is applied
  for (const PlannedRule& planned : planner_.plan(grant)) {
    const bool ok = enforces(feeds_[planned.appliance], {planned.rule.flow_id, planned.rule.dir});
    const auto [it, inserted] = enforced.emplace(planned.appliance, ok);
    if (inserted) {
      order.push_back(planned.appliance);
    } else {
      it->second = it->second && ok;
    }
  }
  for (const uint32_t appliance : order) {
    (enforced[appliance] ? out.enforced_by : out.pending).push_back(feeds_[appliance].site->name);
  }
  return out;
}

bool ApplianceHub::awaitsEnforcement(const Grant& grant, uint64_t now_ms) const {
  for (const PlannedRule& planned : planner_.plan(grant)) {
    const Feed& feed = feeds_[planned.appliance];
    if (isUp(feed, now_ms) && !enforces(feed, {planned.rule.flow_id, planned.rule.dir})) {
      return true;
    }
  }
  return false;
}

bool ApplianceHub::awaitEnforcement(const Grant& grant, uint64_t now_ms, uint64_t deadline_ms,
                                    EnforcementResponder respond) {
  if (!awaitsEnforcement(grant, now_ms)) {
    return false;
  }
  awaiting_.push_back(Awaiting{grant, deadline_ms, std::move(respond)});
  return true;
}

void ApplianceHub::resolveAwaiting(uint64_t now_ms, bool deadline_only) {
  for (auto it = awaiting_.begin(); it != awaiting_.end();) {
    bool done = now_ms >= it->deadline_ms;
    if (!done && !deadline_only) {
      done = true;
      for (const PlannedRule& planned : planner_.plan(it->grant)) {
        const Feed& feed = feeds_[planned.appliance];
        if (isUp(feed, now_ms) && !enforces(feed, {planned.rule.flow_id, planned.rule.dir})) {
          done = false;
          break;
        }
      }
    }
    if (done) {
      EnforcementResponder respond = std::move(it->respond);
      const control::Enforcement enforcement = this->enforcement(it->grant, now_ms);
      it = awaiting_.erase(it);
      respond(enforcement);
    } else {
      ++it;
    }
  }
}

control::Delivery ApplianceHub::delivery(const Grant& grant) const {
  control::Delivery out;
  bool first = true;
  for (const PlannedRule& planned : planner_.plan(grant)) {
    const Feed& feed = feeds_[planned.appliance];
    const auto it = feed.counters.find({planned.rule.flow_id, planned.rule.dir});
    if (it == feed.counters.end()) {
      continue;
    }
    const Counters& c = it->second;
    // Rates and counts: the forward direction at the first appliance on the
    // path that reports it, where the flow is policed first.
    if (first && planned.rule.dir == Direction::Forward) {
      first = false;
      out.delivered_bps = c.rate_bps;
      out.passed_pkts = c.last.green_pkts + c.last.yellow_pkts;
      out.passed_bytes = passedBytes(c.last);
      out.policed_pkts = c.last.red_pkts;
    }
    if (c.last_packet_ms && (!out.last_seen_ms || *c.last_packet_ms > *out.last_seen_ms)) {
      out.last_seen_ms = c.last_packet_ms;
    }
  }
  return out;
}

std::vector<control::ApplianceStatus> ApplianceHub::status(uint64_t now_ms) const {
  std::vector<control::ApplianceStatus> out;
  for (const Feed& feed : feeds_) {
    control::ApplianceStatus s;
    s.name = feed.site->name;
    s.inside_network = feed.site->inside;
    s.outside_network = feed.site->outside;
    s.address = feed.address;
    s.version = feed.version;
    if (feed.last_seen_ms != 0) {
      s.last_heartbeat_age_ms = now_ms >= feed.last_seen_ms ? now_ms - feed.last_seen_ms : 0;
    }
    s.rules = feed.rules.size();
    s.seq = feed.seq;
    s.seq_acked = feed.on_epoch ? feed.acked : 0;
    s.rules_rejected = feed.rejected.size();
    for (const auto& [key, desired] : feed.rules) {
      if (enforces(feed, key)) {
        ++s.rules_installed;
      }
    }
    s.rules_pending = s.rules - s.rules_installed - s.rules_rejected;
    if (!isUp(feed, now_ms)) {
      s.state = control::ApplianceState::Down;
    } else if (!feed.on_epoch || feed.acked < feed.seq) {
      s.state = control::ApplianceState::Syncing;
    } else {
      s.state = control::ApplianceState::Up;
    }
    out.push_back(std::move(s));
  }
  return out;
}

size_t ApplianceHub::appliancesUp(uint64_t now_ms) const {
  return static_cast<size_t>(std::count_if(feeds_.begin(), feeds_.end(),
                                           [&](const Feed& feed) { return isUp(feed, now_ms); }));
}

std::vector<uint64_t> ApplianceHub::tick(uint64_t now_ms) {
  for (Feed& feed : feeds_) {
    if (feed.held && now_ms >= feed.held->deadline_ms) {
      answerHeld(feed, updatesAfter(feed, feed.acked));  // a heartbeat: no changes
    }
    if (feed.last_seen_ms != 0 && !isUp(feed, now_ms) && feed.held) {
      feed.held.reset();
    }
  }
  resolveAwaiting(now_ms, /*deadline_only=*/false);
  if (config_->idle_release_sec == 0 || now_ms - last_idle_check_ms_ < kIdleCheckIntervalMs) {
    return {};
  }
  last_idle_check_ms_ = now_ms;
  return idleFlows(now_ms);
}

std::vector<uint64_t> ApplianceHub::idleFlows(uint64_t now_ms) const {
  // A flow is idle when every appliance holding a rule of it is up and has
  // reported it, and none saw a packet of it (or, if none ever did, has held
  // it) for idle_release.
  struct Seen {
    bool known = true;
    uint64_t activity_ms = 0;
  };
  std::map<uint64_t, Seen> flows;
  const uint64_t idle_ms = uint64_t{config_->idle_release_sec} * 1000;
  for (const Feed& feed : feeds_) {
    const bool up = isUp(feed, now_ms) && feed.on_epoch;
    for (const auto& [key, desired] : feed.rules) {
      Seen& seen = flows[key.first];
      const auto c = feed.counters.find(key);
      if (!up || c == feed.counters.end()) {
        seen.known = false;
        continue;
      }
      seen.activity_ms = std::max(
          {seen.activity_ms, c->second.first_report_ms, c->second.last_packet_ms.value_or(0)});
    }
  }
  std::vector<uint64_t> idle;
  for (const auto& [flow_id, seen] : flows) {
    if (seen.known && now_ms - seen.activity_ms >= idle_ms) {
      idle.push_back(flow_id);
    }
  }
  return idle;
}

}  // namespace qos::manager
