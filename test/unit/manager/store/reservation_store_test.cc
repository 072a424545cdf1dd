#include "manager/store/reservation_store.h"

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control/common/ip_prefix.h"
#include "control/protocol/fields.h"

namespace qos::manager {
namespace {

/**
 * A grant as loadAll() returns it: every field the store keeps set, and the
 * ones AdmissionEngine::restore() derives (dscp, path, meter) left empty.
 */
Grant makeGrant(uint64_t flow_id) {
  Grant grant;
  grant.flow_id = flow_id;
  grant.application = "app-" + std::to_string(flow_id % 7);
  grant.profile_index = flow_id % 3;
  grant.profile = Profile{"EF", 64'000 + flow_id, 1500};
  grant.flow.src = *parseIpAddress("198.18.1.10");
  grant.flow.dst = *parseIpAddress("198.19.1.20");
  grant.flow.src_port = static_cast<uint16_t>(flow_id % 65536);
  grant.flow.dst_port = 5004;
  grant.flow.protocol = 17;
  grant.bidirectional = flow_id % 2 == 0;
  grant.expires_at_ms = 1'700'000'000'000ULL + flow_id;
  grant.client_id = "host-a";
  grant.request_id = "r-" + std::to_string(flow_id);
  return grant;
}

/** makeGrant() with the derived fields a live grant has. */
Grant makeFullGrant(uint64_t flow_id) {
  Grant grant = makeGrant(flow_id);
  grant.dscp = 46;
  grant.path = {"site-a", "wan", "site-b"};
  if (grant.bidirectional) {
    grant.reverse_dscp = 46;
    grant.reverse_path = {"site-b", "wan", "site-a"};
  }
  grant.meter = MeterParams{8'000 + flow_id, 1500, 1500};
  return grant;
}

/** Runs SQL on the store's file through a separate connection, as an operator or a fault would. */
void rawSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* message = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message);
  EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (message != nullptr ? message : "");
  sqlite3_free(message);
  sqlite3_close(db);
}

class ReservationStoreTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::string dir_template = ::testing::TempDir() + "reservation_store_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir_template.data()), nullptr) << std::strerror(errno);
    dir_ = dir_template;
    path_ = dir_ + "/store.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<ReservationStore> openOrDie() {
    Result<std::unique_ptr<ReservationStore>> store = ReservationStore::open(path_);
    EXPECT_TRUE(store.ok()) << store.error().message;
    return store.ok() ? std::move(*store) : nullptr;
  }

  std::vector<Grant> loadOrDie(const ReservationStore& store) {
    Result<std::vector<Grant>> grants = store.loadAll();
    EXPECT_TRUE(grants.ok()) << grants.error().message;
    return grants.ok() ? std::move(*grants) : std::vector<Grant>{};
  }

  std::string dir_;
  std::string path_;
};

TEST_F(ReservationStoreTest, PutCommitLoadAcrossReopen) {
  {
    auto store = openOrDie();
    ASSERT_NE(store, nullptr);
    EXPECT_TRUE(loadOrDie(*store).empty());
    store->stagePut(makeGrant(3));
    store->stagePut(makeGrant(1));
    store->stagePut(makeGrant(2));
    EXPECT_EQ(store->stagedCount(), 3U);
    // Staged is not stored.
    EXPECT_TRUE(loadOrDie(*store).empty());
    ASSERT_TRUE(store->commit().ok());
    EXPECT_EQ(store->stagedCount(), 0U);
    EXPECT_TRUE(std::filesystem::exists(path_ + "-wal")) << "the store runs in WAL mode";
  }
  auto store = openOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(loadOrDie(*store), (std::vector<Grant>{makeGrant(1), makeGrant(2), makeGrant(3)}));
}

/** One integer a query on the store's file returns. */
int64_t queryInt(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &statement, nullptr), SQLITE_OK) << sql;
  EXPECT_EQ(sqlite3_step(statement), SQLITE_ROW) << sql;
  const int64_t value = sqlite3_column_int64(statement, 0);
  sqlite3_finalize(statement);
  sqlite3_close(db);
  return value;
}

TEST_F(ReservationStoreTest, KeepsWhatRestoreNeedsAndNotWhatItDerives) {
  constexpr uint64_t kCount = 10'000;
  auto store = openOrDie();
  ASSERT_NE(store, nullptr);
  std::vector<Grant> expected;
  for (uint64_t id = 1; id <= kCount; ++id) {
    store->stagePut(makeFullGrant(id));
    expected.push_back(makeGrant(id));
  }
  ASSERT_TRUE(store->commit().ok());
  EXPECT_EQ(loadOrDie(*store), expected);
  // Every byte of a row is written twice (log, checkpoint): rows stay small.
  // A JSON row took about 250 bytes; plain columns take under 100.
  const int64_t bytes = queryInt(path_, "PRAGMA page_count") * queryInt(path_, "PRAGMA page_size");
  EXPECT_LT(bytes / static_cast<int64_t>(kCount), 100) << bytes << " bytes for " << kCount;
  EXPECT_EQ(queryInt(path_, "SELECT length(src) FROM grants WHERE flow_id = 1"), 4);
}

/** A file of an older schema, with the grants table it had (one JSON column). */
void writeJsonSchemaFile(const std::string& path, int version, const std::string& rows_sql) {
  rawSql(path,
         "PRAGMA journal_mode=WAL;"
         "CREATE TABLE schema_version (version INTEGER NOT NULL);"
         "INSERT INTO schema_version (version) VALUES (" +
             std::to_string(version) +
             ");"
             "CREATE TABLE grants (flow_id INTEGER PRIMARY KEY, expires_at_ms INTEGER NOT NULL,"
             " client_id TEXT NOT NULL, request_id TEXT NOT NULL, grant_json TEXT NOT NULL);" +
             rows_sql);
}

/** makeGrant(id) as schema version 2 stored it. */
std::string version2Row(uint64_t id) {
  const Grant g = makeGrant(id);
  return "INSERT INTO grants VALUES (" + std::to_string(id) + ", " +
         std::to_string(g.expires_at_ms) + ", 'host-a', 'r-" + std::to_string(id) +
         "', '{\"app\":\"" + g.application +
         "\",\"profile_index\":" + std::to_string(g.profile_index) +
         ",\"profile\":{\"class\":\"EF\",\"rate_bps\":" + std::to_string(g.profile.rate_bps) +
         ",\"burst_bytes\":1500},\"src\":\"198.18.1.10\",\"sport\":" +
         std::to_string(g.flow.src_port) +
         ",\"dst\":\"198.19.1.20\",\"dport\":5004,\"proto\":\"udp\",\"bidir\":" +
         (g.bidirectional ? "true" : "false") + "}');";
}

// Files written by the older schemas (the whole grant, or its stored
// members, as JSON) are upgraded to columns when opened, so an older qosmgr
// then refuses them.
TEST_F(ReservationStoreTest, UpgradesSchemaVersions1And2) {
  const Grant full = makeFullGrant(4);
  for (const int version : {1, 2}) {
    SCOPED_TRACE("version " + std::to_string(version));
    std::filesystem::remove(path_);
    writeJsonSchemaFile(
        path_, version,
        version == 1 ? "INSERT INTO grants VALUES (4, " + std::to_string(full.expires_at_ms) +
                           ", 'host-a', 'r-4', '" + control::encodeObject(full) + "');"
                     : version2Row(4) + version2Row(5));
    {
      auto store = openOrDie();
      ASSERT_NE(store, nullptr);
      const std::vector<Grant> expected = version == 1
                                              ? std::vector<Grant>{makeGrant(4)}
                                              : std::vector<Grant>{makeGrant(4), makeGrant(5)};
      EXPECT_EQ(loadOrDie(*store), expected);
      store->stagePut(makeGrant(6));
      ASSERT_TRUE(store->commit().ok());
    }
    EXPECT_EQ(queryInt(path_, "SELECT version FROM schema_version"),
              ReservationStore::kSchemaVersion);
    EXPECT_EQ(queryInt(path_, "SELECT count(*) FROM sqlite_master WHERE name = 'grants_json'"), 0);
    EXPECT_EQ(queryInt(path_, "SELECT length(dst) FROM grants WHERE flow_id = 4"), 4);
  }
}

// An old row that cannot be read refuses the upgrade, naming the flow, and
// leaves the file as it was.
TEST_F(ReservationStoreTest, UnreadableOldRowRefusesTheUpgradeAndChangesNothing) {
  struct Case {
    std::string row_sql;
    const char* expected;
  };
  for (const Case& c : {
           Case{"UPDATE grants SET grant_json = '{not json' WHERE flow_id = 5",
                "flow 5: stored grant is not valid JSON"},
           Case{"UPDATE grants SET grant_json = json_set(grant_json, '$.sport', 'x') "
                "WHERE flow_id = 5",
                "flow 5: stored grant is unreadable: sport: "},
           Case{"UPDATE grants SET grant_json = json_remove(grant_json, '$.profile') "
                "WHERE flow_id = 5",
                "flow 5: stored grant is unreadable: profile: missing"},
           Case{"UPDATE grants SET expires_at_ms = 'soon' WHERE flow_id = 5",
                "flow 5: stored row has columns of the wrong type"},
       }) {
    std::filesystem::remove(path_);
    writeJsonSchemaFile(path_, 2, version2Row(4) + version2Row(5) + c.row_sql);
    const Result<std::unique_ptr<ReservationStore>> store = ReservationStore::open(path_);
    ASSERT_FALSE(store.ok()) << c.row_sql;
    EXPECT_NE(store.error().message.find("upgrading from schema version 2: "), std::string::npos)
        << store.error().message;
    EXPECT_NE(store.error().message.find(c.expected), std::string::npos) << store.error().message;
    EXPECT_EQ(queryInt(path_, "SELECT version FROM schema_version"), 2);
    EXPECT_EQ(queryInt(path_, "SELECT count(*) FROM grants WHERE grant_json IS NOT NULL"), 2);
  }
}

// Flow ids are never handed out twice: the highest ever staged is kept,
// across reopening, even when its grant was deleted before any commit.
TEST_F(ReservationStoreTest, FlowIdsAreNeverReusedAcrossRestarts) {
  {
    auto store = openOrDie();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->nextFlowId(), 1U);
    store->stagePut(makeGrant(7));
    ASSERT_TRUE(store->commit().ok());
    EXPECT_EQ(store->nextFlowId(), 8U);
    store->stagePut(makeGrant(12));
    store->stageDelete(12);  // granted and released within one batch
    store->stageDelete(7);
    ASSERT_TRUE(store->commit().ok());
    EXPECT_TRUE(loadOrDie(*store).empty());
    EXPECT_EQ(store->nextFlowId(), 13U);
    store->stagePut(makeGrant(3));  // lower: does not lower it
    ASSERT_TRUE(store->commit().ok());
    EXPECT_EQ(store->nextFlowId(), 13U);
  }
  auto reopened = openOrDie();
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->nextFlowId(), 13U);
}

// A version 3 file had no record of released ids: it numbers on from its
// highest stored flow, as it did.
TEST_F(ReservationStoreTest, UpgradesSchemaVersion3) {
  {
    auto store = openOrDie();
    ASSERT_NE(store, nullptr);
    store->stagePut(makeGrant(41));
    store->stagePut(makeGrant(5));
    ASSERT_TRUE(store->commit().ok());
  }
  rawSql(path_, "DROP TABLE flow_ids; UPDATE schema_version SET version = 3;");
  auto upgraded = openOrDie();
  ASSERT_NE(upgraded, nullptr);
  EXPECT_EQ(upgraded->nextFlowId(), 42U);
  EXPECT_EQ(loadOrDie(*upgraded).size(), 2U);
}

TEST_F(ReservationStoreTest, PutReplacesAndDeleteRemoves) {
  auto store = openOrDie();
  ASSERT_NE(store, nullptr);
  for (uint64_t id = 1; id <= 5; ++id) {
    store->stagePut(makeGrant(id));
  }
  ASSERT_TRUE(store->commit().ok());

  Grant refreshed = makeGrant(2);
  refreshed.expires_at_ms += 60'000;
  store->stagePut(refreshed);
  store->stageDelete(4);
  store->stageDelete(99);  // Not stored: no error.
  store->stagePut(makeGrant(6));
  store->stageDelete(6);  // Last change for a flow wins.
  EXPECT_EQ(store->stagedCount(), 4U);
  ASSERT_TRUE(store->commit().ok());

  EXPECT_EQ(loadOrDie(*store),
            (std::vector<Grant>{makeGrant(1), refreshed, makeGrant(3), makeGrant(5)}));
  EXPECT_TRUE(store->commit().ok()) << "nothing staged is fine";
}

TEST_F(ReservationStoreTest, GroupCommitOfTenThousandPuts) {
  constexpr uint64_t kCount = 10'000;
  auto store = openOrDie();
  ASSERT_NE(store, nullptr);
  std::vector<Grant> expected;
  for (uint64_t id = 1; id <= kCount; ++id) {
    expected.push_back(makeGrant(id));
    store->stagePut(expected.back());
  }
  EXPECT_EQ(store->stagedCount(), kCount);
  ASSERT_TRUE(store->commit().ok());
  store.reset();
  store = openOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(loadOrDie(*store), expected);
}

// Under constant commits the log is reused from its start only if someone
// forces it (RESTART): without that it grows without end.  Small limits here
// stand in for the default 8000 pages, so the test writes little.
TEST_F(ReservationStoreTest, BackgroundCheckpointsKeepTheLogBounded) {
  constexpr int kRestartPages = 200;
  constexpr uint64_t kCommits = 400;
  constexpr uint64_t kPerCommit = 40;  // about 5 leaf pages per commit, 2000 pages in all
  Result<std::unique_ptr<ReservationStore>> opened =
      ReservationStore::open(path_, WalCheckpointer::Limits{50, kRestartPages});
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto store = std::move(*opened);
  std::vector<Grant> expected;
  uint64_t id = 0;
  for (uint64_t c = 0; c < kCommits; ++c) {
    for (uint64_t k = 0; k < kPerCommit; ++k) {
      expected.push_back(makeGrant(++id));
      store->stagePut(expected.back());
    }
    // Churn, as releases do: every commit also deletes an older flow.
    if (c % 2 == 1) {
      const uint64_t gone = expected.front().flow_id;
      expected.erase(expected.begin());
      store->stageDelete(gone);
    }
    ASSERT_TRUE(store->commit().ok());
  }
  const WalCheckpointer::Counts counts = store->checkpointCounts();
  EXPECT_GT(counts.checkpoints, 0U);
  EXPECT_GT(counts.restarts, 0U) << "the log was never restarted";
  // Restarted at kRestartPages, plus what commits add while a restart waits.
  const auto log_bytes = std::filesystem::file_size(path_ + "-wal");
  EXPECT_LT(log_bytes, uintmax_t{3} * kRestartPages * 4096) << "the log grew without bound";
  EXPECT_EQ(loadOrDie(*store), expected);
  store.reset();
  store = openOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(loadOrDie(*store), expected);
}

TEST_F(ReservationStoreTest, FailedCommitRollsBackWholeBatchAndDropsIt) {
  auto store = openOrDie();
  ASSERT_NE(store, nullptr);
  store->stagePut(makeGrant(1));
  ASSERT_TRUE(store->commit().ok());

  // A fault in the middle of the batch: writing flow 666 fails.
  rawSql(path_,
         "CREATE TRIGGER fail_666 BEFORE INSERT ON grants WHEN NEW.flow_id = 666 "
         "BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
  for (uint64_t id = 600; id <= 700; ++id) {
    store->stagePut(makeGrant(id));
  }
  store->stageDelete(1);
  const Result<void> failed = store->commit();
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message.find("flow 666"), std::string::npos) << failed.error().message;
  EXPECT_NE(failed.error().message.find("injected failure"), std::string::npos)
      << failed.error().message;
  EXPECT_EQ(store->stagedCount(), 0U) << "a failed batch is dropped, not retried";
  EXPECT_EQ(loadOrDie(*store), std::vector<Grant>{makeGrant(1)}) << "nothing of it was kept";

  // The store is usable again at once.
  store->stagePut(makeGrant(2));
  ASSERT_TRUE(store->commit().ok());
  EXPECT_EQ(loadOrDie(*store), (std::vector<Grant>{makeGrant(1), makeGrant(2)}));
}

TEST_F(ReservationStoreTest, InMemoryStore) {
  for (const std::string path : {"", ":memory:"}) {
    Result<std::unique_ptr<ReservationStore>> store = ReservationStore::open(path);
    ASSERT_TRUE(store.ok()) << store.error().message;
    (*store)->stagePut(makeGrant(9));
    ASSERT_TRUE((*store)->commit().ok());
    EXPECT_EQ(loadOrDie(**store), std::vector<Grant>{makeGrant(9)});
  }
}

TEST_F(ReservationStoreTest, FullRangeOfFlowIdsAndTimes) {
  auto store = openOrDie();
  ASSERT_NE(store, nullptr);
  Grant high = makeGrant(1);
  high.flow_id = UINT64_MAX;
  high.expires_at_ms = UINT64_MAX;
  Grant low = makeGrant(0);
  store->stagePut(high);
  store->stagePut(low);
  ASSERT_TRUE(store->commit().ok());
  EXPECT_EQ(loadOrDie(*store), (std::vector<Grant>{low, high}));
}

TEST_F(ReservationStoreTest, RefusesNewerSchema) {
  ASSERT_NE(openOrDie(), nullptr);
  const int newer = ReservationStore::kSchemaVersion + 1;
  rawSql(path_, "UPDATE schema_version SET version = " + std::to_string(newer));
  const Result<std::unique_ptr<ReservationStore>> store = ReservationStore::open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("schema version " + std::to_string(newer) + ", newer"),
            std::string::npos)
      << store.error().message;
}

TEST_F(ReservationStoreTest, RefusesForeignFiles) {
  rawSql(path_, "CREATE TABLE accounts (id INTEGER)");
  const Result<std::unique_ptr<ReservationStore>> foreign = ReservationStore::open(path_);
  ASSERT_FALSE(foreign.ok());
  EXPECT_NE(foreign.error().message.find("not a qosmgr reservation store"), std::string::npos)
      << foreign.error().message;

  const std::string text_file = dir_ + "/notes.txt";
  std::ofstream(text_file) << "these are not the pages you are looking for\n"
                           << std::string(4096, 'x');
  const Result<std::unique_ptr<ReservationStore>> text = ReservationStore::open(text_file);
  ASSERT_FALSE(text.ok());
  EXPECT_NE(text.error().message.find(text_file), std::string::npos) << text.error().message;

  const Result<std::unique_ptr<ReservationStore>> missing_dir =
      ReservationStore::open(dir_ + "/no/such/dir/store.db");
  EXPECT_FALSE(missing_dir.ok());
}

TEST_F(ReservationStoreTest, UnreadableRowIsAnErrorNamingTheFlow) {
  {
    auto store = openOrDie();
    ASSERT_NE(store, nullptr);
    for (uint64_t id = 1; id <= 9; ++id) {
      store->stagePut(makeGrant(id));
    }
    ASSERT_TRUE(store->commit().ok());
  }
  struct Case {
    const char* sql;
    const char* expected;
  };
  for (const Case& c : {
           Case{"UPDATE grants SET expires_at_ms = 'soon' WHERE flow_id = 5",
                "flow 5: stored row has columns of the wrong type"},
           Case{"UPDATE grants SET class = x'4546' WHERE flow_id = 5",
                "flow 5: stored row has columns of the wrong type"},
           Case{"UPDATE grants SET src = x'c612' WHERE flow_id = 5",
                "flow 5: stored row has a value out of range"},
           Case{"UPDATE grants SET dst = '198.19.1.20' WHERE flow_id = 5",
                "flow 5: stored row has a value out of range"},
           Case{"UPDATE grants SET sport = 65536 WHERE flow_id = 5",
                "flow 5: stored row has a value out of range"},
           Case{"UPDATE grants SET bidir = 2 WHERE flow_id = 5",
                "flow 5: stored row has a value out of range"},
           Case{"UPDATE grants SET profile_index = -1 WHERE flow_id = 5",
                "flow 5: stored row has a value out of range"},
       }) {
    const std::string saved = dir_ + "/saved.db";
    std::filesystem::copy_file(path_, saved, std::filesystem::copy_options::overwrite_existing);
    rawSql(path_, c.sql);
    auto store = openOrDie();
    ASSERT_NE(store, nullptr);
    const Result<std::vector<Grant>> grants = store->loadAll();
    ASSERT_FALSE(grants.ok()) << c.sql;
    EXPECT_NE(grants.error().message.find(c.expected), std::string::npos) << grants.error().message;
    store.reset();
    std::filesystem::copy_file(saved, path_, std::filesystem::copy_options::overwrite_existing);
  }
}

// Crash tests: a child process commits, then dies inside a further batch.
// The parent reopens the file and must find exactly what was committed.

enum class Death { Killed, Exited };

/** Reads from @p fd until @p word has been seen; false on EOF first. */
bool readUntil(int fd, const std::string& word, std::string& seen) {
  char buffer[256];
  while (seen.find(word) == std::string::npos) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return false;
    }
    seen.append(buffer, static_cast<size_t>(n));
  }
  return true;
}

void writeAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      _exit(10);
    }
    done += static_cast<size_t>(n);
  }
}

/**
 * In the child: commits flows 1..n_committed in batches of 100, reports
 * "committed", then stages a large batch (replacing, deleting and adding
 * flows, enough to spill uncommitted pages into the WAL) and dies just before
 * its COMMIT.  Never returns.
 */
[[noreturn]] void childCommitsThenDies(const std::string& path, uint64_t n_committed, Death death,
                                       int report_fd) {
  Result<std::unique_ptr<ReservationStore>> opened = ReservationStore::open(path);
  if (!opened) {
    _exit(2);
  }
  ReservationStore& store = **opened;
  for (uint64_t id = 1; id <= n_committed; ++id) {
    store.stagePut(makeGrant(id));
    if (id % 100 == 0 || id == n_committed) {
      if (!store.commit()) {
        _exit(3);
      }
    }
  }
  writeAll(report_fd, "committed\n");
  store.setBeforeCommitHookForTest([death, report_fd] {
    writeAll(report_fd, "writing\n");
    if (death == Death::Exited) {
      _exit(0);
    }
    while (true) {
      pause();  // Until the parent's SIGKILL.
    }
  });
  for (uint64_t id = 1; id <= n_committed; id += 2) {
    Grant changed = makeGrant(id);
    changed.expires_at_ms += 1;
    store.stagePut(changed);
  }
  for (uint64_t id = 2; id <= n_committed; id += 4) {
    store.stageDelete(id);
  }
  for (uint64_t id = n_committed + 1; id <= n_committed + 10'000; ++id) {
    store.stagePut(makeGrant(id));
  }
  static_cast<void>(store.commit());
  _exit(4);  // The hook never lets commit() return.
}

void runCrashTest(const std::string& path, Death death) {
  constexpr uint64_t kCommitted = 1'000;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0) << std::strerror(errno);
  if (child == 0) {
    close(fds[0]);
    childCommitsThenDies(path, kCommitted, death, fds[1]);
  }
  close(fds[1]);
  std::string seen;
  const bool committed = readUntil(fds[0], "committed\n", seen);
  const bool writing = committed && readUntil(fds[0], "writing\n", seen);
  if (death == Death::Killed && writing) {
    ASSERT_EQ(kill(child, SIGKILL), 0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  close(fds[0]);
  ASSERT_TRUE(committed && writing) << "child status " << status << ", said: " << seen;
  if (death == Death::Killed) {
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  } else {
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }

  Result<std::unique_ptr<ReservationStore>> store = ReservationStore::open(path);
  ASSERT_TRUE(store.ok()) << store.error().message;
  Result<std::vector<Grant>> grants = (*store)->loadAll();
  ASSERT_TRUE(grants.ok()) << grants.error().message;
  std::vector<Grant> expected;
  for (uint64_t id = 1; id <= kCommitted; ++id) {
    expected.push_back(makeGrant(id));
  }
  EXPECT_EQ(grants->size(), expected.size());
  EXPECT_TRUE(*grants == expected) << "exactly the committed grants, none of the dead batch";
}

TEST_F(ReservationStoreTest, CrashBySigkillMidBatchKeepsExactlyTheCommitted) {
  runCrashTest(path_, Death::Killed);
}

TEST_F(ReservationStoreTest, ExitMidBatchKeepsExactlyTheCommitted) {
  runCrashTest(path_, Death::Exited);
}

/**
 * SIGKILL at an arbitrary moment while a child commits batch after batch:
 * every batch is on disk whole or not at all, and every batch the child was
 * told about (commit() returned ok before it reported) is there.
 */
TEST_F(ReservationStoreTest, SigkillAtAnyMomentLeavesWholeBatches) {
  constexpr uint64_t kBatch = 50;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    Result<std::unique_ptr<ReservationStore>> opened = ReservationStore::open(path_);
    if (!opened) {
      _exit(2);
    }
    for (uint64_t batch = 0;; ++batch) {
      for (uint64_t i = 0; i < kBatch; ++i) {
        (*opened)->stagePut(makeGrant(batch * kBatch + i + 1));
      }
      if (!(*opened)->commit()) {
        _exit(3);
      }
      writeAll(fds[1], std::to_string(batch) + "\n");
    }
  }
  close(fds[1]);
  std::string seen;
  ASSERT_TRUE(readUntil(fds[0], "\n20\n", seen)) << seen;
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  // Everything the child reported before it died; the last whole line is the
  // last batch whose commit() had returned ok.
  readUntil(fds[0], "\x01never\x01", seen);
  close(fds[0]);
  const size_t last_newline = seen.rfind('\n');
  ASSERT_NE(last_newline, std::string::npos);
  const size_t line_start = seen.rfind('\n', last_newline - 1);
  const size_t number_start = line_start == std::string::npos ? 0 : line_start + 1;
  const uint64_t last_reported =
      std::stoull(seen.substr(number_start, last_newline - number_start));

  Result<std::unique_ptr<ReservationStore>> store = ReservationStore::open(path_);
  ASSERT_TRUE(store.ok()) << store.error().message;
  Result<std::vector<Grant>> grants = (*store)->loadAll();
  ASSERT_TRUE(grants.ok()) << grants.error().message;
  ASSERT_EQ(grants->size() % kBatch, 0U) << "a batch is all or nothing";
  ASSERT_GE(grants->size(), (last_reported + 1) * kBatch) << "every reported batch survives";
  for (size_t i = 0; i < grants->size(); ++i) {
    ASSERT_EQ((*grants)[i], makeGrant(i + 1));
  }
}

}  // namespace
}  // namespace qos::manager
