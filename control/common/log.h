// Line-oriented logging for the control side (never the data plane):
// "qosgate: warning: ..." on stderr.  Daemons log to stderr; systemd or the
// caller decides where it goes.
#pragma once

#include <string_view>

namespace qos::log {

enum class Level { Debug, Info, Warning, Error };

/** Sets the program name printed before every line ("qosgate"). */
void setProgram(std::string_view program);
/** Lines below this level are not printed.  Default: Info. */
void setLevel(Level level);

void write(Level level, std::string_view message);
inline void debug(std::string_view message) { write(Level::Debug, message); }
inline void info(std::string_view message) { write(Level::Info, message); }
inline void warning(std::string_view message) { write(Level::Warning, message); }
inline void error(std::string_view message) { write(Level::Error, message); }

}  // namespace qos::log
