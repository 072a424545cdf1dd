#include "control/protocol/envelope.h"

#include <array>
#include <exception>
#include <string>
#include <utility>

#include "control/protocol/json_writer.h"

namespace qos::control {
namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 5> kEnvelopeCodes = {
    kCodeTooLarge, kCodeTooDeep, kCodeBadJson, kCodeBadEnvelope, kCodeBadVersion};

Error codeError(std::string_view code, const std::string& detail) {
  return makeError(std::string(code) + ": " + detail);
}

/** Serializes without ever throwing on invalid UTF-8 (replaced by U+FFFD). */
std::string dumpJson(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

/**
 * True if arrays and objects in @p text never nest deeper than @p max_depth.
 * Brackets inside strings do not count.  For valid JSON this is the exact
 * depth; for invalid JSON the parser stops at the first bad token, and up to
 * there it agrees with this scan, so it never goes deeper than measured here.
 */
bool nestingWithin(std::string_view text, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > max_depth) {
          return false;
        }
        break;
      case ']':
      case '}':
        if (depth > 0) {
          --depth;
        }
        break;
      default:
        break;
    }
  }
  return true;
}

/** Size check, depth scan, then a parse that cannot throw. */
Result<json> parseBounded(std::string_view bytes, size_t max_bytes, std::string_view what) {
  if (bytes.size() > max_bytes) {
    return codeError(kCodeTooLarge, std::string(what) + " of " + std::to_string(bytes.size()) +
                                        " bytes exceeds the limit of " + std::to_string(max_bytes) +
                                        " bytes");
  }
  if (!nestingWithin(bytes, kMaxNestingDepth)) {
    return codeError(kCodeTooDeep, std::string(what) + " nests arrays/objects deeper than " +
                                       std::to_string(kMaxNestingDepth) + " levels");
  }
  json doc;
  try {
    doc = json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  } catch (const std::exception& e) {
    // Only allocation failures can get here; the parser reports syntax errors
    // by returning a discarded value.
    return codeError(kCodeBadJson, std::string(what) + " could not be parsed: " + e.what());
  }
  if (doc.is_discarded()) {
    return codeError(kCodeBadJson, std::string(what) + " is not valid JSON");
  }
  if (!doc.is_object()) {
    return codeError(kCodeBadEnvelope, std::string(what) + " is not a JSON object");
  }
  return doc;
}

/** Checks "v": present, an integer, and the version we speak. */
Result<void> checkVersion(const json& doc) {
  const auto it = doc.find("v");
  if (it == doc.end()) {
    return codeError(kCodeBadEnvelope, "missing \"v\" (protocol version)");
  }
  if (!it->is_number_integer()) {
    return codeError(kCodeBadEnvelope, "\"v\" must be an integer");
  }
  const bool ours = it->is_number_unsigned()
                        ? it->get<uint64_t>() == static_cast<uint64_t>(kProtocolVersion)
                        : it->get<int64_t>() == kProtocolVersion;
  if (!ours) {
    return codeError(kCodeBadVersion,
                     "protocol version " + dumpJson(*it) +
                         " is not supported; supported: " + std::to_string(kProtocolVersion));
  }
  return {};
}

/** Reads a required string member into @p out. */
Result<void> readString(const json& doc, const char* key, bool allow_empty, std::string& out) {
  const auto it = doc.find(key);
  if (it == doc.end()) {
    return codeError(kCodeBadEnvelope, std::string("missing \"") + key + "\"");
  }
  if (!it->is_string()) {
    return codeError(kCodeBadEnvelope, std::string("\"") + key + "\" must be a string");
  }
  out = it->get<std::string>();
  if (!allow_empty && out.empty()) {
    return codeError(kCodeBadEnvelope, std::string("\"") + key + "\" must not be empty");
  }
  return {};
}

/** Moves the optional "body" member into @p out; absent reads as {}. */
Result<void> readBody(json& doc, json& out) {
  const auto it = doc.find("body");
  if (it == doc.end()) {
    out = json::object();
    return {};
  }
  if (!it->is_object()) {
    return codeError(kCodeBadEnvelope, "\"body\" must be an object");
  }
  out = std::move(*it);
  return {};
}

const json& bodyOrEmpty(const json& body) {
  static const json kEmpty = json::object();
  return body.is_null() ? kEmpty : body;
}

}  // namespace

const char* replyStatusName(ReplyStatus status) {
  switch (status) {
    case ReplyStatus::Ok:
      return "ok";
    case ReplyStatus::Denied:
      return "denied";
    case ReplyStatus::Error:
      return "error";
  }
  return "error";
}

Result<Request> decodeRequest(std::string_view bytes) {
  Result<json> parsed = parseBounded(bytes, kMaxMessageBytes, "request");
  if (!parsed) {
    return parsed.error();
  }
  json& doc = *parsed;
  if (Result<void> version = checkVersion(doc); !version) {
    return version.error();
  }
  Request request;
  if (Result<void> r = readString(doc, "type", false, request.type); !r) {
    return r.error();
  }
  if (Result<void> r = readString(doc, "id", false, request.id); !r) {
    return r.error();
  }
  if (Result<void> r = readBody(doc, request.body); !r) {
    return r.error();
  }
  return request;
}

std::string encodeRequest(const Request& request) {
  std::string out;
  JsonWriter w(out);
  w.beginObject();
  w.member("v", static_cast<uint64_t>(kProtocolVersion));
  w.member("type", request.type);
  w.member("id", request.id);
  w.key("body");
  w.raw(!request.body_json.empty() ? request.body_json : dumpJson(bodyOrEmpty(request.body)));
  w.endObject();
  return out;
}

std::string encodeReply(const Reply& reply) {
  std::string out;
  encodeReply(reply, out);
  return out;
}

void encodeReply(const Reply& reply, std::string& out) {
  out.clear();
  out.reserve(128 + reply.body_json.size());
  JsonWriter w(out);
  w.beginObject();
  w.member("v", static_cast<uint64_t>(kProtocolVersion));
  w.member("type", "reply");
  w.member("id", reply.id);
  w.member("status", replyStatusName(reply.status));
  if (reply.status != ReplyStatus::Ok) {
    w.key("error");
    w.beginObject();
    w.member("code", reply.error.code);
    w.member("message", reply.error.message);
    w.endObject();
  }
  w.key("body");
  w.raw(!reply.body_json.empty() ? reply.body_json : dumpJson(bodyOrEmpty(reply.body)));
  w.endObject();
}

Result<Reply> decodeReply(std::string_view bytes) {
  Result<json> parsed = parseBounded(bytes, kMaxReplyBytes, "reply");
  if (!parsed) {
    return parsed.error();
  }
  json& doc = *parsed;
  if (Result<void> version = checkVersion(doc); !version) {
    return version.error();
  }
  std::string type;
  if (Result<void> r = readString(doc, "type", false, type); !r) {
    return r.error();
  }
  if (type != "reply") {
    return codeError(kCodeBadEnvelope,
                     "\"type\" of a reply must be \"reply\", not \"" + type + "\"");
  }
  Reply reply;
  if (Result<void> r = readString(doc, "id", true, reply.id); !r) {
    return r.error();
  }
  std::string status;
  if (Result<void> r = readString(doc, "status", false, status); !r) {
    return r.error();
  }
  if (status == "ok") {
    reply.status = ReplyStatus::Ok;
  } else if (status == "denied") {
    reply.status = ReplyStatus::Denied;
  } else if (status == "error") {
    reply.status = ReplyStatus::Error;
  } else {
    return codeError(kCodeBadEnvelope,
                     "\"status\" must be \"ok\", \"denied\" or \"error\", not \"" + status + "\"");
  }
  if (reply.status != ReplyStatus::Ok) {
    const auto it = doc.find("error");
    if (it == doc.end() || !it->is_object()) {
      return codeError(kCodeBadEnvelope,
                       "a reply with status \"" + status + "\" must carry an \"error\" object");
    }
    if (Result<void> r = readString(*it, "code", false, reply.error.code); !r) {
      return codeError(kCodeBadEnvelope, "\"error\": " + wireErrorOf(r.error()).message);
    }
    if (Result<void> r = readString(*it, "message", true, reply.error.message); !r) {
      return codeError(kCodeBadEnvelope, "\"error\": " + wireErrorOf(r.error()).message);
    }
  }
  if (Result<void> r = readBody(doc, reply.body); !r) {
    return r.error();
  }
  return reply;
}

WireError wireErrorOf(const Error& error) {
  const std::string& text = error.message;
  const size_t colon = text.find(": ");
  if (colon != std::string::npos) {
    const std::string_view code(text.data(), colon);
    for (const std::string_view known : kEnvelopeCodes) {
      if (code == known) {
        return WireError{std::string(code), text.substr(colon + 2)};
      }
    }
  }
  return WireError{"internal", text};
}

Reply decodeFailureReply(std::string_view bytes, const Error& error) {
  Reply reply;
  reply.status = ReplyStatus::Error;
  reply.error = wireErrorOf(error);
  // Best effort: only a document that parses within the same limits can give
  // back its id.  This runs on the failure path only.
  Result<json> parsed = parseBounded(bytes, kMaxMessageBytes, "request");
  if (parsed) {
    const auto it = parsed->find("id");
    if (it != parsed->end() && it->is_string()) {
      reply.id = it->get<std::string>();
    }
  }
  return reply;
}

}  // namespace qos::control
