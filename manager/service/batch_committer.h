// BatchCommitter: writes one batch of reservation-store changes at a time on
// a thread of its own, so that the request loop decodes and admits the next
// batch while this one is written and fsynced (group commit, pipelined).
//
//   request loop                         committer thread
//   ─────────────                        ────────────────
//   handle batch N, takeStaged()
//   submit(N) ─────────────────────────► commit(N)      ← one transaction, one fsync
//   handle batch N+1 (replies held)      ...
//   readyFd() readable ◄──────────────── done
//   collect() → send N's replies, submit(N+1) ...
//
// One batch at most is in flight: a batch's replies go out only after its
// own commit and every earlier one, so a reply never tells of a change a
// crash could lose.  The loop learns that a batch is done from readyFd()
// (an eventfd it polls next to its ZeroMQ socket).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>
#include <thread>

#include "control/common/result.h"
#include "manager/store/reservation_store.h"

namespace qos::manager {

class BatchCommitter {
public:
  /** How a submitted batch ended. */
  struct Outcome {
    Result<void> result;
    size_t changes = 0;  ///< flows changed by the batch
    double seconds = 0;  ///< time its transaction took
  };

  /** Starts the thread.  Throws std::system_error if no eventfd can be made. */
  explicit BatchCommitter(ReservationStore& store);
  /** Finishes the batch in flight, if any, and stops the thread. */
  ~BatchCommitter();
  BatchCommitter(const BatchCommitter&) = delete;
  BatchCommitter& operator=(const BatchCommitter&) = delete;

  /** Readable while a finished batch waits to be collected. */
  int readyFd() const { return ready_fd_; }
  /** A batch was submitted and not yet collected. */
  bool busy() const { return busy_; }

  /** Starts writing @p changes.  Only when !busy(). */
  void submit(ReservationStore::Changes changes);
  /** The outcome of the batch in flight if it is done (then !busy()); nullopt if not yet. */
  std::optional<Outcome> collect();
  /** Waits for the batch in flight and returns its outcome.  Only when busy(). */
  Outcome wait();

private:
  void run();
  void signalReady();
  void clearReady();

  ReservationStore& store_;
  int ready_fd_ = -1;
  bool busy_ = false;  ///< the request loop's own
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  bool stop_ = false;                              ///< guarded by mutex_
  std::optional<ReservationStore::Changes> todo_;  ///< guarded by mutex_
  std::optional<Outcome> outcome_;                 ///< guarded by mutex_
  std::thread thread_;                             ///< last: starts once the rest is set
};

}  // namespace qos::manager
