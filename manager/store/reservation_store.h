// ReservationStore: the grants qosmgr has handed out, durable across restarts,
// kill -9 and (as far as fsync goes) power loss, in one SQLite file.
//
// Group commit.  Changes are staged in memory (stagePut, stageDelete) and
// written by the next commit(), all in one transaction with one fsync of the
// write-ahead log, so durability costs one fsync per batch instead of one per
// grant.  The caller's contract: tell a client about a grant (or a release)
// only after a commit() that included it returned ok.
//
//   stagePut(g1) stagePut(g2) stageDelete(7)        commit()
//   ───────────── staged (memory) ─────────────►  BEGIN IMMEDIATE
//                                                  INSERT OR REPLACE g1, g2
//                                                  DELETE 7
//                                                  COMMIT   ← one fsync (WAL, synchronous=FULL)
//
// The log is copied back into the database file by a background thread
// (wal_checkpointer.h), not by whichever commit happens to fill it.
//
// Staging coalesces by flow id: the last change staged for a flow wins, and
// stagedCount() counts flows, not calls.  If commit() fails, the transaction
// is rolled back and the staged changes are dropped (not kept for a retry):
// the caller answered no client yet, so it undoes those changes in its own
// state and reports the error, instead of letting them ride silently into a
// later commit.
//
// Schema (version 4):
//   schema_version(version INTEGER NOT NULL)              one row
//   grants(flow_id INTEGER PRIMARY KEY,                   Grant::flow_id (as int64 bits)
//          expires_at_ms INTEGER NOT NULL,                Grant::expires_at_ms (as int64 bits)
//          client_id TEXT NOT NULL, request_id TEXT NOT NULL,
//          app TEXT NOT NULL, profile_index INTEGER NOT NULL,
//          class TEXT NOT NULL, rate_bps INTEGER NOT NULL,   Grant::profile (as int64 bits)
//          burst_bytes INTEGER NOT NULL,
//          src BLOB NOT NULL, sport INTEGER NOT NULL,     addresses: 4 or 16 bytes,
//          dst BLOB NOT NULL, dport INTEGER NOT NULL,     network order
//          proto INTEGER NOT NULL, bidir INTEGER NOT NULL)
//   flow_ids(next INTEGER NOT NULL)                       one row: nextFlowId()
// A row keeps what restoring the grant needs and no more: its path, DSCPs and
// meter are derived again from the config by AdmissionEngine::restore(), so
// loadAll() returns grants with those fields empty.  Plain columns, not a
// JSON text: a row is about 80 bytes (the JSON was 230, the whole grant
// 450), and every byte is written twice, to the log and by its checkpoint,
// on the disk the commits' fsyncs wait for.
//
// Older files are upgraded when opened, in one transaction: versions 1 (the
// whole grant as JSON in grant_json) and 2 (the stored members as JSON) are
// read row by row, a row that cannot be read refuses the upgrade naming its
// flow and leaves the file as it was; version 3 had no flow_ids table, and
// gets one numbering from its highest stored flow id + 1.  A file
// with a newer schema version is refused, never modified.
//
// Thread safety: every method may be called from any thread.  Staging takes a
// short lock and never waits for a commit in progress: changes staged while
// commit() is writing go to the next commit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "control/common/result.h"
#include "manager/admission/admission.h"
#include "manager/store/wal_checkpointer.h"

struct sqlite3;
struct sqlite3_stmt;

namespace qos::manager {

class ReservationStore {
public:
  /** The schema version this build writes and reads. */
  static constexpr int kSchemaVersion = 4;
  /** How long a statement waits for another connection's lock, in milliseconds. */
  static constexpr int kBusyTimeoutMs = 5000;

  /**
   * Opens or creates the store.  @p path "" or ":memory:" is an in-memory
   * store (tests).  Sets WAL mode and synchronous=FULL, creates or verifies
   * the schema, and prepares the statements every commit reuses.
   * @return the store, or an Error naming the file: cannot open, not a
   *         database, WAL not available, schema newer than kSchemaVersion.
   */
  static Result<std::unique_ptr<ReservationStore>> open(
      const std::string& path, WalCheckpointer::Limits checkpoint_limits = {});

  /** The background checkpointer's counts; zero for an in-memory store. */
  WalCheckpointer::Counts checkpointCounts() const;

  ~ReservationStore();
  ReservationStore(const ReservationStore&) = delete;
  ReservationStore& operator=(const ReservationStore&) = delete;

  /** Stages an insert, or a replace of the grant with the same flow_id. */
  void stagePut(const Grant& grant);
  /** Stages the removal of @p flow_id (no error if it is not stored). */
  void stageDelete(uint64_t flow_id);
  /** Flows with a staged change. */
  size_t stagedCount() const;

  /** What one transaction writes. */
  struct Changes {
    /**
     * By flow id: the last change staged for a flow, a put (the grant's
     * stored fields, as loadAll() returns them) or, when empty, a delete.
     */
    std::map<uint64_t, std::optional<Grant>> grants;
    /** Every flow id below this was handed out (0: no new one); see nextFlowId(). */
    uint64_t next_flow_id = 0;

    bool empty() const { return grants.empty() && next_flow_id == 0; }
    size_t size() const { return grants.size(); }
  };

  /**
   * Writes every staged change in one transaction, durable when this returns
   * ok.  Nothing staged: ok, no transaction.  On failure the transaction is
   * rolled back, the staged changes are dropped and the Error says why.
   * The same as commit(takeStaged()).
   */
  Result<void> commit();

  /**
   * Takes what is staged so far, leaving nothing staged: the caller decides
   * which changes a transaction holds (e.g. the changes behind one batch of
   * replies) and may stage more while commit(Changes) writes these on
   * another thread.
   */
  Changes takeStaged();
  /** Writes @p changes in one transaction; as commit(). */
  Result<void> commit(const Changes& changes);

  /**
   * Every stored grant, by flow id, as stored: dscp, reverse_dscp, path,
   * reverse_path and meter are left empty (see the schema above).  A row
   * that cannot be read back (a column of the wrong type, an address of the
   * wrong length, a number out of range) is an Error naming its flow id: a
   * grant is never skipped silently.
   */
  Result<std::vector<Grant>> loadAll() const;

  /**
   * The lowest flow id never handed out, as of the last commit: every put
   * ever staged raised it past its flow id, even if the grant was deleted
   * before it was written.  A restarted manager numbers from here, so a
   * flow id is never given twice, not even across restarts.
   */
  uint64_t nextFlowId() const;

  /** The file, or ":memory:". */
  const std::string& path() const { return path_; }

  /**
   * Test hook: called inside commit() after every staged row is written and
   * before COMMIT, so a crash test can kill the process mid-transaction.
   */
  void setBeforeCommitHookForTest(std::function<void()> hook);

private:
  struct DbDeleter {
    void operator()(sqlite3* db) const;
  };
  struct StatementDeleter {
    void operator()(sqlite3_stmt* statement) const;
  };
  using DbPtr = std::unique_ptr<sqlite3, DbDeleter>;
  using StatementPtr = std::unique_ptr<sqlite3_stmt, StatementDeleter>;

  ReservationStore(std::string path, DbPtr db);
  Result<void> initialize(WalCheckpointer::Limits checkpoint_limits);
  Result<void> createOrVerifySchema();
  Result<void> upgradeJsonRows(int64_t from_version);
  Result<void> addFlowIds();
  Result<void> prepareStatements();
  Result<void> writeStaged(const Changes& staged);
  Result<StatementPtr> prepare(const char* sql) const;
  Result<void> exec(const char* sql, const char* what);
  Error sqliteError(const std::string& what) const;

  const std::string path_;
  // Declared before the statements: members are destroyed in reverse order,
  // and every statement must be finalized before the connection closes.
  DbPtr db_;
  /** File-backed stores only; declared after db_, so it stops before db_ closes. */
  std::unique_ptr<WalCheckpointer> checkpointer_;
  StatementPtr put_;
  StatementPtr delete_;
  StatementPtr begin_;
  StatementPtr commit_;
  StatementPtr rollback_;
  StatementPtr select_all_;
  StatementPtr raise_next_id_;

  /** Serializes use of db_ (commit, loadAll). */
  mutable std::mutex db_mutex_;
  mutable std::mutex staged_mutex_;
  Changes staged_;             ///< guarded by staged_mutex_
  uint64_t next_flow_id_ = 1;  ///< guarded by db_mutex_: as stored
  std::function<void()> before_commit_hook_;
};

}  // namespace qos::manager
