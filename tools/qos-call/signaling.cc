#include "tools/qos-call/signaling.h"

#include <array>
#include <charconv>

namespace qos::call {
namespace {

constexpr std::array<std::string_view, 7> kVerbs = {"INVITE", "OK",     "ACK", "ACK-OK",
                                                    "BYE",    "BYE-OK", "BUSY"};
constexpr size_t kMaxLine = 512;

}  // namespace

std::string formatMessage(const Message& message) {
  std::string line = message.verb + " call=" + message.call_id;
  for (const auto& [key, value] : message.fields) {
    line.append(" ").append(key).append("=").append(value);
  }
  return line;
}

Result<Message> parseMessage(std::string_view line) {
  if (line.size() > kMaxLine) {
    return makeError(ErrorCode::Invalid, "a line of " + std::to_string(line.size()) +
                                             " bytes (at most " + std::to_string(kMaxLine) + ")");
  }
  Message message;
  size_t pos = 0;
  bool first = true;
  while (pos < line.size()) {
    const size_t end = std::min(line.find(' ', pos), line.size());
    const std::string_view word = line.substr(pos, end - pos);
    pos = end + 1;
    if (word.empty()) {
      continue;
    }
    if (first) {
      first = false;
      bool known = false;
      for (std::string_view verb : kVerbs) {
        known = known || verb == word;
      }
      if (!known) {
        return makeError(ErrorCode::Invalid, "unknown message '" + std::string(word) + "'");
      }
      message.verb = std::string(word);
      continue;
    }
    const size_t eq = word.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return makeError(ErrorCode::Invalid, "'" + std::string(word) + "' is not KEY=VALUE");
    }
    const std::string key(word.substr(0, eq));
    const std::string value(word.substr(eq + 1));
    if (key == "call") {
      message.call_id = value;
    } else {
      message.fields[key] = value;
    }
  }
  if (message.verb.empty()) {
    return makeError(ErrorCode::Invalid, "an empty message");
  }
  if (message.call_id.empty()) {
    return makeError(ErrorCode::Invalid, message.verb + " without call=ID");
  }
  return message;
}

std::string formatEndpoint(const Endpoint& endpoint) {
  const std::string address = formatIpAddress(endpoint.address);
  const bool v6 = address.find(':') != std::string::npos;
  return (v6 ? "[" + address + "]" : address) + ":" + std::to_string(endpoint.port);
}

Result<Endpoint> parseEndpoint(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    const size_t close = text.find("]:");
    if (close == std::string_view::npos) {
      return makeError(ErrorCode::Invalid, "'" + std::string(text) + "' is not [ADDR]:PORT");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return makeError(ErrorCode::Invalid, "'" + std::string(text) + "' is not ADDR:PORT");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  Result<IpAddress> address = parseIpAddress(host);
  if (!address) {
    return address.error();
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
    return makeError(ErrorCode::Invalid, "port '" + std::string(port) + "' is not 1..65535");
  }
  return Endpoint{*address, static_cast<uint16_t>(value)};
}

Result<uint64_t> numberField(const Message& message, const std::string& key, uint64_t max) {
  auto it = message.fields.find(key);
  if (it == message.fields.end()) {
    return makeError(ErrorCode::Invalid, message.verb + " without " + key + "=");
  }
  uint64_t value = 0;
  const std::string& text = it->second;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > max) {
    return makeError(ErrorCode::Invalid,
                     key + "=" + text + " is not a number up to " + std::to_string(max));
  }
  return value;
}

}  // namespace qos::call
