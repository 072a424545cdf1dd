#include "manager/service/request_server.h"

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <zmq.hpp>

#include "control/common/log.h"
#include "control/protocol/envelope.h"
#include "control/protocol/flat_request.h"
#include "control/protocol/message_types.h"
#include "manager/appliances/appliance_hub.h"
#include "manager/service/appliance_handlers.h"
#include "manager/service/bad_message_log.h"
#include "manager/service/commit_pipeline.h"
#include "manager/service/flow_handlers.h"
#include "manager/service/message_registry.h"
#include "manager/service/router_endpoint.h"
#include "manager/service/server_metrics.h"

namespace qos::manager {

uint64_t systemClockMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

const char* flowEventName(FlowEvent::Kind kind) {
  switch (kind) {
    case FlowEvent::Kind::Granted:
      return "granted";
    case FlowEvent::Kind::Released:
      return "released";
    case FlowEvent::Kind::Expired:
      return "expired";
    case FlowEvent::Kind::Idle:
      return "idle";
  }
  return "unknown";
}

namespace {

constexpr int kPollTimeoutMs = 100;
constexpr uint64_t kExpiryIntervalMs = 100;
// How often the appliances' status is handed to the metrics (a scrape reads the last).
constexpr uint64_t kStatusIntervalMs = 1000;

}  // namespace

struct RequestServer::Impl {
  std::atomic<const ManagerConfig*> config;
  AdmissionEngine& engine;
  ReservationStore* store;
  ServerMetrics* metrics;
  Clock clock;
  std::unique_ptr<zmq::context_t> own_context;  ///< when none was given
  zmq::context_t& context;
  RouterEndpoint endpoint{context};
  bool authenticated = false;  ///< CURVE: peers carry names from their keys
  ApplianceHub hub;
  const ManagerConfig* hub_config;  ///< the config the hub plans with
  ServiceContext service;
  MessageRegistry registry;
  CommitPipeline pipeline;
  std::vector<FlowEventSubscriber> subscribers;
  BadMessageLog bad_log;
  uint64_t last_expiry_ms = 0;
  uint64_t last_status_ms = 0;  ///< when the appliances' status went to the metrics
  control::FlatRequest flat;    ///< reused by every message, so it keeps its capacity
  std::string reply_text;       ///< likewise, for every reply

  Impl(const ManagerConfig& c, AdmissionEngine& e, ReservationStore* s, ServerMetrics* m, Clock k,
       zmq::context_t* ctx)
      : config(&c),
        engine(e),
        store(s),
        metrics(m),
        clock(std::move(k)),
        own_context(ctx == nullptr ? std::make_unique<zmq::context_t>(1) : nullptr),
        context(ctx != nullptr ? *ctx : *own_context),
        hub(c),
        hub_config(&c),
        service{.engine = e, .store = s, .metrics = m, .config = config, .hub = &hub},
        pipeline(s, e, m, [this](Batch& batch) { deliver(batch); }) {
    registerFlowHandlers(registry, service);
    registerApplianceHandlers(registry, service, authenticated,
                              [this](Call& call) { return syncResponder(call); });
    hub.load(engine.flows());
  }

  /** Sends the reply of a sync when the hub answers it, now or later. */
  ApplianceHub::SyncResponder syncResponder(Call& call) {
    auto identity = std::make_shared<zmq::message_t>(std::move(call.out.identity));
    return [this, identity, id = call.request_id](const control::SyncReply& body) {
      control::Reply reply;
      reply.id = id;
      reply.body_json = control::encodeObject(body);
      send(*identity, reply);
    };
  }

  void count(std::string_view type, const control::Reply& reply) {
    if (metrics != nullptr) {
      metrics->countRequest(type, reply.status);
    }
  }

  void send(const zmq::message_t& identity, const control::Reply& reply) {
    control::encodeReply(reply, reply_text);
    if (Result<void> sent = endpoint.send(identity, reply_text); !sent) {
      bad_log.warn(sent.error().message, clock());
    }
  }

  void sendReply(Outgoing& out) {
    if (out.grant_reply) {
      out.reply.body_json = control::encodeObject(*out.grant_reply);
    }
    send(out.identity, out.reply);
  }

  /**
   * A grant reply: with the appliances of its path that enforce it, once
   * those that are up do (or enforce_wait passed).
   */
  void sendGrantReply(Outgoing& out) {
    if (!hub.hasAppliances()) {
      sendReply(out);
      return;
    }
    const uint64_t now = clock();
    const uint32_t wait_ms = config.load()->enforce_wait_ms;
    if (wait_ms != 0 && hub.awaitsEnforcement(out.grant_reply->grant, now)) {
      auto held = std::make_shared<Outgoing>(std::move(out));
      hub.awaitEnforcement(held->grant_reply->grant, now, now + wait_ms,
                           [this, held](const control::Enforcement& enforcement) {
                             held->grant_reply->enforcement = enforcement;
                             sendReply(*held);
                           });
      return;
    }
    out.grant_reply->enforcement = hub.enforcement(out.grant_reply->grant, now);
    sendReply(out);
  }

  /** A durable batch: its events to the hub and every subscriber, then its replies. */
  void deliver(Batch& batch) {
    if (!batch.events.empty()) {
      hub.publish(batch.events);
      for (const FlowEventSubscriber& subscriber : subscribers) {
        subscriber(batch.events);
      }
    }
    for (Outgoing& out : batch.replies) {
      if (out.grant_reply) {
        sendGrantReply(out);
      } else {
        sendReply(out);
      }
    }
  }

  void answer(Outgoing&& out) {
    if (out.deferred) {
      return;
    }
    if (out.immediate) {
      sendReply(out);
      return;
    }
    pipeline.next().replies.push_back(std::move(out));
  }

  /** The hub's timers; flows idle for idle_release are released with the next batch. */
  void tickAppliances() {
    const ManagerConfig* current = config.load();
    if (current != hub_config) {
      hub.reconfigure(*current, engine.flows());
      hub_config = current;
    }
    const uint64_t now = clock();
    if (metrics != nullptr && hub.hasAppliances() && now - last_status_ms >= kStatusIntervalMs) {
      last_status_ms = now;
      metrics->setAppliances(hub.status(now));
    }
    for (const uint64_t flow_id : hub.tick(clock())) {
      std::optional<Grant> released = engine.release(flow_id);
      if (!released) {
        continue;
      }
      log::info("flow " + std::to_string(flow_id) + " released: no appliance saw it for " +
                std::to_string(current->idle_release_sec) + " s");
      if (store != nullptr) {
        store->stageDelete(flow_id);
      }
      if (metrics != nullptr) {
        metrics->countRelease();
      }
      pipeline.next().events.push_back({FlowEvent::Kind::Idle, std::move(*released)});
    }
  }

  void refuse(Incoming& in, std::string code, std::string message) {
    Outgoing out{.identity = std::move(in.identity)};
    setError(out.reply, std::move(code), std::move(message));
    count("invalid", out.reply);
    answer(std::move(out));
  }

  // Reads and answers one message, if any is waiting.
  bool receiveOne() {
    std::optional<Incoming> in = endpoint.receive();
    if (!in) {
      return false;
    }
    const uint64_t now = clock();
    if (in->framing != Incoming::Framing::Ok) {
      bad_log.warn("message with " + std::to_string(in->n_frames) +
                       " frames (expected routing id, empty delimiter, payload)",
                   now);
      if (in->framing == Incoming::Framing::Malformed) {
        refuse(*in, "bad_envelope", "expected one payload frame after an empty delimiter");
      }
      return true;
    }
    Peer peer;
    peer.address = std::move(in->address);
    if (authenticated) {
      // Identity comes from the key (the ZAP handler's User-Id), never from
      // the message.  A connection without one was not authenticated: the
      // ZAP handler is not running, and nobody gets in.
      const ManagerConfig& current = *config.load();
      const auto known = current.security.role_by_name.find(in->user_id);
      if (in->user_id.empty() || known == current.security.role_by_name.end()) {
        bad_log.warn(std::string("message from ") +
                         (in->user_id.empty() ? "an unauthenticated" : "an unknown") + " peer at " +
                         peer.address + " refused",
                     now);
        refuse(*in, "not_authorized", "this key is not a configured [[peer]]");
        return true;
      }
      peer.name = in->user_id;
      peer.role = known->second;
    }
    const std::string_view payload = in->payloadView();
    Outgoing out{.identity = std::move(in->identity)};
    Batch& batch = pipeline.next();

    // The fast path: a flat body of a known type (provision, release, ...).
    if (control::decodeFlatRequest(payload, flat)) {
      if (const std::optional<control::MessageType> type = control::messageTypeOf(flat.type)) {
        out.reply.id = flat.id;
        Call call{flat.id, peer, now, out, batch};
        if (registry.dispatchFlat(*type, flat, call)) {
          count(flat.type, out.reply);
          answer(std::move(out));
          return true;
        }
      }
    }

    Result<control::Request> request = control::decodeRequest(payload);
    if (!request) {
      control::Reply reply = control::decodeFailureReply(payload, request.error());
      bad_log.warn("refused message (" + std::to_string(payload.size()) +
                       " bytes): " + request.error().message,
                   now);
      count("invalid", reply);
      out.reply = std::move(reply);
      answer(std::move(out));
      return true;
    }
    out.reply = control::Reply{};
    out.reply.id = request->id;
    const std::optional<control::MessageType> type = control::messageTypeOf(request->type);
    if (!type) {
      std::string known;
      for (const control::MessageTypeInfo& info : control::kMessageTypes) {
        known += (known.empty() ? "" : ", ") + std::string(info.name);
      }
      setError(out.reply, "unknown_type",
               "unknown message type '" + request->type + "'; known: " + known);
    } else {
      Call call{request->id, peer, now, out, batch};
      registry.dispatch(*type, request->body, call);
    }
    count(request->type, out.reply);
    answer(std::move(out));
    return true;
  }

  void expireLeases() {
    const uint64_t now = clock();
    if (now - last_expiry_ms < kExpiryIntervalMs) {
      return;
    }
    last_expiry_ms = now;
    std::vector<Grant> lapsed = engine.expire(now);
    if (lapsed.empty()) {
      return;
    }
    for (Grant& grant : lapsed) {
      if (store != nullptr) {
        store->stageDelete(grant.flow_id);  // written with the next batch
      }
      pipeline.next().events.push_back({FlowEvent::Kind::Expired, std::move(grant)});
    }
    if (metrics != nullptr) {
      metrics->countExpired(lapsed.size());
    }
    log::debug(std::to_string(lapsed.size()) + " lease(s) lapsed");
  }
};

RequestServer::RequestServer(const ManagerConfig& config, AdmissionEngine& engine,
                             ReservationStore* store, ServerMetrics* metrics, Clock clock,
                             zmq::context_t* context)
    : impl_(std::make_unique<Impl>(config, engine, store, metrics, std::move(clock), context)) {}

RequestServer::~RequestServer() = default;

Result<void> RequestServer::bind() {
  const SecurityConfig& security = impl_->config.load()->security;
  impl_->authenticated = security.curve;
  return impl_->endpoint.bind(impl_->config.load()->listen, [&security](zmq::socket_t& socket) {
    if (security.curve) {
      socket.set(zmq::sockopt::curve_server, true);
      socket.set(zmq::sockopt::curve_secretkey, security.secret_z85);
      socket.set(zmq::sockopt::zap_domain, std::string(kZapDomain));
    }
  });
}

void RequestServer::setConfig(const ManagerConfig& config) { impl_->config.store(&config); }

void RequestServer::subscribe(FlowEventSubscriber subscriber) {
  impl_->subscribers.push_back(std::move(subscriber));
}

void RequestServer::run(const std::atomic<bool>& stop) {
  Impl& impl = *impl_;
  while (!stop.load()) {
    // Stop reading while the batch is full: the peers' queues and high-water
    // marks hold the rest.
    const int ready_fd = impl.pipeline.readyFd();
    std::array<zmq::pollitem_t, 2> items{{
        {impl.endpoint.socket().handle(), 0,
         static_cast<short>(impl.pipeline.hasRoom() ? ZMQ_POLLIN : 0), 0},
        {nullptr, ready_fd, ZMQ_POLLIN, 0},
    }};
    try {
      zmq::poll(items.data(), ready_fd >= 0 ? 2 : 1, std::chrono::milliseconds(kPollTimeoutMs));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) {
        log::error(std::string("poll failed: ") + e.what());
      }
      continue;
    }
    impl.pipeline.collect();
    try {
      while (impl.pipeline.hasRoom() && impl.receiveOne()) {
      }
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) {
        log::error(std::string("receive failed: ") + e.what());
      }
    }
    impl.expireLeases();
    impl.tickAppliances();
    impl.pipeline.submit();
  }
  // Stopping: what was admitted is written and answered before we go.
  impl.pipeline.drain();
}

}  // namespace qos::manager
