#include "manager/store/wal_checkpointer.h"

#include <sqlite3.h>

#include "control/common/log.h"

namespace qos::manager {

Result<std::unique_ptr<WalCheckpointer>> WalCheckpointer::start(sqlite3* writer,
                                                                const std::string& path,
                                                                Limits limits) {
  sqlite3* connection = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &connection, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  // A connection knows the file is in WAL mode (and checkpoints it) only
  // once it has read the header; until then a checkpoint does nothing.
  if (rc == SQLITE_OK) {
    rc = sqlite3_exec(connection, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr);
  }
  if (rc != SQLITE_OK) {
    std::string message = "reservation store " + path +
                          ": cannot open the checkpoint connection: " +
                          (connection != nullptr ? sqlite3_errmsg(connection) : sqlite3_errstr(rc));
    sqlite3_close_v2(connection);
    return makeError(std::move(message));
  }
  std::unique_ptr<WalCheckpointer> checkpointer(
      new WalCheckpointer(writer, connection, path, limits));
  sqlite3_wal_hook(writer, &WalCheckpointer::onCommit, checkpointer.get());
  return checkpointer;
}

WalCheckpointer::WalCheckpointer(sqlite3* writer, sqlite3* connection, std::string path,
                                 Limits limits)
    : writer_(writer),
      connection_(connection),
      path_(std::move(path)),
      limits_(limits),
      thread_([this] { run(); }) {}

WalCheckpointer::~WalCheckpointer() {
  // Back to SQLite's own automatic checkpoint for whatever the writer does next.
  sqlite3_wal_autocheckpoint(writer_, limits_.wake_pages);
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
  sqlite3_close_v2(connection_);
}

WalCheckpointer::Counts WalCheckpointer::counts() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return counts_;
}

bool WalCheckpointer::due() const { return log_pages_ - copied_pages_ >= limits_.wake_pages; }

// Called by SQLite on the writer's thread after each commit, with the write
// lock released: notes the log's size, wakes the thread, and restarts the
// log when it is long and (nearly) all copied, or twice too long.
int WalCheckpointer::onCommit(void* self, sqlite3* db, const char* /*name*/, int log_pages) {
  auto* checkpointer = static_cast<WalCheckpointer*>(self);
  const Limits& limits = checkpointer->limits_;
  bool wake = false;
  bool restart = false;
  {
    const std::lock_guard<std::mutex> lock(checkpointer->mutex_);
    if (log_pages < checkpointer->log_pages_) {
      // SQLite reused the log from its start on its own: a passive round had
      // copied every frame before this commit began.
      checkpointer->copied_pages_ = 0;
      ++checkpointer->generation_;
      ++checkpointer->counts_.restarts;
    }
    checkpointer->log_pages_ = log_pages;
    checkpointer->logged_ = true;
    if (checkpointer->due() && !checkpointer->wake_requested_) {
      checkpointer->wake_requested_ = true;
      wake = true;
    }
    restart = log_pages >= limits.restart_pages &&
              (log_pages - checkpointer->copied_pages_ <= limits.wake_pages ||
               log_pages >= 2 * limits.restart_pages);
  }
  if (wake) {
    checkpointer->wake_.notify_one();
  }
  if (restart) {
    // Waits (the writer's busy timeout) for a passive round in progress.
    // BUSY or an error: the log stays long until the next commit tries again.
    const int rc =
        sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_RESTART, nullptr, nullptr);
    if (rc == SQLITE_OK) {
      const std::lock_guard<std::mutex> lock(checkpointer->mutex_);
      ++checkpointer->counts_.restarts;
      ++checkpointer->generation_;
      checkpointer->log_pages_ = 0;
      checkpointer->copied_pages_ = 0;
    }
  }
  return SQLITE_OK;
}

void WalCheckpointer::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    wake_.wait_for(lock, kInterval, [this] { return stop_ || wake_requested_; });
    if (stop_) {
      return;
    }
    if (!wake_requested_ && !logged_) {
      continue;  // a quiet second: nothing to copy
    }
    wake_requested_ = false;
    logged_ = false;
    const uint64_t generation = generation_;
    lock.unlock();
    int log_frames = 0;
    int copied_frames = 0;
    const int rc = sqlite3_wal_checkpoint_v2(connection_, nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                             &log_frames, &copied_frames);
    // BUSY: the writer or a reader was in the way; the next round tries again.
    const bool failed = rc != SQLITE_OK && rc != SQLITE_BUSY;
    // Logged when it starts failing and when it recovers, not every time.
    if (failed && !failing_) {
      log::warning("reservation store " + path_ + ": background checkpoint failed: " +
                   sqlite3_errmsg(connection_) + " (the write-ahead log grows until it works)");
    } else if (!failed && failing_) {
      log::info("reservation store " + path_ + ": background checkpoint works again");
    }
    failing_ = failed;
    lock.lock();
    ++counts_.checkpoints;
    // Unless the log was restarted meanwhile: then these numbers are stale.
    if (generation == generation_ && copied_frames > copied_pages_) {
      copied_pages_ = copied_frames;
    }
  }
}

}  // namespace qos::manager
