// ZeroMQ endpoints and file paths as configs give them, checked the same way
// by every daemon.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace qos::config {

/**
 * What is wrong with @p endpoint as a ZeroMQ endpoint (tcp://HOST:PORT,
 * ipc://PATH or inproc://NAME), or nullopt if nothing is.
 */
std::optional<std::string> checkZmqEndpoint(std::string_view endpoint);

/**
 * Whether traffic to or from @p endpoint stays on this machine: ipc:// and
 * inproc://, or tcp:// on a loopback address (127.0.0.0/8, ::1, localhost).
 * Only such endpoints may go without CURVE.
 */
bool isLocalEndpoint(std::string_view endpoint);

/**
 * @p path as written in the config file at @p config_path: an absolute path
 * as it is, a relative one from the config file's directory.
 */
std::string pathFromConfig(const std::string& config_path, const std::string& path);

/**
 * A public key as a config gives it (`manager_public_key`): a file beside
 * the config if one is there (resolved as pathFromConfig() does), else 40
 * Z85 characters are the key itself, else the resolved path, whose absence
 * loading it reports.  A file wins because many paths are 40 Z85 characters.
 */
std::string publicKeyFromConfig(const std::string& config_path, const std::string& value);

/** A peer's or an appliance's name: letters, digits, '-' and '_'. */
bool isPeerName(std::string_view name);

}  // namespace qos::config
