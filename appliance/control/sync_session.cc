#include "appliance/control/sync_session.h"

#include <map>
#include <utility>

namespace qos::appliance {
namespace {

using control::ChangeOp;

constexpr uint64_t kBitsPerByte = 8;

OwnedRule ownedRuleOf(const control::ApplianceRule& rule) {
  return {RuleId::manager(rule.flow_id, rule.dir), flowRuleOf(rule)};
}

}  // namespace

FlowRule flowRuleOf(const control::ApplianceRule& rule) {
  FlowRule out;
  out.src = rule.flow.src;
  out.dst = rule.flow.dst;
  out.protocol = rule.flow.protocol;
  out.src_port = rule.flow.src_port;
  out.dst_port = rule.flow.dst_port;
  out.dscp = rule.dscp;
  MeterConfig meter;
  meter.mode = MeterMode::Srtcm;
  // rte_meter counts bytes: the committed rate rounded up to whole bytes.
  meter.cir_bytes_per_sec =
      rule.meter.cir_bps / kBitsPerByte + (rule.meter.cir_bps % kBitsPerByte != 0 ? 1 : 0);
  meter.cbs_bytes = rule.meter.cbs_bytes;
  meter.ebs_bytes = rule.meter.ebs_bytes;
  meter.yellow = PacketAction{PacketAction::Kind::Pass, 0};
  meter.red = PacketAction{PacketAction::Kind::Drop, 0};
  out.meter = meter;
  return out;
}

SyncSession::SyncSession(std::string name, std::string instance, std::string version,
                         std::vector<control::PortPairInfo> pairs)
    : name_(std::move(name)),
      instance_(std::move(instance)),
      version_(std::move(version)),
      pairs_(std::move(pairs)) {}

control::SyncRequest SyncSession::nextRequest(std::vector<control::RuleCounters> counters,
                                              bool more) {
  control::SyncRequest request;
  request.name = name_;
  request.instance = instance_;
  request.version = version_;
  request.pairs = pairs_;
  if (snapshot_) {
    request.epoch = snapshot_->epoch;
    request.in_snapshot = true;
    request.snapshot_seq = snapshot_->seq;
    if (!snapshot_->rules.empty()) {
      request.snapshot_after_flow = snapshot_->rules.back().id.flow_id;
      request.snapshot_after_dir = snapshot_->rules.back().id.dir;
    }
  } else {
    request.epoch = epoch_;
    request.applied = applied_;
  }
  request.counters = std::move(counters);
  request.more = more;
  // Rejections go with the acknowledgement of the changes that held them.
  in_flight_.insert(in_flight_.end(), rejected_.begin(), rejected_.end());
  rejected_.clear();
  const size_t n = std::min(in_flight_.size(), kMaxRejectionsPerSync);
  request.rejected.assign(in_flight_.begin(), in_flight_.begin() + static_cast<ptrdiff_t>(n));
  rejected_.assign(in_flight_.begin() + static_cast<ptrdiff_t>(n), in_flight_.end());
  in_flight_.resize(n);
  return request;
}

void SyncSession::onLost() {
  rejected_.insert(rejected_.begin(), in_flight_.begin(), in_flight_.end());
  in_flight_.clear();
}

std::string SyncSession::onReply(const control::SyncReply& reply, RuleTarget& target) {
  in_flight_.clear();
  if (reply.heartbeat_ms != 0) {
    heartbeat_ms_ = reply.heartbeat_ms;
  }
  if (reply.kind == control::SyncKind::Snapshot) {
    // A page continues the snapshot being gathered if it is of the same
    // snapshot and starts after its last rule; anything else starts anew.
    const bool continues = snapshot_ && snapshot_->epoch == reply.epoch &&
                           snapshot_->seq == reply.snapshot_seq && !snapshot_->rules.empty() &&
                           (reply.rules.empty() || snapshot_->rules.back().id <
                                                       RuleId::manager(reply.rules.front().flow_id,
                                                                       reply.rules.front().dir));
    if (!continues) {
      snapshot_ = Snapshot{reply.epoch, reply.snapshot_seq, {}};
    }
    for (const control::ApplianceRule& rule : reply.rules) {
      snapshot_->rules.push_back(ownedRuleOf(rule));
    }
    if (!reply.last_page) {
      return "";
    }
    Snapshot done = std::move(*snapshot_);
    snapshot_.reset();
    return reconcile(std::move(done), target);
  }
  if (snapshot_ || reply.epoch != epoch_) {
    // Changes of another session than ours: ask again; the manager will see
    // where we are and send a snapshot.
    snapshot_.reset();
    return "";
  }
  std::string said = applyChanges(reply.changes, target);
  applied_ = reply.to;
  return said;
}

std::string SyncSession::reconcile(Snapshot snapshot, RuleTarget& target) {
  RuleChanges all{RuleOrigin::Manager, /*replace_all=*/true, std::move(snapshot.rules), {}};
  RuleSummary done;
  size_t n_rejected = 0;
  if (Result<RuleSummary> r = target.apply(all)) {
    done = *r;
  } else {
    // What the snapshot does not hold goes first, then its rules one by one.
    std::map<RuleId, bool> wanted;
    for (const OwnedRule& rule : all.put) {
      wanted.emplace(rule.id, true);
    }
    RuleChanges changes{RuleOrigin::Manager, false, std::move(all.put), {}};
    for (const RuleId& id : target.managerRules()) {
      if (wanted.count(id) == 0) {
        changes.remove.push_back(id);
      }
    }
    n_rejected = applyOrSplit(changes, target, done);
  }
  epoch_ = std::move(snapshot.epoch);
  applied_ = snapshot.seq;
  return "in sync with the manager (epoch " + epoch_ + ", change " + std::to_string(applied_) +
         "): " + std::to_string(done.added) + " manager rule(s) added, " +
         std::to_string(done.removed) + " removed, " + std::to_string(done.changed) + " changed, " +
         std::to_string(done.unchanged) + " unchanged" +
         (n_rejected != 0 ? ", " + std::to_string(n_rejected) + " rejected" : "");
}

std::string SyncSession::applyChanges(const std::vector<control::RuleChange>& changes,
                                      RuleTarget& target) {
  // The last change of each rule decides (changes set states).
  std::map<RuleId, const control::RuleChange*> last;
  for (const control::RuleChange& change : changes) {
    if (change.seq > applied_) {
      last[RuleId::manager(change.rule.flow_id, change.rule.dir)] = &change;
    }
  }
  if (last.empty()) {
    return "";
  }
  RuleChanges set{RuleOrigin::Manager, false, {}, {}};
  for (const auto& [id, change] : last) {
    if (change->op == ChangeOp::Add) {
      set.put.push_back({id, flowRuleOf(change->rule)});
    } else {
      set.remove.push_back(id);
    }
  }
  RuleSummary done;
  const size_t n_rejected = applyOrSplit(set, target, done);
  if (n_rejected == 0) {
    return "";
  }
  return std::to_string(n_rejected) + " manager rule(s) rejected (qosctl appliances shows them)";
}

size_t SyncSession::applyOrSplit(const RuleChanges& changes, RuleTarget& target,
                                 RuleSummary& done) {
  if (Result<RuleSummary> all = target.apply(changes)) {
    done += *all;
    return 0;
  }
  if (!changes.remove.empty()) {
    // Removals never fail one by one: a rule not held is no error.
    RuleChanges removals{changes.origin, false, {}, changes.remove};
    if (Result<RuleSummary> removed = target.apply(removals)) {
      done += *removed;
    }
  }
  size_t n_rejected = 0;
  for (const OwnedRule& rule : changes.put) {
    RuleChanges one{changes.origin, false, {rule}, {}};
    if (Result<RuleSummary> r = target.apply(one)) {
      done += *r;
    } else {
      rejected_.push_back({rule.id.flow_id, rule.id.dir, r.error().message});
      ++n_rejected;
    }
  }
  return n_rejected;
}

}  // namespace qos::appliance
