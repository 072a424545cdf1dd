#include "manager/store/reservation_store.h"

#include <algorithm>
#include <climits>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include "manager/codec/json_codec.h"

namespace qos::manager {
namespace {

constexpr const char* kMemoryPath = ":memory:";

constexpr const char* kCreateSchemaSql =
    "CREATE TABLE schema_version (version INTEGER NOT NULL);"
    "INSERT INTO schema_version (version) VALUES (2);"
    "CREATE TABLE grants ("
    "  flow_id INTEGER PRIMARY KEY,"
    "  expires_at_ms INTEGER NOT NULL,"
    "  client_id TEXT NOT NULL,"
    "  request_id TEXT NOT NULL,"
    "  grant_json TEXT NOT NULL"
    ");";

/**
 * Resets a statement when it goes out of scope, so no early return leaves a
 * statement running (a running read would pin the WAL and block checkpoints).
 */
class ResetOnExit {
public:
  explicit ResetOnExit(sqlite3_stmt* statement) : statement_(statement) {}
  ~ResetOnExit() {
    sqlite3_reset(statement_);
    sqlite3_clear_bindings(statement_);
  }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

private:
  sqlite3_stmt* statement_;
};

/** Flow ids and times are uint64 in C++ and int64 in SQLite: the same 64 bits. */
int64_t toSql(uint64_t value) { return static_cast<int64_t>(value); }
uint64_t fromSql(int64_t value) { return static_cast<uint64_t>(value); }

int bindText(sqlite3_stmt* statement, int index, const std::string& text) {
  if (text.size() > static_cast<size_t>(INT_MAX)) {
    return SQLITE_TOOBIG;
  }
  // SQLITE_STATIC: the string outlives the step that reads it.
  return sqlite3_bind_text(statement, index, text.data(), static_cast<int>(text.size()),
                           SQLITE_STATIC);
}

std::string columnText(sqlite3_stmt* statement, int column) {
  const unsigned char* text = sqlite3_column_text(statement, column);
  const int n_bytes = sqlite3_column_bytes(statement, column);
  if (text == nullptr) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(n_bytes));
}

}  // namespace

void ReservationStore::DbDeleter::operator()(sqlite3* db) const { sqlite3_close_v2(db); }

void ReservationStore::StatementDeleter::operator()(sqlite3_stmt* statement) const {
  sqlite3_finalize(statement);
}

ReservationStore::ReservationStore(std::string path, DbPtr db)
    : path_(std::move(path)), db_(std::move(db)) {}

ReservationStore::~ReservationStore() = default;

Result<std::unique_ptr<ReservationStore>> ReservationStore::open(
    const std::string& path, WalCheckpointer::Limits checkpoint_limits) {
  const std::string file = path.empty() ? kMemoryPath : path;
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(file.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  // SQLite hands back a connection to close even when opening fails.
  DbPtr db(raw);
  if (rc != SQLITE_OK) {
    return makeError("reservation store " + file + ": cannot open: " +
                     (raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  std::unique_ptr<ReservationStore> store(new ReservationStore(file, std::move(db)));
  if (Result<void> initialized = store->initialize(checkpoint_limits); !initialized) {
    return initialized.error();
  }
  return store;
}

Error ReservationStore::sqliteError(const std::string& what) const {
  return makeError("reservation store " + path_ + ": " + what + ": " + sqlite3_errmsg(db_.get()));
}

Result<ReservationStore::StatementPtr> ReservationStore::prepare(const char* sql) const {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v3(db_.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
  StatementPtr statement(raw);
  if (rc != SQLITE_OK) {
    return sqliteError(std::string("preparing \"") + sql + "\"");
  }
  return statement;
}

Result<void> ReservationStore::exec(const char* sql, const char* what) {
  if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return sqliteError(what);
  }
  return {};
}

WalCheckpointer::Counts ReservationStore::checkpointCounts() const {
  return checkpointer_ ? checkpointer_->counts() : WalCheckpointer::Counts{};
}

Result<void> ReservationStore::initialize(WalCheckpointer::Limits checkpoint_limits) {
  sqlite3_extended_result_codes(db_.get(), 1);
  sqlite3_busy_timeout(db_.get(), kBusyTimeoutMs);

  // The first statement reads the file header: a file that is not a database
  // fails here, with SQLite's "file is not a database".
  Result<StatementPtr> journal = prepare("PRAGMA journal_mode=WAL");
  if (!journal) {
    return journal.error();
  }
  std::string mode;
  {
    ResetOnExit reset(journal->get());
    if (sqlite3_step(journal->get()) != SQLITE_ROW) {
      return sqliteError("setting WAL mode");
    }
    mode = columnText(journal->get(), 0);
  }
  if (mode != "wal" && !(path_ == kMemoryPath && mode == "memory")) {
    return makeError("reservation store " + path_ +
                     ": cannot use write-ahead logging (journal mode is '" + mode +
                     "'); is the file on a file system without shared-memory support?");
  }
  // FULL: in WAL mode the log is fsynced at every commit, so a commit that
  // returned is on disk.  NORMAL would only be safe against process crashes.
  if (Result<void> r = exec("PRAGMA synchronous=FULL", "setting synchronous=FULL"); !r) {
    return r;
  }
  // The whole table in memory: a put or delete then never reads the file.
  if (Result<void> r = exec("PRAGMA cache_size=-65536", "setting the cache size"); !r) {
    return r;
  }
  if (Result<void> r = createOrVerifySchema(); !r) {
    return r;
  }
  if (Result<void> r = prepareStatements(); !r) {
    return r;
  }
  if (path_ != kMemoryPath) {
    Result<std::unique_ptr<WalCheckpointer>> checkpointer =
        WalCheckpointer::start(db_.get(), path_, checkpoint_limits);
    if (!checkpointer) {
      return checkpointer.error();
    }
    checkpointer_ = std::move(*checkpointer);
  }
  return {};
}

Result<void> ReservationStore::createOrVerifySchema() {
  // IMMEDIATE: two managers starting on one fresh file must not both create it.
  if (Result<void> r = exec("BEGIN IMMEDIATE", "starting the schema check"); !r) {
    return r;
  }
  auto fail = [this](Error error) -> Result<void> {
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    return error;
  };

  Result<StatementPtr> tables = prepare(
      "SELECT (SELECT count(*) FROM sqlite_master WHERE type = 'table'),"
      "       (SELECT count(*) FROM sqlite_master WHERE type = 'table'"
      "                                             AND name = 'schema_version')");
  if (!tables) {
    return fail(tables.error());
  }
  int64_t n_tables = 0;
  int64_t n_version_tables = 0;
  {
    ResetOnExit reset(tables->get());
    if (sqlite3_step(tables->get()) != SQLITE_ROW) {
      return fail(sqliteError("reading the schema"));
    }
    n_tables = sqlite3_column_int64(tables->get(), 0);
    n_version_tables = sqlite3_column_int64(tables->get(), 1);
  }

  if (n_version_tables == 0) {
    if (n_tables != 0) {
      return fail(makeError("reservation store " + path_ +
                            ": not a qosmgr reservation store (it has tables but no "
                            "schema_version); refusing to touch it"));
    }
    if (Result<void> r = exec(kCreateSchemaSql, "creating the schema"); !r) {
      return fail(r.error());
    }
  } else {
    Result<StatementPtr> version = prepare("SELECT version FROM schema_version");
    if (!version) {
      return fail(version.error());
    }
    ResetOnExit reset(version->get());
    if (sqlite3_step(version->get()) != SQLITE_ROW ||
        sqlite3_column_type(version->get(), 0) != SQLITE_INTEGER) {
      return fail(
          makeError("reservation store " + path_ + ": schema_version holds no version number"));
    }
    const int64_t found = sqlite3_column_int64(version->get(), 0);
    if (found > kSchemaVersion) {
      return fail(makeError("reservation store " + path_ + " has schema version " +
                            std::to_string(found) + ", newer than version " +
                            std::to_string(kSchemaVersion) +
                            " that this qosmgr understands; refusing to open it (run the newer "
                            "qosmgr, or point state_path at another file)"));
    }
    if (found == 1) {
      // Version 1 rows hold the whole grant; storedGrantFromJson() reads them
      // as they are.  Only the number changes, so older builds refuse the file.
      if (Result<void> r =
              exec("UPDATE schema_version SET version = 2", "upgrading the schema from version 1");
          !r) {
        return fail(r.error());
      }
    } else if (found < kSchemaVersion) {
      return fail(makeError("reservation store " + path_ + " has unknown schema version " +
                            std::to_string(found) + " (this qosmgr writes " +
                            std::to_string(kSchemaVersion) + ")"));
    }
  }
  if (Result<void> r = exec("COMMIT", "committing the schema"); !r) {
    return fail(r.error());
  }
  return {};
}

Result<void> ReservationStore::prepareStatements() {
  // Preparing against the grants table also verifies its columns.
  struct Entry {
    StatementPtr* slot;
    const char* sql;
  };
  const Entry entries[] = {
      {&put_,
       "INSERT OR REPLACE INTO grants (flow_id, expires_at_ms, client_id, request_id, grant_json)"
       " VALUES (?1, ?2, ?3, ?4, ?5)"},
      {&delete_, "DELETE FROM grants WHERE flow_id = ?1"},
      {&begin_, "BEGIN IMMEDIATE"},
      {&commit_, "COMMIT"},
      {&rollback_, "ROLLBACK"},
      {&select_all_,
       "SELECT flow_id, expires_at_ms, client_id, request_id, grant_json FROM grants"},
  };
  for (const Entry& entry : entries) {
    Result<StatementPtr> statement = prepare(entry.sql);
    if (!statement) {
      return makeError(statement.error().message + " (does the schema match version " +
                       std::to_string(kSchemaVersion) + "?)");
    }
    *entry.slot = std::move(*statement);
  }
  return {};
}

void ReservationStore::stagePut(const Grant& grant) {
  // Serialized here, outside the lock.
  StagedRow row{grant.expires_at_ms, grant.client_id, grant.request_id, encodeStoredGrant(grant)};
  const std::lock_guard<std::mutex> lock(staged_mutex_);
  staged_[grant.flow_id] = std::move(row);
}

void ReservationStore::stageDelete(uint64_t flow_id) {
  const std::lock_guard<std::mutex> lock(staged_mutex_);
  staged_[flow_id] = std::nullopt;
}

size_t ReservationStore::stagedCount() const {
  const std::lock_guard<std::mutex> lock(staged_mutex_);
  return staged_.size();
}

void ReservationStore::setBeforeCommitHookForTest(std::function<void()> hook) {
  const std::lock_guard<std::mutex> lock(db_mutex_);
  before_commit_hook_ = std::move(hook);
}

Result<void> ReservationStore::commit() {
  const std::lock_guard<std::mutex> db_lock(db_mutex_);
  const Changes staged = takeStaged();
  if (staged.empty()) {
    return {};
  }
  return writeStaged(staged);
}

ReservationStore::Changes ReservationStore::takeStaged() {
  Changes staged;
  const std::lock_guard<std::mutex> lock(staged_mutex_);
  staged.swap(staged_);
  return staged;
}

Result<void> ReservationStore::commit(const Changes& changes) {
  if (changes.empty()) {
    return {};
  }
  const std::lock_guard<std::mutex> db_lock(db_mutex_);
  return writeStaged(changes);
}

Result<void> ReservationStore::writeStaged(const Changes& staged) {
  const std::string what = "commit of " + std::to_string(staged.size()) + " changes";
  {
    ResetOnExit reset(begin_.get());
    if (sqlite3_step(begin_.get()) != SQLITE_DONE) {
      return sqliteError(what + " could not start");
    }
  }
  auto rollBack = [this](Error error) -> Result<void> {
    if (sqlite3_get_autocommit(db_.get()) == 0) {
      ResetOnExit reset(rollback_.get());
      if (sqlite3_step(rollback_.get()) != SQLITE_DONE) {
        error.message += "; rollback failed too: ";
        error.message += sqlite3_errmsg(db_.get());
      }
    }
    return error;
  };

  for (const auto& [flow_id, row] : staged) {
    sqlite3_stmt* statement = row ? put_.get() : delete_.get();
    ResetOnExit reset(statement);
    int rc = sqlite3_bind_int64(statement, 1, toSql(flow_id));
    if (row) {
      if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(statement, 2, toSql(row->expires_at_ms));
      }
      if (rc == SQLITE_OK) {
        rc = bindText(statement, 3, row->client_id);
      }
      if (rc == SQLITE_OK) {
        rc = bindText(statement, 4, row->request_id);
      }
      if (rc == SQLITE_OK) {
        rc = bindText(statement, 5, row->grant_json);
      }
    }
    if (rc == SQLITE_OK) {
      rc = sqlite3_step(statement);
    }
    if (rc != SQLITE_DONE) {
      return rollBack(sqliteError(what + " failed " + (row ? "writing" : "deleting") + " flow " +
                                  std::to_string(flow_id)));
    }
  }

  if (before_commit_hook_) {
    before_commit_hook_();
  }
  ResetOnExit reset(commit_.get());
  if (sqlite3_step(commit_.get()) != SQLITE_DONE) {
    return rollBack(sqliteError(what + " failed at COMMIT"));
  }
  return {};
}

Result<std::vector<Grant>> ReservationStore::loadAll() const {
  const std::lock_guard<std::mutex> db_lock(db_mutex_);
  sqlite3_stmt* statement = select_all_.get();
  ResetOnExit reset(statement);
  std::vector<Grant> grants;
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(statement)) == SQLITE_ROW) {
    const uint64_t flow_id = fromSql(sqlite3_column_int64(statement, 0));
    const std::string row_name =
        "reservation store " + path_ + ": flow " + std::to_string(flow_id) + ": ";
    if (sqlite3_column_type(statement, 1) != SQLITE_INTEGER ||
        sqlite3_column_type(statement, 4) != SQLITE_TEXT) {
      return makeError(row_name + "stored row has columns of the wrong type");
    }
    const uint64_t expires_at_ms = fromSql(sqlite3_column_int64(statement, 1));
    std::string client_id = columnText(statement, 2);
    std::string request_id = columnText(statement, 3);
    const std::string text = columnText(statement, 4);

    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    } catch (const std::exception& e) {
      return makeError(row_name + "stored grant could not be parsed: " + e.what());
    }
    if (doc.is_discarded()) {
      return makeError(row_name + "stored grant is not valid JSON");
    }
    Result<Grant> grant = storedGrantFromJson(doc, flow_id, expires_at_ms, std::move(client_id),
                                              std::move(request_id));
    if (!grant) {
      return makeError(row_name + "stored grant is unreadable: " + grant.error().message);
    }
    grants.push_back(std::move(*grant));
  }
  if (rc != SQLITE_DONE) {
    return sqliteError("reading grants");
  }
  // By flow id as unsigned numbers (SQLite would order ids >= 2^63 first).
  std::sort(grants.begin(), grants.end(),
            [](const Grant& a, const Grant& b) { return a.flow_id < b.flow_id; });
  return grants;
}

}  // namespace qos::manager
