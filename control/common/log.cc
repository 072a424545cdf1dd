#include "control/common/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>

namespace qos::log {
namespace {

std::mutex g_mutex;
std::string g_program = "qos";
std::atomic<Level> g_level{Level::Info};

const char* levelName(Level level) {
  switch (level) {
    case Level::Debug:
      return "debug";
    case Level::Info:
      return "info";
    case Level::Warning:
      return "warning";
    case Level::Error:
      return "error";
  }
  return "?";
}

}  // namespace

void setProgram(std::string_view program) {
  const std::lock_guard lock(g_mutex);
  g_program = program;
}

void setLevel(Level level) { g_level.store(level, std::memory_order_relaxed); }

void write(Level level, std::string_view message) {
  if (level < g_level.load(std::memory_order_relaxed)) {
    return;
  }
  const std::lock_guard lock(g_mutex);
  std::fprintf(stderr, "%s: %s: %.*s\n", g_program.c_str(), levelName(level),
               static_cast<int>(message.size()), message.data());
}

}  // namespace qos::log
