// WalCheckpointer: moves the reservation store's write-ahead log into the
// database file on a thread of its own, so that commits seldom wait for it.
//
// In WAL mode every commit appends to the log, and a checkpoint copies the
// logged pages back into the database file and fsyncs it.  SQLite's default
// runs that checkpoint inside whichever commit pushes the log past 1000
// pages: one unlucky batch of requests then waits for megabytes of copying
// and an extra fsync, which was most of qosmgr's tail latency.
//
// Here the writer's automatic checkpoint is off (its WAL hook is replaced by
// onCommit), and:
//  - A thread of this class checkpoints PASSIVE on its own connection once
//    Limits::wake_pages pages have been logged since its last checkpoint, or
//    every kInterval when there are any: it copies what it can and never
//    blocks the writer, which goes on appending meanwhile.
//  - The log file is only reused from its start when a writer finds every
//    frame already copied, which under constant load never happens by chance,
//    so without more it would grow without end.  Once it holds
//    Limits::restart_pages, the writer itself, right after its commit (where
//    SQLite's own automatic checkpoint would run), checkpoints RESTART: the
//    passive rounds have copied nearly everything, so that is the last few
//    frames and one fsync of the database file, once every restart_pages.
//    (A RESTART from the background thread would need the write lock, which
//    a busy writer retakes at once: it starves.)
//
// Durability is unchanged: a commit is durable once its log frames are
// fsynced (synchronous=FULL), whoever checkpoints them later.  After a crash
// SQLite replays the log at the next open.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "control/common/result.h"

struct sqlite3;

namespace qos::manager {

class WalCheckpointer {
public:
  struct Limits {
    /** Pages logged since the last checkpoint that wake the thread. */
    int wake_pages = 1000;
    /** Log size, in pages (4 KiB), from which a checkpoint also restarts the log. */
    int restart_pages = 8000;
  };
  /** Checkpoint at least this often while anything was logged. */
  static constexpr std::chrono::milliseconds kInterval{1000};

  /**
   * Opens a second connection to @p path and starts the thread; replaces
   * @p writer's automatic checkpoint with a wake-up of this thread.
   * @p writer must outlive this object.
   */
  static Result<std::unique_ptr<WalCheckpointer>> start(sqlite3* writer, const std::string& path,
                                                        Limits limits);

  /** Stops the thread (after the checkpoint in progress, if any). */
  ~WalCheckpointer();
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  /** What happened so far (for tests). */
  struct Counts {
    uint64_t checkpoints = 0;  ///< passive rounds of the thread
    /** Times the log was reused from its start: by a RESTART here, or by
     *  SQLite itself when a passive round had copied every frame in time. */
    uint64_t restarts = 0;
  };
  Counts counts() const;

private:
  WalCheckpointer(sqlite3* writer, sqlite3* connection, std::string path, Limits limits);
  static int onCommit(void* self, sqlite3* db, const char* name, int log_pages);
  bool due() const;  ///< mutex_ held
  void run();

  sqlite3* writer_;
  sqlite3* connection_;  ///< this thread's own; closed by the destructor
  const std::string path_;
  const Limits limits_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;            ///< guarded by mutex_
  int log_pages_ = 0;            ///< guarded by mutex_: the log's size after the last commit
  int copied_pages_ = 0;         ///< guarded by mutex_: of those, copied by the last checkpoint
  bool logged_ = false;          ///< guarded by mutex_: a commit since the last checkpoint
  bool wake_requested_ = false;  ///< guarded by mutex_: due() became true
  uint64_t generation_ = 0;      ///< guarded by mutex_: log restarts seen
  Counts counts_;                ///< guarded by mutex_
  bool failing_ = false;         ///< this thread's: the last checkpoint failed (logged once)
  std::thread thread_;           ///< last: starts once everything above is set
};

}  // namespace qos::manager
