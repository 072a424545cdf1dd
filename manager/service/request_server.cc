#include "manager/service/request_server.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <optional>
#include <vector>

#include <zmq.hpp>

#include "control/common/log.h"
#include "control/protocol/envelope.h"
#include "control/protocol/flat_request.h"
#include "control/protocol/json_writer.h"
#include "manager/codec/json_codec.h"
#include "manager/service/batch_committer.h"
#include "manager/service/server_metrics.h"

namespace qos::manager {

using control::Reply;
using control::ReplyStatus;
using nlohmann::json;

uint64_t systemClockMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

namespace {

// Frames larger than this make libzmq drop the peer's connection before we
// see them (memory safety); between kMaxMessageBytes and this, the peer gets
// a "too_large" error reply.
constexpr int64_t kHardMaxFrameBytes = 1 << 20;
constexpr int kPollTimeoutMs = 100;
constexpr uint64_t kExpiryIntervalMs = 100;
// Malformed-message log lines per window, so garbage cannot flood the log.
constexpr int kLogBurst = 10;
constexpr uint64_t kLogWindowMs = 10'000;

Reply errorReply(const std::string& id, std::string code, std::string message) {
  Reply r;
  r.id = id;
  r.status = ReplyStatus::Error;
  r.error = {std::move(code), std::move(message)};
  return r;
}

}  // namespace

struct RequestServer::Impl {
  // What to do once the batch's changes are durable (or failed to be).
  struct Outgoing {
    zmq::message_t identity;
    Reply reply;
    std::optional<uint64_t> undo_admission;  ///< flow to release if the commit fails
    std::optional<uint64_t> names_flow;      ///< the reply tells of this flow (retry, refresh)
    std::optional<uint64_t> released_flow;   ///< the delete to stage again if the commit fails
  };

  /** The live config: setConfig() swaps it from another thread (a reload). */
  std::atomic<const ManagerConfig*> config;
  AdmissionEngine& engine;
  ReservationStore* store;
  ServerMetrics* metrics;
  Clock clock;
  zmq::context_t context{1};
  zmq::socket_t socket{context, zmq::socket_type::router};
  uint64_t last_expiry_ms = 0;
  uint64_t log_window_start_ms = 0;
  int log_budget = kLogBurst;
  control::FlatRequest flat;  ///< reused by every message, so it keeps its capacity
  std::string reply_text;     ///< likewise, for every reply
  uint64_t log_suppressed = 0;

  Impl(const ManagerConfig& c, AdmissionEngine& e, ReservationStore* s, ServerMetrics* m, Clock k)
      : config(&c), engine(e), store(s), metrics(m), clock(std::move(k)) {}

  void logBadMessage(const std::string& what) {
    const uint64_t now = clock();
    if (now - log_window_start_ms >= kLogWindowMs) {
      if (log_suppressed != 0) {
        log::warning(std::to_string(log_suppressed) + " more bad message(s) not logged");
      }
      log_window_start_ms = now;
      log_budget = kLogBurst;
      log_suppressed = 0;
    }
    if (log_budget > 0) {
      --log_budget;
      log::warning(what);
    } else {
      ++log_suppressed;
    }
  }

  void count(std::string_view type, const Reply& reply) {
    if (metrics != nullptr) {
      metrics->countRequest(type, reply.status);
    }
  }

  // Admits @p request and writes the reply (grant or denial) into @p out.
  void admit(const AdmissionRequest& request, uint64_t now, Outgoing& out) {
    const size_t flows_before = engine.flowCount();
    AdmissionResult result = engine.admit(request, now);
    if (auto* grant = std::get_if<Grant>(&result)) {
      const bool is_new = engine.flowCount() > flows_before;
      std::string text = encodeGrant(*grant);
      out.names_flow = grant->flow_id;
      if (is_new) {
        if (store != nullptr) {
          store->stagePut(*grant);
        }
        out.undo_admission = grant->flow_id;
        if (metrics != nullptr) {
          metrics->countAdmission(grant->profile_index);
        }
      }
      // The grant's members, then "retried": whether this answers a retry.
      text.pop_back();
      text += is_new ? ",\"retried\":false}" : ",\"retried\":true}";
      out.reply.body_json = std::move(text);
      return;
    }
    const Denial& denial = std::get<Denial>(result);
    if (metrics != nullptr) {
      metrics->countDenial(denial.reason);
    }
    out.reply.status =
        denial.reason == DenyReason::BadRequest ? ReplyStatus::Error : ReplyStatus::Denied;
    out.reply.error = {
        denial.reason == DenyReason::BadRequest ? "bad_request" : denyReasonName(denial.reason),
        denial.message};
    out.reply.body = toJson(denial);
  }

  // Releases @p flow_id and writes the reply into @p out.
  void release(uint64_t flow_id, Outgoing& out) {
    auto released = engine.release(flow_id);
    if (!released) {
      out.reply = errorReply(out.reply.id, "unknown_flow",
                             "no flow " + std::to_string(flow_id) + " (released or expired)");
      return;
    }
    if (store != nullptr) {
      store->stageDelete(flow_id);
    }
    out.released_flow = flow_id;
    if (metrics != nullptr) {
      metrics->countRelease();
    }
    out.reply.body_json = encodeGrant(*released);
  }

  // The fast path (control/protocol/flat_request.h) for the two messages
  // that come by the thousand: a provision whose body reads exactly as
  // requestFromJson() would read it, and a release.  False: not handled,
  // the general path answers (and names any error).
  bool handleFlat(std::string_view payload, zmq::message_t& identity,
                  std::vector<Outgoing>& batch) {
    if (!control::decodeFlatRequest(payload, flat)) {
      return false;
    }
    const bool is_provision = flat.type == "provision";
    std::optional<AdmissionRequest> request;
    const control::FlatValue* flow_id = nullptr;
    if (is_provision) {
      request = requestFromFlatBody(flat);
      if (!request) {
        return false;
      }
    } else if (flat.type == "release") {
      flow_id = flat.find("flow_id");
      if (flow_id == nullptr || flow_id->kind != control::FlatValue::Kind::Unsigned) {
        return false;
      }
    } else {
      return false;
    }
    Outgoing out{.identity = std::move(identity)};
    out.reply.id = flat.id;
    if (is_provision) {
      admit(*request, clock(), out);
    } else {
      release(flow_id->number, out);
    }
    count(flat.type, out.reply);
    batch.push_back(std::move(out));
    return true;
  }

  // Answers one decoded request.  Changes to the store are staged, not committed.
  Outgoing handle(const control::Request& req, zmq::message_t identity) {
    Outgoing out{.identity = std::move(identity)};
    out.reply.id = req.id;
    const uint64_t now = clock();
    if (req.type == "provision") {
      auto request = requestFromJson(req.body);
      if (!request) {
        out.reply = errorReply(req.id, "bad_request", request.error().message);
        return out;
      }
      admit(*request, now, out);
      return out;
    }
    if (req.type == "release" || req.type == "refresh") {
      const auto it = req.body.find("flow_id");
      if (it == req.body.end() || !it->is_number_unsigned()) {
        out.reply = errorReply(req.id, "bad_request", "body.flow_id: expected a flow id (integer)");
        return out;
      }
      const uint64_t flow_id = it->get<uint64_t>();
      if (req.type == "release") {
        release(flow_id, out);
        return out;
      }
      uint32_t lease_sec = 0;
      if (const auto l = req.body.find("lease"); l != req.body.end()) {
        const uint32_t max_lease_sec = config.load()->max_lease_sec;
        if (!l->is_number_unsigned() || l->get<uint64_t>() > max_lease_sec) {
          out.reply =
              errorReply(req.id, "bad_request",
                         "body.lease: expected seconds, at most " + std::to_string(max_lease_sec));
          return out;
        }
        lease_sec = l->get<uint32_t>();
      }
      const auto expires = engine.refresh(flow_id, lease_sec, now);
      if (!expires) {
        out.reply = errorReply(req.id, "unknown_flow",
                               "no flow " + std::to_string(flow_id) + " (released or expired)");
        return out;
      }
      if (auto grant = engine.flow(flow_id); grant && store != nullptr) {
        store->stagePut(*grant);
      }
      out.names_flow = flow_id;
      out.reply.body = {{"flow_id", flow_id}, {"expires_at_ms", *expires}};
      return out;
    }
    if (req.type == "flows") {
      std::string& text = out.reply.body_json;
      control::JsonWriter w(text);
      w.beginObject();
      w.key("flows");
      w.beginArray();
      for (const Grant& g : engine.flows()) {
        w.raw(encodeGrant(g));
      }
      w.endArray();
      w.endObject();
      return out;
    }
    if (req.type == "networks") {
      json classes = json::array();
      for (const ClassUsage& u : engine.usage()) {
        classes.push_back(toJson(u));
      }
      out.reply.body = {{"classes", std::move(classes)}};
      return out;
    }
    if (req.type == "appliances") {
      // No appliance registers with the manager yet (the next issue adds that).
      out.reply.body = {{"appliances", json::array()}};
      return out;
    }
    if (req.type == "stats") {
      out.reply.body = {{"flows", engine.flowCount()},
                        {"networks", config.load()->networks.size()},
                        {"applications", config.load()->applications.size()},
                        {"version", QOS_VERSION}};
      return out;
    }
    if (req.type == "ping") {
      out.reply.body = {{"version", QOS_VERSION}};
      return out;
    }
    out.reply = errorReply(req.id, "unknown_type",
                           "unknown message type '" + req.type +
                               "'; known: provision, release, refresh, flows, networks, "
                               "appliances, stats, ping");
    return out;
  }

  // Reads one message from the ROUTER socket, if any.  Malformed framing is
  // answered when the peer can be addressed, and logged.
  bool receiveOne(std::vector<Outgoing>& batch) {
    std::vector<zmq::message_t> frames;
    while (true) {
      zmq::message_t frame;
      const auto got =
          socket.recv(frame, frames.empty() ? zmq::recv_flags::dontwait : zmq::recv_flags::none);
      if (!got) {
        return false;
      }
      const bool more = frame.more();
      if (frames.size() < 4) {
        frames.push_back(std::move(frame));
      }
      if (!more) {
        break;
      }
    }
    // [identity][empty][payload]; anything else is a confused client.
    if (frames.size() != 3 || frames[1].size() != 0) {
      logBadMessage("message with " + std::to_string(frames.size()) +
                    " frames (expected identity, empty delimiter, payload)");
      if (!frames.empty() && frames.size() >= 2) {
        Outgoing out{.identity = std::move(frames[0]),
                     .reply = errorReply("", "bad_envelope",
                                         "expected one payload frame after an empty delimiter")};
        count("invalid", out.reply);
        batch.push_back(std::move(out));
      }
      return true;
    }
    const std::string_view payload(static_cast<const char*>(frames[2].data()), frames[2].size());
    if (handleFlat(payload, frames[0], batch)) {
      return true;
    }
    auto request = control::decodeRequest(payload);
    if (!request) {
      Reply reply = control::decodeFailureReply(payload, request.error());
      logBadMessage("refused message (" + std::to_string(payload.size()) +
                    " bytes): " + request.error().message);
      count("invalid", reply);
      batch.push_back(Outgoing{.identity = std::move(frames[0]), .reply = std::move(reply)});
      return true;
    }
    Outgoing out = handle(*request, std::move(frames[0]));
    count(request->type, out.reply);
    batch.push_back(std::move(out));
    return true;
  }

  // A batch's commit failed: takes back what it admitted, so memory agrees
  // with the store, and tells those clients; stages its deletes again, so
  // the next commit retries them.  @p later (handled after @p batch, against
  // the state it left) loses any reply that names a flow taken back.
  void takeBack(std::vector<Outgoing>& batch, std::vector<Outgoing>& later, const Error& error) {
    log::error("reservation store commit failed: " + error.message);
    std::vector<uint64_t> taken_back;
    for (Outgoing& out : batch) {
      if (out.released_flow) {
        store->stageDelete(*out.released_flow);
      }
      if (out.undo_admission) {
        engine.release(*out.undo_admission);
        store->stageDelete(*out.undo_admission);
        taken_back.push_back(*out.undo_admission);
        out.reply = errorReply(out.reply.id, "internal",
                               "the reservation could not be stored; nothing was reserved");
      }
    }
    for (Outgoing& out : later) {
      if (out.names_flow &&
          std::find(taken_back.begin(), taken_back.end(), *out.names_flow) != taken_back.end()) {
        out.undo_admission.reset();
        out.reply = errorReply(out.reply.id, "internal",
                               "the reservation could not be stored; nothing was reserved");
      }
    }
  }

  void send(std::vector<Outgoing>& batch) {
    for (Outgoing& out : batch) {
      control::encodeReply(out.reply, reply_text);
      const std::string& payload = reply_text;
      try {
        // A peer that went away makes ROUTER drop the message (no mandatory routing).
        socket.send(out.identity, zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        socket.send(zmq::message_t(), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
        socket.send(zmq::buffer(payload), zmq::send_flags::dontwait);
      } catch (const zmq::error_t& e) {
        logBadMessage(std::string("cannot send a reply: ") + e.what());
      }
    }
  }

  void expireLeases() {
    const uint64_t now = clock();
    if (now - last_expiry_ms < kExpiryIntervalMs) {
      return;
    }
    last_expiry_ms = now;
    const std::vector<Grant> lapsed = engine.expire(now);
    if (lapsed.empty()) {
      return;
    }
    if (store != nullptr) {
      // Written with the next batch.
      for (const Grant& g : lapsed) {
        store->stageDelete(g.flow_id);
      }
    }
    if (metrics != nullptr) {
      metrics->countExpired(lapsed.size());
    }
    log::debug(std::to_string(lapsed.size()) + " lease(s) lapsed");
  }
};

RequestServer::RequestServer(const ManagerConfig& config, AdmissionEngine& engine,
                             ReservationStore* store, ServerMetrics* metrics, Clock clock)
    : impl_(std::make_unique<Impl>(config, engine, store, metrics, std::move(clock))) {}

RequestServer::~RequestServer() = default;

Result<void> RequestServer::bind() {
  try {
    impl_->socket.set(zmq::sockopt::linger, 0);
    impl_->socket.set(zmq::sockopt::maxmsgsize, kHardMaxFrameBytes);
    impl_->socket.set(zmq::sockopt::sndhwm, 100000);
    impl_->socket.set(zmq::sockopt::rcvhwm, 100000);
    impl_->socket.bind(impl_->config.load()->listen);
  } catch (const zmq::error_t& e) {
    return makeError("cannot listen on " + impl_->config.load()->listen + ": " + e.what());
  }
  return {};
}

void RequestServer::setConfig(const ManagerConfig& config) { impl_->config.store(&config); }

void RequestServer::run(const std::atomic<bool>& stop) {
  Impl& impl = *impl_;
  // With a store: `in_flight` is being committed (its replies wait for that),
  // `next` collects what arrives meanwhile and is submitted when the
  // committer is free.  Without one, replies go out batch by batch.
  std::optional<BatchCommitter> committer;
  if (impl.store != nullptr) {
    committer.emplace(*impl.store);
  }
  std::vector<Impl::Outgoing> in_flight;
  std::vector<Impl::Outgoing> next;
  in_flight.reserve(kMaxBatch);
  next.reserve(kMaxBatch);

  const auto finishInFlight = [&](const BatchCommitter::Outcome& outcome) {
    if (impl.metrics != nullptr) {
      impl.metrics->observeCommit(outcome.changes, outcome.seconds);
    }
    if (!outcome.result) {
      impl.takeBack(in_flight, next, outcome.result.error());
    }
    impl.send(in_flight);
    in_flight.clear();
  };
  // Hands `next` to the committer if it is free; sends it at once if it
  // changed nothing (nothing earlier is in flight, so nothing it says waits).
  const auto submitNext = [&] {
    if (!committer) {
      impl.send(next);
      next.clear();
      return;
    }
    if (committer->busy()) {
      return;
    }
    ReservationStore::Changes changes = impl.store->takeStaged();
    if (changes.empty()) {
      impl.send(next);
      next.clear();
      return;
    }
    in_flight.swap(next);
    committer->submit(std::move(changes));
  };

  while (!stop.load()) {
    // Stop reading while `next` is full: the peers' queues and high-water
    // marks hold the rest.
    std::array<zmq::pollitem_t, 2> items{{
        {impl.socket.handle(), 0, static_cast<short>(next.size() < kMaxBatch ? ZMQ_POLLIN : 0), 0},
        {nullptr, committer ? committer->readyFd() : -1, ZMQ_POLLIN, 0},
    }};
    try {
      zmq::poll(items.data(), committer ? 2 : 1, std::chrono::milliseconds(kPollTimeoutMs));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) {
        log::error(std::string("poll failed: ") + e.what());
      }
      continue;
    }
    if (committer && committer->busy()) {
      if (std::optional<BatchCommitter::Outcome> outcome = committer->collect()) {
        finishInFlight(*outcome);
      }
    }
    try {
      while (next.size() < kMaxBatch && impl.receiveOne(next)) {
      }
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) {
        log::error(std::string("receive failed: ") + e.what());
      }
    }
    impl.expireLeases();
    submitNext();
  }
  // Stopping: what was admitted is written and answered before we go.
  if (committer && committer->busy()) {
    finishInFlight(committer->wait());
  }
  submitNext();
  if (committer && committer->busy()) {
    finishInFlight(committer->wait());
  }
}

}  // namespace qos::manager
