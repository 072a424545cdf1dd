// RequestServer: qosmgr's ZeroMQ front end.  One ROUTER socket, served by one
// thread, with the store's commits on a second (batch_committer.h).
//
// The loop drains waiting messages (up to kMaxBatch per batch) and answers
// each against the admission engine; the batch's changes go to the
// reservation store in one transaction (group commit: one fsync for the whole
// batch), and its replies go out only once that transaction is durable, so a
// client is never told of a grant that a crash could lose.  While one batch
// is being committed, the next is received and admitted (its replies held),
// so the fsync does not stall admission.  If a commit fails, what its batch
// admitted is taken back and those clients get an "internal" error, as does
// any later reply that named such a flow.  Lapsed leases are released between
// turns and written with the next batch.
//
// A malformed, oversized or unknown message gets an error reply and a log
// line; nothing a client sends can crash or block the loop.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "control/common/result.h"
#include "manager/admission/admission.h"
#include "manager/store/reservation_store.h"

namespace qos::manager {

class ServerMetrics;

/** Milliseconds since the Unix epoch; a parameter so tests can move time. */
using Clock = std::function<uint64_t()>;
uint64_t systemClockMs();

class RequestServer {
public:
  /** Messages answered per store transaction, at most. */
  static constexpr size_t kMaxBatch = 512;

  /**
   * @param store   may be null: nothing is persisted (tests)
   * @param metrics may be null
   */
  RequestServer(const ManagerConfig& config, AdmissionEngine& engine, ReservationStore* store,
                ServerMetrics* metrics, Clock clock = systemClockMs);
  ~RequestServer();

  /**
   * A reloaded config (its lease limits, its counts in "stats"), from any
   * thread; the listen address stays the one bound.  @p config must outlive
   * the server.  The engine is reconfigured separately, before this.
   */
  void setConfig(const ManagerConfig& config);

  /** Binds the ROUTER socket to config.listen. */
  Result<void> bind();
  /** Serves until @p stop is true (checked at least every 100 ms). */
  void run(const std::atomic<bool>& stop);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qos::manager
