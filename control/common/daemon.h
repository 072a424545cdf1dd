// What qosgate and qosmgr share as daemons, and every program as a main():
// the signals they answer, the options they take, the exit codes they use,
// and the last-resort catch around main().
#pragma once

#include <atomic>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace qos::daemon {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRuntime = 1;  ///< failed while running (or an internal error)
inline constexpr int kExitUsage = 2;    ///< bad options or a bad config

/**
 * SIGINT and SIGTERM set stopFlag(); SIGHUP makes the next takeReload()
 * return true.  Call once, before anything that polls them starts.
 */
void installSignals();
/** True once SIGINT or SIGTERM came (or requestStop() was called). */
const std::atomic<bool>& stopFlag();
void requestStop();
/** True if SIGHUP came since the last call. */
bool takeReload();

/** The options both daemons take, once --help, --version and --verbose are dealt with. */
struct Options {
  std::string config_path;
  bool check_config = false;
  std::set<std::string> flags;  ///< the Description's flags given
};

/** What a daemon prints for --help and --version. */
struct Description {
  std::string program;  ///< "qosmgr"
  std::string usage;    ///< first lines of --help, up to "Options"
  std::string signals;  ///< what the signals do, printed after the options
  std::string version;  ///< the --version line
  /// A daemon's own flags without a value, as {"status", "what it does"}.
  std::vector<std::pair<std::string, std::string>> flags = {};
};

/**
 * Parses --help, --version, --config FILE, --check-config and --verbose
 * (which sets the log level to debug) from argv[0..argc).
 * @return the options to go on with, or the exit code once it is done: after
 *         --help or --version (kExitOk), or a usage error (kExitUsage, with
 *         one line on stderr).
 */
std::variant<Options, int> parseOptions(int argc, char** argv, const Description& description);

/**
 * Runs @p body; an exception that escapes it (our code reports failures as
 * values, so only a library's std::bad_alloc or zmq::error_t) ends in one
 * line "PROGRAM: internal error: ..." and kExitRuntime.
 */
int runGuarded(const char* program, const std::function<int()>& body);

}  // namespace qos::daemon
