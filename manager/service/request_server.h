// RequestServer: qosmgr's request loop.  One thread serves the ROUTER socket
// (router_endpoint.h); the store's commits run on a second
// (commit_pipeline.h).
//
//   receive ─► decode (fast flat path, else the tree) ─► registry: role check,
//   body, handler (flow_handlers.h) ─► batch of replies and flow events
//   ─► group commit ─► deliver: publish events (the outbox), send replies
//
// Each turn drains waiting messages (up to CommitPipeline::kMaxBatch) and
// answers them against the admission engine; their changes go to the store
// in one transaction, and their replies go out only once it is durable.
// Lapsed leases are released between turns and written with the next batch.
//
// The outbox: every flow event (granted, released, expired) is published,
// once durable, to each subscriber, in order; the appliance sync is fed from
// there.
//
// A malformed, oversized, unknown or unauthorized message gets an error
// reply and a (rate-limited) log line; nothing a client sends can crash or
// block the loop.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "control/common/result.h"
#include "manager/admission/admission.h"
#include "manager/service/batch.h"
#include "manager/store/reservation_store.h"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace qos::manager {

class ServerMetrics;

/** Milliseconds since the Unix epoch; a parameter so tests can move time. */
using Clock = std::function<uint64_t()>;
uint64_t systemClockMs();

/** Told of every durable flow event, in order, on the request loop's thread. */
using FlowEventSubscriber = std::function<void(const std::vector<FlowEvent>& events)>;

class RequestServer {
public:
  /** The ZAP domain of the manager's socket: a ZAP handler answers for this domain only. */
  static constexpr std::string_view kZapDomain = "qosmgr";

  /** Messages answered per store transaction, at most. */
  static constexpr size_t kMaxBatch = 512;

  /**
   * @param store   may be null: nothing is persisted (tests)
   * @param metrics may be null
   * @param context the ZeroMQ context to serve on (it must outlive the
   *                server, and a ZAP handler for CURVE runs on it); null: its own
   */
  RequestServer(const ManagerConfig& config, AdmissionEngine& engine, ReservationStore* store,
                ServerMetrics* metrics, Clock clock = systemClockMs,
                zmq::context_t* context = nullptr);
  ~RequestServer();

  /**
   * A reloaded config (its lease limits, its counts in "stats"), from any
   * thread; the listen address stays the one bound.  @p config must outlive
   * the server.  The engine is reconfigured separately, before this.
   */
  void setConfig(const ManagerConfig& config);

  /** Adds a subscriber to the outbox.  Before run(). */
  void subscribe(FlowEventSubscriber subscriber);

  /**
   * Binds the ROUTER socket to config.listen.  With [security] mode "curve"
   * it is a CURVE server with the manager's key, and every message must come
   * from a connection the ZAP handler (started on the same context before
   * this) named after a configured [[peer]]: that name and its role are who
   * sent it.  Without CURVE every sender is an Admin without a name.
   */
  Result<void> bind();
  /** Serves until @p stop is true (checked at least every 100 ms). */
  void run(const std::atomic<bool>& stop);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qos::manager
