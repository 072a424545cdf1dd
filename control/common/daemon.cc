#include "control/common/daemon.h"

#include <csignal>
#include <cstdio>
#include <exception>
#include <iostream>
#include <sstream>

#include <boost/program_options.hpp>
#include <signal.h>

#include "control/common/log.h"

namespace qos::daemon {
namespace {

// Set from signal handlers: lock-free atomics are async-signal-safe.
std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};
static_assert(std::atomic<bool>::is_always_lock_free);

void onStop(int /*signal*/) { g_stop.store(true); }
void onReload(int /*signal*/) { g_reload.store(true); }

}  // namespace

void installSignals() {
  struct sigaction sa {};
  sa.sa_handler = onStop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sa.sa_handler = onReload;
  sigaction(SIGHUP, &sa, nullptr);
}

const std::atomic<bool>& stopFlag() { return g_stop; }

void requestStop() { g_stop.store(true); }

bool takeReload() { return g_reload.exchange(false); }

std::variant<Options, int> parseOptions(int argc, char** argv, const Description& description) {
  namespace po = boost::program_options;
  po::options_description desc(description.usage + "\n\nOptions");
  desc.add_options()("help,h", "print this help and exit")(
      "version,V", "print the version and exit")("config,c", po::value<std::string>(),
                                                 "TOML config file (required)")(
      "check-config", "validate the config and exit (0 valid, 2 invalid)")("verbose,v",
                                                                           "log debug messages");
  for (const auto& [name, help] : description.flags) {
    desc.add_options()(name.c_str(), help.c_str());
  }
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << description.program << ": " << e.what() << "\n(try " << description.program
              << " --help)\n";
    return kExitUsage;
  }
  if (vm.count("help") != 0) {
    std::cout << desc << "\n" << description.signals;
    return kExitOk;
  }
  if (vm.count("version") != 0) {
    std::cout << description.version << "\n";
    return kExitOk;
  }
  if (vm.count("verbose") != 0) {
    log::setLevel(log::Level::Debug);
  }
  if (vm.count("config") == 0) {
    std::cerr << description.program << ": --config FILE is required (try " << description.program
              << " --help)\n";
    return kExitUsage;
  }
  Options options{vm["config"].as<std::string>(), vm.count("check-config") != 0, {}};
  for (const auto& [name, help] : description.flags) {
    if (vm.count(name) != 0) {
      options.flags.insert(name);
    }
  }
  return options;
}

int runGuarded(const char* program, const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: internal error: %s\n", program, e.what());
  } catch (...) {
    std::fprintf(stderr, "%s: internal error\n", program);
  }
  return kExitRuntime;
}

}  // namespace qos::daemon
