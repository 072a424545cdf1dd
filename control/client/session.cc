#include "control/client/session.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "control/common/clock.h"
#include "control/common/random_id.h"
#include "control/protocol/error_codes.h"
#include "control/protocol/fields.h"
#include "control/protocol/message_types.h"

namespace qos::client {
namespace {

/** How long the session's thread sleeps at most between looks at its clock. */
constexpr int kMaxSleepMs = 100;

/** An error or denied reply as an Error of its kind. */
Error errorOf(const control::Reply& reply) {
  return makeError(control::errorCodeOfWire(reply.error.code),
                   reply.error.message + " (" + reply.error.code + ")");
}

std::string typeName(control::MessageType type) {
  return std::string(control::messageTypeName(type));
}

}  // namespace

/** The state a session's thread and its grants share. */
class SessionCore {
public:
  explicit SessionCore(SessionOptions options) : options_(std::move(options)) {
    if (!options_.steady_ms) {
      options_.steady_ms = steadyClockMs;
    }
    if (!options_.wall_ms) {
      options_.wall_ms = systemClockMs;
    }
    client_ = options_.context != nullptr ? control::RequestClient(*options_.context)
                                          : control::RequestClient();
  }

  Result<void> start() {
    const control::CurveClientKeys* keys = options_.curve ? &*options_.curve : nullptr;
    if (Result<void> r = client_.connect(options_.endpoint, options_.timeout_ms, keys); !r) {
      return r;
    }
    thread_ = std::thread([this] { loop(); });
    return {};
  }

  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) {
      thread_.join();
    }
  }

  /** Sends a request from the session's thread; waits for its reply. */
  Result<control::Reply> call(control::MessageType type, std::string body_json) {
    if (std::this_thread::get_id() == thread_.get_id()) {
      // From an on_lost callback: already on the session's thread.
      return client_.callEncoded(typeName(type), std::move(body_json));
    }
    auto task = std::make_shared<std::packaged_task<Result<control::Reply>()>>(
        [this, type, body = std::move(body_json)]() mutable {
          return client_.callEncoded(typeName(type), std::move(body));
        });
    std::future<Result<control::Reply>> reply = task->get_future();
    {
      std::lock_guard lock(mu_);
      if (stopping_) {
        return makeError(ErrorCode::Unavailable, "the session is closed");
      }
      tasks_.emplace_back([task] { (*task)(); });
    }
    cv_.notify_all();
    return reply.get();
  }

  void hold(uint64_t flow_id, uint64_t lease_ms, uint32_t asked_sec, LostCallback on_lost) {
    {
      std::lock_guard lock(mu_);
      keeper_.add(flow_id, lease_ms, options_.steady_ms());
      asked_sec_[flow_id] = asked_sec;
      if (on_lost) {
        on_lost_[flow_id] = std::move(on_lost);
      }
    }
    cv_.notify_all();
  }

  /** A local agent asked for a word at least every @p ms while grants are held. */
  void askedForHeartbeat(uint32_t ms) {
    std::lock_guard lock(mu_);
    heartbeat_ms_ = heartbeat_ms_ == 0 ? ms : std::min<uint64_t>(heartbeat_ms_, ms);
  }

  void forget(uint64_t flow_id) {
    std::lock_guard lock(mu_);
    keeper_.released(flow_id);
    asked_sec_.erase(flow_id);
    on_lost_.erase(flow_id);
  }

  GrantState state(uint64_t flow_id) const {
    std::lock_guard lock(mu_);
    return keeper_.state(flow_id);
  }

  std::string lostReason(uint64_t flow_id) const {
    std::lock_guard lock(mu_);
    return keeper_.lostReason(flow_id);
  }

  size_t held() const {
    std::lock_guard lock(mu_);
    return keeper_.held();
  }

  /** Releases at the manager every grant still held (a session that closes). */
  void releaseAll() {
    std::vector<uint64_t> flows;
    {
      std::lock_guard lock(mu_);
      flows = keeper_.heldFlows();
      for (uint64_t flow_id : flows) {
        keeper_.released(flow_id);
        asked_sec_.erase(flow_id);
        on_lost_.erase(flow_id);
      }
    }
    for (uint64_t flow_id : flows) {
      static_cast<void>(
          call(control::MessageType::Release, control::encodeObject(control::FlowRef{flow_id})));
    }
  }

  void wake() { cv_.notify_all(); }
  uint64_t wallMs() const { return options_.wall_ms(); }
  uint64_t steadyMs() const { return options_.steady_ms(); }

private:
  void loop() {
    std::unique_lock lock(mu_);
    while (true) {
      if (!tasks_.empty()) {
        std::function<void()> task = std::move(tasks_.front());
        tasks_.pop_front();
        lock.unlock();
        task();
        lock.lock();
        last_call_ms_ = options_.steady_ms();
        continue;
      }
      if (stopping_) {
        return;
      }
      const uint64_t now = options_.steady_ms();
      const std::vector<uint64_t> due = keeper_.due(now);
      std::vector<std::pair<uint64_t, LostCallback>> lost;
      for (uint64_t flow_id : keeper_.takeNewlyLost()) {
        if (auto it = on_lost_.find(flow_id); it != on_lost_.end()) {
          lost.emplace_back(flow_id, std::move(it->second));
          on_lost_.erase(it);
        }
      }
      if (!due.empty() || !lost.empty()) {
        std::vector<uint32_t> asked;
        asked.reserve(due.size());
        for (uint64_t flow_id : due) {
          asked.push_back(asked_sec_[flow_id]);
        }
        lock.unlock();
        for (auto& [flow_id, callback] : lost) {
          callback(flow_id, lostReason(flow_id));
        }
        for (size_t i = 0; i < due.size(); ++i) {
          refresh(due[i], asked[i]);
        }
        lock.lock();
        continue;
      }
      if (heartbeat_ms_ != 0 && keeper_.held() > 0 && now >= last_call_ms_ + heartbeat_ms_) {
        // A local agent takes a silent client for gone: say something.
        lock.unlock();
        static_cast<void>(client_.callEncoded(typeName(control::MessageType::Ping), "{}"));
        lock.lock();
        last_call_ms_ = options_.steady_ms();
        continue;
      }
      std::optional<uint64_t> next = keeper_.nextDueMs();
      if (heartbeat_ms_ != 0 && keeper_.held() > 0) {
        next = std::min(next.value_or(std::numeric_limits<uint64_t>::max()),
                        last_call_ms_ + heartbeat_ms_);
      }
      const uint64_t sleep_ms =
          next ? std::clamp<uint64_t>(*next > now ? *next - now : 0, 1, kMaxSleepMs) : kMaxSleepMs;
      cv_.wait_for(lock, std::chrono::milliseconds(sleep_ms));
    }
  }

  /** One refresh, on the session's thread, with the lock not held. */
  void refresh(uint64_t flow_id, uint32_t asked_sec) {
    Result<control::Reply> reply =
        client_.callEncoded(typeName(control::MessageType::Refresh),
                            control::encodeObject(control::RefreshRequest{flow_id, asked_sec}));
    std::optional<Error> failed;
    uint64_t lease_ms = 0;
    if (!reply) {
      failed = reply.error();
    } else if (reply->status != control::ReplyStatus::Ok) {
      failed = errorOf(*reply);
    } else {
      Result<control::RefreshReply> body = control::decodeObject<control::RefreshReply>(
          reply->body, control::Unknown::Ignore, "refresh reply");
      if (!body) {
        failed = body.error();
      } else {
        lease_ms = leaseMsOf(body->expires_at_ms, options_.wall_ms(), asked_sec);
      }
    }
    std::lock_guard lock(mu_);
    last_call_ms_ = options_.steady_ms();
    if (failed) {
      keeper_.refreshFailed(flow_id, *failed, options_.steady_ms());
    } else {
      keeper_.refreshed(flow_id, lease_ms, options_.steady_ms());
    }
  }

  SessionOptions options_;
  control::RequestClient client_;  ///< used by the session's thread only (after start())
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  GrantKeeper keeper_;
  std::map<uint64_t, uint32_t> asked_sec_;
  std::map<uint64_t, LostCallback> on_lost_;
  uint64_t heartbeat_ms_ = 0;  ///< 0: nobody asked for heartbeats
  uint64_t last_call_ms_ = 0;  ///< when the session last said something
  std::thread thread_;

  friend class Session;
};

HeldGrant::HeldGrant(std::shared_ptr<SessionCore> core, control::GrantReply reply)
    : core_(std::move(core)), reply_(std::move(reply)) {}

HeldGrant::~HeldGrant() {
  if (released_) {
    return;
  }
  try {
    static_cast<void>(release());
  } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor has nobody to tell
  }
}

GrantState HeldGrant::state() const {
  return released_ ? GrantState::Released : core_->state(flowId());
}

std::string HeldGrant::lostReason() const { return core_->lostReason(flowId()); }

Result<void> HeldGrant::markSocket(int fd) {
  if (released_) {
    return makeError(ErrorCode::Invalid, "flow " + std::to_string(flowId()) + " was released");
  }
  // A TCP socket is paced at the grant's rate as well.
  Result<SocketMark> mark =
      client::markSocket(fd, reply_.grant.dscp, reply_.grant.profile.rate_bps / 8);
  if (!mark) {
    return mark.error();
  }
  marks_.push_back(*mark);
  return {};
}

Result<void> HeldGrant::release() {
  if (released_) {
    return {};
  }
  released_ = true;
  for (const SocketMark& mark : marks_) {
    static_cast<void>(restoreSocket(mark));
  }
  marks_.clear();
  const bool was_held = core_->state(flowId()) == GrantState::Held;
  core_->forget(flowId());
  if (!was_held) {
    return {};  // Lost: the manager holds nothing to release.
  }
  Result<control::Reply> reply =
      core_->call(control::MessageType::Release, control::encodeObject(control::FlowRef{flowId()}));
  if (!reply) {
    return reply.error();
  }
  if (reply->status != control::ReplyStatus::Ok) {
    return errorOf(*reply);
  }
  return {};
}

Session::Session(std::shared_ptr<SessionCore> core) : core_(std::move(core)) {}

Result<std::unique_ptr<Session>> Session::open(SessionOptions options) {
  auto core = std::make_shared<SessionCore>(std::move(options));
  if (Result<void> r = core->start(); !r) {
    return r.error();
  }
  return std::unique_ptr<Session>(new Session(std::move(core)));
}

Session::~Session() {
  core_->releaseAll();
  core_->stop();
}

Result<Outcome> Session::request(control::AdmissionRequest request, LostCallback on_lost) {
  if (request.request_id.empty()) {
    request.request_id = randomHexId();
  }
  const uint32_t asked_sec = request.lease_sec;
  Result<control::Reply> reply =
      core_->call(control::MessageType::Provision, control::encodeObject(request));
  if (!reply) {
    return reply.error();
  }
  if (reply->status == control::ReplyStatus::Denied) {
    Result<control::Denial> denial =
        control::decodeObject<control::Denial>(reply->body, control::Unknown::Ignore, "denial");
    if (!denial) {
      return denial.error();
    }
    return Outcome{std::move(*denial)};
  }
  if (reply->status != control::ReplyStatus::Ok) {
    return errorOf(*reply);
  }
  Result<control::GrantReply> granted = control::decodeObject<control::GrantReply>(
      reply->body, control::Unknown::Ignore, "grant reply");
  if (!granted) {
    return granted.error();
  }
  if (granted->heartbeat_ms && *granted->heartbeat_ms > 0) {
    core_->askedForHeartbeat(*granted->heartbeat_ms);
  }
  const uint64_t lease_ms = leaseMsOf(granted->grant.expires_at_ms, core_->wallMs(), asked_sec);
  core_->hold(granted->grant.flow_id, lease_ms, asked_sec, std::move(on_lost));
  return Outcome{std::make_shared<HeldGrant>(core_, std::move(*granted))};
}

size_t Session::held() const { return core_->held(); }

void Session::wake() { core_->wake(); }

}  // namespace qos::client
