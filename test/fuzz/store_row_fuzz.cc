// Fuzz target for qosmgr's stored-row readers: a reservation file whose
// grants table holds one row of any values and types (SQLite columns are
// dynamically typed), in the current schema (plain columns) or in schema
// version 2 (the grant as JSON, upgraded when the file is opened).  Opening
// the file and loading its grants gives grants or an error, never a crash.
//
// Input: byte 0 picks the schema; then, for the current one, each of the
// row's 15 columns is a type byte (integer, text, blob, real, null) and its
// value; for version 2, two integers and the rest is the grant's JSON.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include <sqlite3.h>
#include <unistd.h>

#include "manager/store/reservation_store.h"

namespace {

/** Takes bytes from the front of the input. */
struct Input {
  const uint8_t* data;
  size_t size;
  uint8_t byte() {
    if (size == 0) {
      return 0;
    }
    --size;
    return *data++;
  }
  int64_t integer() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) {
      v = (v << 8) | byte();
    }
    return static_cast<int64_t>(v);
  }
  std::string bytes(size_t n) {
    n = std::min(n, size);
    std::string out(reinterpret_cast<const char*>(data), n);
    data += n;
    size -= n;
    return out;
  }
};

void exec(sqlite3* db, const std::string& sql) {
  sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
}

/** Binds one column's value, of the type the input picks. */
void bindColumn(sqlite3_stmt* statement, int index, Input& in) {
  switch (in.byte() % 5) {
    case 0:
      sqlite3_bind_int64(statement, index, in.integer());
      break;
    case 1: {
      const std::string text = in.bytes(in.byte());
      sqlite3_bind_text(statement, index, text.data(), static_cast<int>(text.size()),
                        SQLITE_TRANSIENT);
      break;
    }
    case 2: {
      const std::string blob = in.bytes(in.byte() % 24);
      sqlite3_bind_blob(statement, index, blob.data(), static_cast<int>(blob.size()),
                        SQLITE_TRANSIENT);
      break;
    }
    case 3: {
      double d = 0;
      const std::string raw = in.bytes(sizeof d);
      std::memcpy(&d, raw.data(), raw.size());
      sqlite3_bind_double(statement, index, d);
      break;
    }
    default:
      sqlite3_bind_null(statement, index);
      break;
  }
}

void removeFiles(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    unlink((path + suffix).c_str());
  }
}

}  // namespace

// NOLINTNEXTLINE(readability-identifier-naming): the name libFuzzer calls.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/dev/shm/qosgate-store-fuzz-" + std::to_string(getpid());
  removeFiles(path);
  Input in{data, size};
  const bool version2 = (in.byte() & 1) != 0;
  if (!version2) {
    // The current schema, as ReservationStore makes it.
    auto made = qos::manager::ReservationStore::open(path);
    if (!made) {
      std::fprintf(stderr, "store_row_fuzz: cannot make %s: %s\n", path.c_str(),
                   made.error().message.c_str());
      std::abort();
    }
  }
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_stmt* statement = nullptr;
  if (version2) {
    exec(db,
         "CREATE TABLE schema_version (version INTEGER NOT NULL);"
         "INSERT INTO schema_version (version) VALUES (2);"
         "CREATE TABLE grants (flow_id INTEGER PRIMARY KEY, expires_at_ms INTEGER NOT NULL,"
         " client_id TEXT NOT NULL, request_id TEXT NOT NULL, grant_json TEXT NOT NULL);");
    sqlite3_prepare_v2(db, "INSERT INTO grants VALUES (?, ?, 'host-a', 'r-1', ?)", -1, &statement,
                       nullptr);
    sqlite3_bind_int64(statement, 1, in.integer());
    sqlite3_bind_int64(statement, 2, in.integer());
    const std::string json = in.bytes(in.size);
    sqlite3_bind_text(statement, 3, json.data(), static_cast<int>(json.size()), SQLITE_TRANSIENT);
  } else {
    sqlite3_prepare_v2(db, "INSERT INTO grants VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1,
                       &statement, nullptr);
    for (int column = 1; column <= 15; ++column) {
      bindColumn(statement, column, in);
    }
  }
  sqlite3_step(statement);  // a NOT NULL column left null: no row, which is fine too
  sqlite3_finalize(statement);
  sqlite3_close(db);

  if (auto store = qos::manager::ReservationStore::open(path)) {
    static_cast<void>((*store)->loadAll());
  }
  removeFiles(path);
  return 0;
}
