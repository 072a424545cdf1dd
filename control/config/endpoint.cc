#include "control/config/endpoint.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <system_error>

#include "control/common/ip_prefix.h"
#include "control/common/port_range.h"

namespace qos::config {

std::optional<std::string> checkZmqEndpoint(std::string_view endpoint) {
  constexpr std::array<std::string_view, 3> kSchemes = {"tcp://", "ipc://", "inproc://"};
  const auto* scheme = std::find_if(kSchemes.begin(), kSchemes.end(),
                                    [&](std::string_view s) { return endpoint.starts_with(s); });
  if (scheme == kSchemes.end()) {
    return "'" + std::string(endpoint) +
           "' is not a ZeroMQ endpoint: expected tcp://HOST:PORT, ipc://PATH or inproc://NAME";
  }
  const std::string_view rest = endpoint.substr(scheme->size());
  if (rest.empty()) {
    return "'" + std::string(endpoint) + "' names no address after " + std::string(*scheme);
  }
  if (*scheme == "tcp://") {
    const size_t colon = rest.rfind(':');
    unsigned port = 0;
    if (colon == std::string_view::npos || colon == 0 ||
        (rest.substr(colon + 1) != "*" &&
         (!parseUnsigned(rest.substr(colon + 1), port) || port > 65535))) {
      return "'" + std::string(endpoint) + "': expected tcp://HOST:PORT (PORT 0..65535 or *)";
    }
  }
  return std::nullopt;
}

bool isLocalEndpoint(std::string_view endpoint) {
  if (endpoint.starts_with("ipc://") || endpoint.starts_with("inproc://")) {
    return true;
  }
  if (!endpoint.starts_with("tcp://")) {
    return false;
  }
  std::string_view host = endpoint.substr(6);
  const size_t colon = host.rfind(':');
  if (colon == std::string_view::npos) {
    return false;
  }
  host = host.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") {
    return true;
  }
  const Result<IpAddress> address = parseIpAddress(host);
  if (!address) {
    return false;  // an interface name or a host name: not provably local
  }
  if (address->family == 4) {
    return address->bytes[0] == 127;
  }
  IpAddress loopback6{};
  loopback6.family = 6;
  loopback6.bytes[15] = 1;
  return *address == loopback6;
}

std::string pathFromConfig(const std::string& config_path, const std::string& path) {
  const std::filesystem::path p(path);
  if (p.is_absolute() || config_path.empty()) {
    return path;
  }
  return (std::filesystem::path(config_path).parent_path() / p).lexically_normal().string();
}

std::string publicKeyFromConfig(const std::string& config_path, const std::string& value) {
  constexpr std::string_view kZ85 =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  const std::string path = pathFromConfig(config_path, value);
  std::error_code no_file;
  const bool key_text = value.size() == 40 && value.find_first_not_of(kZ85) == std::string::npos;
  return key_text && !std::filesystem::exists(path, no_file) ? value : path;
}

bool isPeerName(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
  });
}

}  // namespace qos::config
