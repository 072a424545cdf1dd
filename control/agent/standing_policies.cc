#include "control/agent/standing_policies.h"

#include <algorithm>
#include <utility>

#include "control/common/log.h"

namespace qos::agent {
namespace {

std::string grantText(const control::Grant& grant) {
  return "flow " + std::to_string(grant.flow_id) + " (" + grant.profile.class_name + ", DSCP " +
         std::to_string(grant.dscp) + ", " + std::to_string(grant.profile.rate_bps) + " bit/s)";
}

}  // namespace

PolicyHolder::PolicyHolder(Options options)
    : options_(std::move(options)),
      jitter_(options_.seed != 0 ? options_.seed : std::random_device{}()) {}

PolicyHolder::~PolicyHolder() { releaseAll(); }

std::vector<std::string> PolicyHolder::set(std::vector<StandingPolicy> policies) {
  std::vector<std::string> changes;
  std::vector<Kept> next;
  next.reserve(policies.size());
  for (StandingPolicy& policy : policies) {
    auto same =
        std::find_if(kept_.begin(), kept_.end(), [&](const Kept& k) { return k.policy == policy; });
    if (same != kept_.end()) {
      next.push_back(std::move(*same));
      kept_.erase(same);
      continue;
    }
    changes.push_back("policy " + policy.name + ": added");
    Kept kept;
    kept.policy = std::move(policy);
    next.push_back(std::move(kept));
  }
  for (Kept& gone : kept_) {  // removed, or changed (its new form is in next)
    const bool changed = std::any_of(
        next.begin(), next.end(), [&](const Kept& k) { return k.policy.name == gone.policy.name; });
    changes.push_back(
        "policy " + gone.policy.name + (changed ? ": changed" : ": removed") +
        (gone.grant ? ", released flow " + std::to_string(gone.grant->flowId()) : std::string()));
    drop(gone);
  }
  kept_ = std::move(next);
  stopped_ = false;
  return changes;
}

void PolicyHolder::tick() {
  if (stopped_) {
    return;
  }
  const uint64_t now = options_.steady_ms();
  // Each ask waits for the manager (request_timeout at most) while local
  // clients wait for the agent: a few asks per tick, and none more once one
  // found the manager away.
  unsigned asked = 0;
  std::string away_reason;
  for (Kept& kept : kept_) {
    if (kept.state == PolicyState::Held) {
      if (kept.grant->state() == client::GrantState::Held) {
        continue;
      }
      const std::string why = kept.grant->lostReason();
      log::warning("policy " + kept.policy.name + ": lost flow " +
                   std::to_string(kept.grant->flowId()) + ": " + why + "; asking again");
      drop(kept);
      retryLater(kept, PolicyState::Lost, "lost: " + why, now);
      continue;
    }
    if (now < kept.next_try_ms) {
      continue;
    }
    if (!away_reason.empty()) {  // one ask just found the manager away: the others would too
      retryLater(kept, PolicyState::Unreachable, away_reason, now);
      continue;
    }
    if (asked == kMaxAsksPerTick) {
      continue;  // still due: asked at the next tick, after the agent has served its clients
    }
    ask(kept);
    ++asked;
    if (kept.state == PolicyState::Unreachable) {
      away_reason = kept.reason;
    }
  }
}

void PolicyHolder::ask(Kept& kept) {
  ++kept.attempts;
  Result<client::Outcome> outcome = options_.ask(kept.policy.request);
  const uint64_t after = options_.steady_ms();
  if (!outcome) {
    const Error& e = outcome.error();
    if (e.code == ErrorCode::Unavailable || e.code == ErrorCode::Internal) {
      retryLater(kept, PolicyState::Unreachable, e.message, after);
    } else {
      // The manager will not take this request as it is (an unknown
      // application, a flow this host may not ask for): its operator has
      // to change something, so ask rarely.
      retryLater(kept, PolicyState::Refused, e.message, after, true);
    }
    return;
  }
  if (const auto* denial = std::get_if<control::Denial>(&*outcome)) {
    // No room now frees as other flows end; an unknown application or a
    // flow no network carries waits for the manager's operator.
    const bool for_now = denial->reason == control::DenyReason::NoCapacity ||
                         denial->reason == control::DenyReason::ClassUnavailable;
    retryLater(kept, for_now ? PolicyState::Denied : PolicyState::Refused,
               std::string(control::denyReasonName(denial->reason)) + ": " + denial->message, after,
               !for_now);
    return;
  }
  kept.grant = std::move(std::get<std::shared_ptr<client::HeldGrant>>(*outcome));
  kept.state = PolicyState::Held;
  kept.retry_ms = 0;
  kept.attempts = 0;
  kept.reason.clear();
  log::info("policy " + kept.policy.name + ": granted " + grantText(kept.grant->grant()));
  if (options_.watch) {
    options_.watch(kept.grant->grant(), true);
  }
}

void PolicyHolder::retryLater(Kept& kept, PolicyState state, std::string reason, uint64_t now_ms,
                              bool at_max) {
  const bool news = kept.state != state || kept.reason != reason;
  if (kept.state != state) {
    kept.retry_ms = 0;  // a new kind of failure starts its backoff over
  }
  kept.state = state;
  kept.retry_ms = at_max               ? kMaxRetryMs
                  : kept.retry_ms == 0 ? kFirstRetryMs
                                       : std::min(kept.retry_ms * 2, kMaxRetryMs);
  // ±20 %: hundreds of hosts that lost the manager together do not come
  // back together.
  std::uniform_int_distribution<uint64_t> spread(kept.retry_ms * 8 / 10, kept.retry_ms * 12 / 10);
  kept.next_try_ms = now_ms + spread(jitter_);
  kept.reason = std::move(reason);
  if (news) {  // once per state and reason, not once per retry
    log::warning("policy " + kept.policy.name + ": " + kept.reason + "; asking again in " +
                 std::to_string((kept.next_try_ms - now_ms + 500) / 1000) + " s (and on, " +
                 "backing off to " + std::to_string(kMaxRetryMs / 1000) + " s)");
  }
}

void PolicyHolder::drop(Kept& kept) {
  if (!kept.grant) {
    return;
  }
  std::shared_ptr<client::HeldGrant> grant = std::move(kept.grant);
  if (options_.watch) {
    options_.watch(grant->grant(), false);
  }
  if (grant->state() == client::GrantState::Held) {
    if (Result<void> r = grant->release(); !r) {
      log::warning("policy " + kept.policy.name + ": release of flow " +
                   std::to_string(grant->flowId()) + " not confirmed (" + r.error().message +
                   "); it lapses with its lease");
    }
  }
}

std::optional<uint64_t> PolicyHolder::nextDueMs() const {
  std::optional<uint64_t> next;
  if (stopped_) {
    return next;
  }
  for (const Kept& kept : kept_) {
    if (kept.state != PolicyState::Held) {
      next = std::min(next.value_or(kept.next_try_ms), kept.next_try_ms);
    }
  }
  return next;
}

std::vector<PolicyStatus> PolicyHolder::status() const {
  const uint64_t now = options_.steady_ms();
  std::vector<PolicyStatus> out;
  out.reserve(kept_.size());
  for (const Kept& kept : kept_) {
    PolicyStatus s;
    s.name = kept.policy.name;
    s.application = kept.policy.request.application;
    s.flow = kept.policy.request.flow;
    s.bidirectional = kept.policy.request.bidirectional;
    s.state = kept.state;
    s.attempts = kept.attempts;
    s.reason = kept.reason;
    if (kept.grant && kept.state == PolicyState::Held) {
      const control::Grant& g = kept.grant->grant();
      s.flow_id = g.flow_id;
      s.application = g.application;
      s.dscp = g.dscp;
      s.reverse_dscp = g.reverse_dscp;
      s.class_name = g.profile.class_name;
      s.rate_bps = g.profile.rate_bps;
      s.burst_bytes = g.profile.burst_bytes;
    } else if (!stopped_) {
      s.next_try_in_ms = kept.next_try_ms > now ? kept.next_try_ms - now : 0;
    }
    out.push_back(std::move(s));
  }
  return out;
}

size_t PolicyHolder::held() const {
  return static_cast<size_t>(std::count_if(
      kept_.begin(), kept_.end(), [](const Kept& k) { return k.state == PolicyState::Held; }));
}

void PolicyHolder::releaseAll() {
  for (Kept& kept : kept_) {
    drop(kept);
    kept.state = PolicyState::Asking;
  }
  stopped_ = true;
}

}  // namespace qos::agent
