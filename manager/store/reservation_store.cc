#include "manager/store/reservation_store.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <exception>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include "control/protocol/fields.h"

namespace qos::manager {
namespace {

constexpr const char* kMemoryPath = ":memory:";

/**
 * What a schema version 1 or 2 row kept as JSON and restoring still needs
 * (version 1 kept the whole grant: the rest is ignored).  The flow id,
 * expiry, client and request id were columns of their own.
 */
struct JsonRow {
  Grant grant;

  template <typename Self, typename Fields>
  static void fields(Self& self, Fields& f) {
    f.field("app", self.grant.application);
    f.field("profile_index", self.grant.profile_index);
    f.object("profile", self.grant.profile);
    control::FlowSpec::members(self.grant.flow, f, control::ProtocolForm::AnyNumber);
    f.field("bidir", self.grant.bidirectional);
  }
};

constexpr const char* kCreateSchemaSql =
    "CREATE TABLE schema_version (version INTEGER NOT NULL);"
    "INSERT INTO schema_version (version) VALUES (4);"
    "CREATE TABLE flow_ids (next INTEGER NOT NULL);"
    "INSERT INTO flow_ids (next) VALUES (1);";

constexpr const char* kCreateGrantsSql =
    "CREATE TABLE grants ("
    "  flow_id INTEGER PRIMARY KEY,"
    "  expires_at_ms INTEGER NOT NULL,"
    "  client_id TEXT NOT NULL,"
    "  request_id TEXT NOT NULL,"
    "  app TEXT NOT NULL,"
    "  profile_index INTEGER NOT NULL,"
    "  class TEXT NOT NULL,"
    "  rate_bps INTEGER NOT NULL,"
    "  burst_bytes INTEGER NOT NULL,"
    "  src BLOB NOT NULL,"
    "  sport INTEGER NOT NULL,"
    "  dst BLOB NOT NULL,"
    "  dport INTEGER NOT NULL,"
    "  proto INTEGER NOT NULL,"
    "  bidir INTEGER NOT NULL"
    ")";

/** The grants columns in the order bindGrant() and readGrantRow() use. */
constexpr const char* kGrantColumns =
    "flow_id, expires_at_ms, client_id, request_id, app, profile_index, class, rate_bps,"
    " burst_bytes, src, sport, dst, dport, proto, bidir";

const std::string& insertGrantSql() {
  static const std::string sql = std::string("INSERT OR REPLACE INTO grants (") + kGrantColumns +
                                 ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
                                 " ?13, ?14, ?15)";
  return sql;
}

const std::string& selectGrantsSql() {
  static const std::string sql = std::string("SELECT ") + kGrantColumns + " FROM grants";
  return sql;
}

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

/** An address as 4 or 16 bytes in network order; an unset one as zero bytes. */
int bindAddress(sqlite3_stmt* statement, int index, const IpAddress& address) {
  const int n_bytes = address.family == 4 ? 4 : address.family == 6 ? 16 : 0;
  if (n_bytes == 0) {
    return sqlite3_bind_zeroblob(statement, index, 0);
  }
  return sqlite3_bind_blob(statement, index, address.bytes.data(), n_bytes, SQLITE_STATIC);
}

/**
 * Binds what a row keeps of @p grant to ?1..?15, in kGrantColumns order.
 * The grant outlives the step that reads it (SQLITE_STATIC).
 */
int bindGrant(sqlite3_stmt* statement, const Grant& grant) {
  // A braced list is evaluated left to right; a failed bind fails the step anyway.
  const int results[] = {
      sqlite3_bind_int64(statement, 1, toSql(grant.flow_id)),
      sqlite3_bind_int64(statement, 2, toSql(grant.expires_at_ms)),
      bindText(statement, 3, grant.client_id),
      bindText(statement, 4, grant.request_id),
      bindText(statement, 5, grant.application),
      sqlite3_bind_int64(statement, 6, toSql(grant.profile_index)),
      bindText(statement, 7, grant.profile.class_name),
      sqlite3_bind_int64(statement, 8, toSql(grant.profile.rate_bps)),
      sqlite3_bind_int64(statement, 9, toSql(grant.profile.burst_bytes)),
      bindAddress(statement, 10, grant.flow.src),
      sqlite3_bind_int(statement, 11, grant.flow.src_port),
      bindAddress(statement, 12, grant.flow.dst),
      sqlite3_bind_int(statement, 13, grant.flow.dst_port),
      sqlite3_bind_int(statement, 14, grant.flow.protocol),
      sqlite3_bind_int(statement, 15, grant.bidirectional ? 1 : 0),
  };
  for (const int rc : results) {
    if (rc != SQLITE_OK) {
      return rc;
    }
  }
  return SQLITE_OK;
}

/** What a row keeps of @p grant (the schema above): the rest is derived at restore. */
Grant storedFields(const Grant& grant) {
  Grant stored;
  stored.flow_id = grant.flow_id;
  stored.application = grant.application;
  stored.profile_index = grant.profile_index;
  stored.profile = grant.profile;
  stored.flow = grant.flow;
  stored.bidirectional = grant.bidirectional;
  stored.expires_at_ms = grant.expires_at_ms;
  stored.client_id = grant.client_id;
  stored.request_id = grant.request_id;
  return stored;
}

std::string columnText(sqlite3_stmt* statement, int column) {
  const unsigned char* text = sqlite3_column_text(statement, column);
  const int n_bytes = sqlite3_column_bytes(statement, column);
  if (text == nullptr) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(n_bytes));
}

/** An integer column in [0, max]; nullopt if it is not one. */
std::optional<uint64_t> columnUnsigned(sqlite3_stmt* statement, int column, uint64_t max) {
  if (sqlite3_column_type(statement, column) != SQLITE_INTEGER) {
    return std::nullopt;
  }
  const int64_t value = sqlite3_column_int64(statement, column);
  if (value < 0 || static_cast<uint64_t>(value) > max) {
    return std::nullopt;
  }
  return static_cast<uint64_t>(value);
}

/** An address column: 4 bytes (IPv4), 16 (IPv6) or none (unset); nullopt otherwise. */
std::optional<IpAddress> columnAddress(sqlite3_stmt* statement, int column) {
  if (sqlite3_column_type(statement, column) != SQLITE_BLOB) {
    return std::nullopt;
  }
  const void* bytes = sqlite3_column_blob(statement, column);
  const int n_bytes = sqlite3_column_bytes(statement, column);
  IpAddress address;
  if (n_bytes == 0) {
    return address;
  }
  if ((n_bytes != 4 && n_bytes != 16) || bytes == nullptr) {
    return std::nullopt;
  }
  address.family = n_bytes == 4 ? 4 : 6;
  std::memcpy(address.bytes.data(), bytes, static_cast<size_t>(n_bytes));
  return address;
}

/**
 * Reads a row selected in kGrantColumns order.  The error says what is
 * wrong with it; the caller names the flow.
 */
Result<Grant> readGrantRow(sqlite3_stmt* statement) {
  for (const int column : {0, 1, 7, 8}) {  // 64-bit values, any bits
    if (sqlite3_column_type(statement, column) != SQLITE_INTEGER) {
      return makeError("stored row has columns of the wrong type");
    }
  }
  for (const int column : {2, 3, 4, 6}) {
    if (sqlite3_column_type(statement, column) != SQLITE_TEXT) {
      return makeError("stored row has columns of the wrong type");
    }
  }
  Grant grant;
  grant.flow_id = fromSql(sqlite3_column_int64(statement, 0));
  grant.expires_at_ms = fromSql(sqlite3_column_int64(statement, 1));
  grant.client_id = columnText(statement, 2);
  grant.request_id = columnText(statement, 3);
  grant.application = columnText(statement, 4);
  grant.profile.class_name = columnText(statement, 6);
  grant.profile.rate_bps = fromSql(sqlite3_column_int64(statement, 7));
  grant.profile.burst_bytes = fromSql(sqlite3_column_int64(statement, 8));
  const std::optional<uint64_t> profile_index =
      columnUnsigned(statement, 5, std::numeric_limits<uint32_t>::max());
  const std::optional<IpAddress> src = columnAddress(statement, 9);
  const std::optional<uint64_t> sport = columnUnsigned(statement, 10, UINT16_MAX);
  const std::optional<IpAddress> dst = columnAddress(statement, 11);
  const std::optional<uint64_t> dport = columnUnsigned(statement, 12, UINT16_MAX);
  const std::optional<uint64_t> proto = columnUnsigned(statement, 13, UINT8_MAX);
  const std::optional<uint64_t> bidir = columnUnsigned(statement, 14, 1);
  if (!profile_index || !src || !sport || !dst || !dport || !proto || !bidir) {
    return makeError(
        "stored row has a value out of range (profile_index, an address of other than 4 or 16 "
        "bytes, a port, proto or bidir)");
  }
  grant.profile_index = static_cast<uint32_t>(*profile_index);
  grant.flow.src = *src;
  grant.flow.src_port = static_cast<uint16_t>(*sport);
  grant.flow.dst = *dst;
  grant.flow.dst_port = static_cast<uint16_t>(*dport);
  grant.flow.protocol = static_cast<uint8_t>(*proto);
  grant.bidirectional = *bidir == 1;
  return grant;
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
  {
    Result<StatementPtr> next = prepare("SELECT next FROM flow_ids");
    if (!next) {
      return next.error();
    }
    ResetOnExit reset(next->get());
    if (sqlite3_step(next->get()) != SQLITE_ROW ||
        sqlite3_column_type(next->get(), 0) != SQLITE_INTEGER ||
        sqlite3_column_int64(next->get(), 0) < 1) {
      return makeError("reservation store " + path_ + ": flow_ids holds no next flow id");
    }
    next_flow_id_ = fromSql(sqlite3_column_int64(next->get(), 0));
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
    if (Result<void> r = exec(kCreateGrantsSql, "creating the grants table"); !r) {
      return fail(r.error());
    }
  } else {
    int64_t found = 0;
    {
      // Finalized before any upgrade: a statement left open would lock the
      // tables the upgrade alters.
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
      found = sqlite3_column_int64(version->get(), 0);
    }
    if (found > kSchemaVersion) {
      return fail(makeError("reservation store " + path_ + " has schema version " +
                            std::to_string(found) + ", newer than version " +
                            std::to_string(kSchemaVersion) +
                            " that this qosmgr understands; refusing to open it (run the newer "
                            "qosmgr, or point state_path at another file)"));
    }
    if (found == 1 || found == 2) {
      if (Result<void> r = upgradeJsonRows(found); !r) {
        return fail(r.error());
      }
    }
    if (found >= 1 && found <= 3) {
      if (Result<void> r = addFlowIds(); !r) {
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

Result<void> ReservationStore::upgradeJsonRows(int64_t from_version) {
  const std::string what = "reservation store " + path_ + ": upgrading from schema version " +
                           std::to_string(from_version) + ": ";
  std::vector<Grant> grants;
  {
    Result<StatementPtr> select =
        prepare("SELECT flow_id, expires_at_ms, client_id, request_id, grant_json FROM grants");
    if (!select) {
      return makeError(what + select.error().message);
    }
    sqlite3_stmt* statement = select->get();
    ResetOnExit reset(statement);
    int rc = SQLITE_OK;
    while ((rc = sqlite3_step(statement)) == SQLITE_ROW) {
      const uint64_t flow_id = fromSql(sqlite3_column_int64(statement, 0));
      const std::string row_name = what + "flow " + std::to_string(flow_id) + ": ";
      if (sqlite3_column_type(statement, 0) != SQLITE_INTEGER ||
          sqlite3_column_type(statement, 1) != SQLITE_INTEGER ||
          sqlite3_column_type(statement, 4) != SQLITE_TEXT) {
        return makeError(row_name + "stored row has columns of the wrong type");
      }
      const nlohmann::json doc = nlohmann::json::parse(columnText(statement, 4), nullptr,
                                                       /*allow_exceptions=*/false);
      if (doc.is_discarded()) {
        return makeError(row_name + "stored grant is not valid JSON");
      }
      Result<JsonRow> row =
          control::decodeObject<JsonRow>(doc, control::Unknown::Ignore, "stored grant");
      if (!row) {
        return makeError(row_name + "stored grant is unreadable: " + row.error().message);
      }
      Grant& grant = row->grant;
      grant.flow_id = flow_id;
      grant.expires_at_ms = fromSql(sqlite3_column_int64(statement, 1));
      grant.client_id = columnText(statement, 2);
      grant.request_id = columnText(statement, 3);
      grants.push_back(std::move(grant));
    }
    if (rc != SQLITE_DONE) {
      return sqliteError(what + "reading grants");
    }
  }
  for (const char* sql : {"ALTER TABLE grants RENAME TO grants_json", kCreateGrantsSql}) {
    if (Result<void> r = exec(sql, "upgrading the schema"); !r) {
      return r;
    }
  }
  {
    Result<StatementPtr> insert = prepare(insertGrantSql().c_str());
    if (!insert) {
      return makeError(what + insert.error().message);
    }
    for (const Grant& grant : grants) {
      ResetOnExit reset(insert->get());
      if (bindGrant(insert->get(), grant) != SQLITE_OK ||
          sqlite3_step(insert->get()) != SQLITE_DONE) {
        return sqliteError(what + "writing flow " + std::to_string(grant.flow_id));
      }
    }
  }
  if (Result<void> r = exec("DROP TABLE grants_json", "upgrading the schema"); !r) {
    return r;
  }
  return exec("UPDATE schema_version SET version = 3", "upgrading the schema");
}

Result<void> ReservationStore::addFlowIds() {
  return exec(
      "CREATE TABLE flow_ids (next INTEGER NOT NULL);"
      "INSERT INTO flow_ids (next) SELECT coalesce(max(flow_id), 0) + 1 FROM grants;"
      "UPDATE schema_version SET version = 4;",
      "upgrading the schema to version 4");
}

Result<void> ReservationStore::prepareStatements() {
  // Preparing against the grants table also verifies its columns.
  struct Entry {
    StatementPtr* slot;
    const char* sql;
  };
  const Entry entries[] = {
      {&put_, insertGrantSql().c_str()},
      {&delete_, "DELETE FROM grants WHERE flow_id = ?1"},
      {&begin_, "BEGIN IMMEDIATE"},
      {&commit_, "COMMIT"},
      {&rollback_, "ROLLBACK"},
      {&select_all_, selectGrantsSql().c_str()},
      {&raise_next_id_, "UPDATE flow_ids SET next = ?1 WHERE next < ?1"},
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
  // Copied here, outside the lock; bound to the statement by the commit.
  Grant stored = storedFields(grant);
  const std::lock_guard<std::mutex> lock(staged_mutex_);
  staged_.next_flow_id = std::max(staged_.next_flow_id, grant.flow_id + 1);
  staged_.grants[grant.flow_id] = std::move(stored);
}

void ReservationStore::stageDelete(uint64_t flow_id) {
  const std::lock_guard<std::mutex> lock(staged_mutex_);
  staged_.grants[flow_id] = std::nullopt;
}

size_t ReservationStore::stagedCount() const {
  const std::lock_guard<std::mutex> lock(staged_mutex_);
  return staged_.size();
}

uint64_t ReservationStore::nextFlowId() const {
  const std::lock_guard<std::mutex> lock(db_mutex_);
  return next_flow_id_;
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
  std::swap(staged, staged_);
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

  for (const auto& [flow_id, grant] : staged.grants) {
    sqlite3_stmt* statement = grant ? put_.get() : delete_.get();
    ResetOnExit reset(statement);
    int rc =
        grant ? bindGrant(statement, *grant) : sqlite3_bind_int64(statement, 1, toSql(flow_id));
    if (rc == SQLITE_OK) {
      rc = sqlite3_step(statement);
    }
    if (rc != SQLITE_DONE) {
      return rollBack(sqliteError(what + " failed " + (grant ? "writing" : "deleting") + " flow " +
                                  std::to_string(flow_id)));
    }
  }

  if (staged.next_flow_id > next_flow_id_) {
    ResetOnExit reset(raise_next_id_.get());
    if (sqlite3_bind_int64(raise_next_id_.get(), 1, toSql(staged.next_flow_id)) != SQLITE_OK ||
        sqlite3_step(raise_next_id_.get()) != SQLITE_DONE) {
      return rollBack(sqliteError(what + " failed writing the next flow id"));
    }
  }

  if (before_commit_hook_) {
    before_commit_hook_();
  }
  ResetOnExit reset(commit_.get());
  if (sqlite3_step(commit_.get()) != SQLITE_DONE) {
    return rollBack(sqliteError(what + " failed at COMMIT"));
  }
  next_flow_id_ = std::max(next_flow_id_, staged.next_flow_id);
  return {};
}

Result<std::vector<Grant>> ReservationStore::loadAll() const {
  const std::lock_guard<std::mutex> db_lock(db_mutex_);
  sqlite3_stmt* statement = select_all_.get();
  ResetOnExit reset(statement);
  std::vector<Grant> grants;
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(statement)) == SQLITE_ROW) {
    Result<Grant> grant = readGrantRow(statement);
    if (!grant) {
      return makeError("reservation store " + path_ + ": flow " +
                       std::to_string(fromSql(sqlite3_column_int64(statement, 0))) + ": " +
                       grant.error().message);
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
