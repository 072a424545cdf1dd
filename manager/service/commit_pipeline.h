// CommitPipeline: group commit, pipelined.  The request loop collects a
// Batch (replies and flow events) while the previous one is written to the
// reservation store on the committer thread (batch_committer.h); a batch is
// delivered (its events published, its replies sent) only once its own
// changes and every earlier batch's are durable, so nobody is ever told of a
// change a crash could lose.
//
//   collect into next ──submit()──► in flight (committing) ──collect()──► deliver
//
// If a commit fails, what its batch admitted is taken back (the engine
// releases it and the store stages its delete) and those clients get an
// "unavailable" error; its releases and expiries, already gone from the
// engine, are staged again and their events move to the next batch, so
// they are delivered with the commit that finally writes them.  A reply of
// the next batch that names a flow taken back gets the same error.
//
// Without a store (tests), a batch is delivered as soon as it is submitted.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>

#include "manager/admission/admission.h"
#include "manager/service/batch.h"
#include "manager/service/batch_committer.h"
#include "manager/store/reservation_store.h"

namespace qos::manager {

class ServerMetrics;

class CommitPipeline {
public:
  /** Messages answered per store transaction, at most. */
  static constexpr size_t kMaxBatch = 512;

  /** Publishes a durable batch's events, then sends its replies. */
  using Deliver = std::function<void(Batch& batch)>;

  /** @p store and @p metrics may be null. */
  CommitPipeline(ReservationStore* store, AdmissionEngine& engine, ServerMetrics* metrics,
                 Deliver deliver);

  /** The batch being collected. */
  Batch& next() { return next_; }
  /** Whether the batch being collected has room for another reply. */
  bool hasRoom() const { return next_.replies.size() < kMaxBatch; }
  /** Readable when the batch in flight is done; -1 without a store. */
  int readyFd() const { return committer_ ? committer_->readyFd() : -1; }

  /** Delivers the batch in flight if its commit is done. */
  void collect();
  /**
   * Hands the batch being collected to the committer if it is free; one
   * that changed nothing is delivered at once (nothing earlier is in flight).
   */
  void submit();
  /** Stopping: commits and delivers everything collected so far. */
  void drain();

private:
  void finishInFlight(const BatchCommitter::Outcome& outcome);
  void takeBack(const Error& error);

  ReservationStore* store_;
  AdmissionEngine& engine_;
  ServerMetrics* metrics_;
  Deliver deliver_;
  std::optional<BatchCommitter> committer_;
  Batch in_flight_;
  Batch next_;
};

}  // namespace qos::manager
