#include "appliance/control/manager_link.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>

#include "control/common/log.h"
#include "control/protocol/fields.h"
#include "control/protocol/message_types.h"

namespace qos::appliance {
namespace {

constexpr uint32_t kFirstBackoffMs = 500;
constexpr uint64_t kReplyTimeoutSlackMs = 1000;
constexpr uint64_t kHeartbeatsBeforeLost = 3;

}  // namespace

uint64_t ManagerLink::steadyClockMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

ManagerLink::ManagerLink(zmq::context_t* context, ManagerLinkOptions options, SyncSession session,
                         RuleTarget& target, CounterSource* counters, Clock clock)
    : options_(std::move(options)),
      session_(std::move(session)),
      target_(target),
      counters_(counters),
      clock_(std::move(clock)),
      client_(context != nullptr ? control::RequestClient(*context) : control::RequestClient()) {}

Result<void> ManagerLink::start() {
  const int timeout_ms = static_cast<int>(replyTimeoutMs());
  const control::CurveClientKeys* curve = options_.curve ? &*options_.curve : nullptr;
  if (Result<void> r = client_.connect(options_.endpoint, timeout_ms, curve); !r) {
    return r;
  }
  idle_since_ms_ = clock_();
  log::info("connecting to the manager at " + options_.endpoint +
            (curve != nullptr ? " (CURVE)" : " (no CURVE: local manager)"));
  return {};
}

uint64_t ManagerLink::replyTimeoutMs() const {
  return kHeartbeatsBeforeLost * session_.heartbeatMs() + kReplyTimeoutSlackMs;
}

void ManagerLink::poll(int wait_ms) {
  uint64_t now = clock_();
  if (state_ == State::Backoff) {
    if (now < retry_at_ms_) {
      const uint64_t nap = std::min<uint64_t>(retry_at_ms_ - now, static_cast<uint64_t>(wait_ms));
      std::this_thread::sleep_for(std::chrono::milliseconds(nap));
      return;
    }
    state_ = State::Idle;
    idle_since_ms_ = now;
  }
  if (state_ == State::Idle) {
    sendNext(now);
    if (state_ == State::Idle) {
      // No connection yet: wait a little rather than spin.
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
      return;
    }
  }
  if (state_ != State::Waiting) {
    return;
  }
  Result<std::optional<control::Reply>> reply = client_.receive(in_flight_id_, wait_ms);
  now = clock_();
  if (!reply) {
    lose(reply.error().message, now, reply.error().code == ErrorCode::Unauthorized);
    return;
  }
  if (!*reply) {
    if (now - sent_at_ms_ > replyTimeoutMs()) {
      lose("no reply for " + std::to_string(now - sent_at_ms_) + " ms", now, false);
    }
    return;
  }
  takeReply(**reply, now);
  if (state_ == State::Idle) {
    sendNext(now);  // the next sync at once: it is the heartbeat and the long-poll
  }
}

void ManagerLink::sendNext(uint64_t now_ms) {
  bool more = false;
  std::vector<control::RuleCounters> counters;
  if (counters_ != nullptr && connected_ && (counters_round_open_ || now_ms >= next_counters_ms_)) {
    counters = counters_->takeCounters(kMaxCountersPerSync, more);
    counters_round_open_ = more;
    if (!more) {
      next_counters_ms_ = now_ms + kCounterIntervalMs;
    }
  }
  const control::SyncRequest request = session_.nextRequest(counters, more);
  Result<std::string> sent =
      client_.send(std::string(control::messageTypeName(control::MessageType::Sync)),
                   control::encodeObject(request));
  if (!sent) {
    session_.onLost();
    if (counters_ != nullptr) {
      counters_->unreport(counters);
    }
    if (sent.error().code == ErrorCode::Unavailable &&
        now_ms - idle_since_ms_ <= replyTimeoutMs()) {
      return;  // still connecting
    }
    lose(sent.error().message, now_ms, sent.error().code == ErrorCode::Unauthorized);
    return;
  }
  in_flight_id_ = std::move(*sent);
  in_flight_counters_ = std::move(counters);
  sent_at_ms_ = now_ms;
  state_ = State::Waiting;
}

void ManagerLink::takeReply(const control::Reply& reply, uint64_t now_ms) {
  state_ = State::Idle;
  idle_since_ms_ = now_ms;
  in_flight_counters_.clear();
  if (reply.status != control::ReplyStatus::Ok) {
    // The manager refused the sync itself: not an appliance it knows, or
    // not this key's name.  Said once, retried slowly.
    lose("the manager refused the sync: " + reply.error.message + " (" + reply.error.code + ")",
         now_ms, true);
    return;
  }
  Result<control::SyncReply> body =
      control::decodeObject<control::SyncReply>(reply.body, control::Unknown::Ignore, "sync reply");
  if (!body) {
    lose("an unreadable sync reply: " + body.error().message, now_ms, false);
    return;
  }
  ++replies_;
  if (!connected_) {
    connected_ = true;
    backoff_ms_ = 0;
    last_problem_.clear();
    log::info("connected to the manager at " + options_.endpoint + " (epoch " + body->epoch + ")");
  }
  const std::string said = session_.onReply(*body, target_);
  if (!said.empty()) {
    log::info(said);
  }
}

void ManagerLink::lose(const std::string& why, uint64_t now_ms, bool longest_backoff) {
  session_.onLost();
  if (counters_ != nullptr) {
    counters_->unreport(in_flight_counters_);
  }
  in_flight_counters_.clear();
  client_.reset();
  backoff_ms_ = longest_backoff ? options_.max_backoff_ms
                                : std::min(options_.max_backoff_ms,
                                           backoff_ms_ == 0 ? kFirstBackoffMs : backoff_ms_ * 2);
  retry_at_ms_ = now_ms + backoff_ms_;
  state_ = State::Backoff;
  if (connected_ || why != last_problem_) {
    log::warning("manager at " + options_.endpoint + ": " + why +
                 "; keeping the rules as they are, retrying in " + std::to_string(backoff_ms_) +
                 " ms");
    last_problem_ = why;
  }
  connected_ = false;
}

}  // namespace qos::appliance
