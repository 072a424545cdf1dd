#include "control/protocol/flat_request.h"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>
#include <exception>

#include <simdjson.h>

#include "control/protocol/envelope.h"

namespace qos::control {

/**
 * simdjson's On-Demand parser and the text it reads.  simdjson reads up to
 * SIMDJSON_PADDING bytes past the end of a text, and a ZeroMQ frame has no
 * such slack, so every message is copied here first; both the copy and the
 * parser's own buffers are sized for the longest message seen so far.
 */
class FlatParser {
public:
  /**
   * Copies @p bytes, followed by SIMDJSON_PADDING zero bytes, growing the
   * buffers if this is the longest message yet.  Zeros, not what the
   * previous message left there: whatever simdjson reads past the end (it
   * compares literals such as "null" four bytes at a time) is then the same
   * whatever came before.
   * @return false if memory is short (the general path will say so).
   */
  bool load(std::string_view bytes) noexcept {
    if (text_ == nullptr || bytes.size() > capacity_bytes_) {
      const size_t capacity_bytes = std::max(std::bit_ceil(bytes.size()), kMinCapacityBytes);
      text_.reset(new (std::nothrow) char[capacity_bytes + simdjson::SIMDJSON_PADDING]);
      capacity_bytes_ = 0;
      if (text_ == nullptr || parser_.allocate(capacity_bytes) != simdjson::SUCCESS) {
        return false;
      }
      capacity_bytes_ = capacity_bytes;
    }
    std::memcpy(text_.get(), bytes.data(), bytes.size());
    std::memset(text_.get() + bytes.size(), 0, simdjson::SIMDJSON_PADDING);
    size_bytes_ = bytes.size();
    return true;
  }

  /** Starts reading what load() copied: stage 1 runs here, over the whole text. */
  simdjson::simdjson_result<simdjson::ondemand::document> iterate() noexcept {
    return parser_.iterate(text_.get(), size_bytes_, size_bytes_ + simdjson::SIMDJSON_PADDING);
  }

private:
  // Small messages share one size, so that the first few do not each grow the buffers.
  static constexpr size_t kMinCapacityBytes = 4096;

  simdjson::ondemand::parser parser_;
  std::unique_ptr<char[]> text_;  ///< the message, then SIMDJSON_PADDING zero bytes
  size_t capacity_bytes_ = 0;     ///< longest message text_ and parser_ can take, in bytes
  size_t size_bytes_ = 0;         ///< length of the message in text_, in bytes
};

namespace {

// How the text is read.  simdjson's stage 1 goes over the whole message
// before anything else: it refuses invalid UTF-8, a control character or an
// unclosed string anywhere, and splits the text into tokens (each structural
// character, each string, each run of other non-space bytes), so that any
// byte that is not JSON whitespace starts a token or belongs to one.
// On-Demand then walks the tokens and checks the grammar between them.  We
// read every value (skipping none: a skipped value is not checked) and take
// scalars' text from raw_json_token(), the token and the whitespace after it
// up to the next token.  Only messages without a backslash get this far, so
// no string has an escape: the bytes between its quotes are its value, as
// nlohmann reads it.

using simdjson::SUCCESS;
namespace ondemand = simdjson::ondemand;

/** JSON's whitespace; simdjson and nlohmann both know exactly these four. */
bool isJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/** @p token without the whitespace raw_json_token() keeps after it. */
std::string_view withoutSpaceAfter(std::string_view token) {
  while (!token.empty() && isJsonSpace(token.back())) {
    token.remove_suffix(1);
  }
  return token;
}

/**
 * The key of a member, between the byte after its opening quote (@p start)
 * and the first byte of its value (@p value).  In between there are only
 * the key's closing quote, whitespace and the colon: On-Demand found the
 * colon as the token after the key, and anything else would be a token.
 */
bool keyBefore(const char* start, const char* value, std::string_view& out) {
  const char* at = value;
  while (at != start && isJsonSpace(at[-1])) {
    --at;
  }
  if (at == start || at[-1] != ':') {
    return false;
  }
  --at;
  while (at != start && isJsonSpace(at[-1])) {
    --at;
  }
  if (at == start || at[-1] != '"') {
    return false;
  }
  out = std::string_view(start, static_cast<size_t>(at - 1 - start));
  return true;
}

/**
 * Reads a string value: the bytes between the quotes of its token, which
 * ends with the closing quote since anything after it would be a token.
 */
bool readText(ondemand::value& value, std::string_view& out) {
  const std::string_view token = withoutSpaceAfter(value.raw_json_token());
  if (token.size() < 2 || token.front() != '"' || token.back() != '"') {
    return false;
  }
  out = token.substr(1, token.size() - 2);
  ondemand::raw_json_string raw;
  return value.get_raw_json_string().get(raw) == SUCCESS;  // moves On-Demand past it
}

/**
 * Reads @p value if nlohmann reads it as an unsigned integer.  simdjson's
 * get_uint64() takes exactly those: digits only (-0, 1.0 and 1e2 are a
 * signed integer or a float to nlohmann), no leading zero (invalid JSON), at
 * most 2^64 - 1 (above, a float to nlohmann), followed by whitespace or a
 * structural character.  The tests hold it to each of these.
 */
bool readUnsigned(ondemand::value& value, uint64_t& out) {
  return value.get_uint64().get(out) == SUCCESS;
}

/** Reads a null, a boolean, an unsigned integer or a string into @p out. */
bool readScalar(ondemand::value& value, FlatValue& out) {
  // The first byte says what the value is, as in simdjson's own type().  An
  // object or array here is a nested value: not ours.
  switch (value.raw_json_token()[0]) {
    case 'n': {
      bool is_null = false;
      out.kind = FlatValue::Kind::Null;
      return value.is_null().get(is_null) == SUCCESS && is_null;
    }
    case 't':
    case 'f':
      out.kind = FlatValue::Kind::Bool;
      return value.get_bool().get(out.flag) == SUCCESS;
    case '"': {
      std::string_view text;
      if (!readText(value, text)) {
        return false;
      }
      out.kind = FlatValue::Kind::String;
      out.text.assign(text);
      return true;
    }
    default:
      out.kind = FlatValue::Kind::Unsigned;
      return readUnsigned(value, out.number);
  }
}

/** Reads a request into a FlatRequest; refuses (returns false) anything not flat. */
class FlatReader {
public:
  explicit FlatReader(FlatRequest& out) : out_(out) {}

  /** Reads the whole document, which must be one envelope object and nothing after it. */
  bool read(ondemand::document& doc) {
    ondemand::object envelope;
    if (doc.get_object().get(envelope) != SUCCESS) {
      return false;
    }
    // The field is used in place (value_unsafe() once its error is checked):
    // copying it out costs more than the rest of reading the member.
    for (auto member : envelope) {
      // An error inside the object (a missing comma, a bad token) comes out
      // here, as the next member, even after the last one.
      if (member.error() != SUCCESS) {
        return false;
      }
      ondemand::value& value = member.value_unsafe().value();
      std::string_view key;
      if (!keyBefore(member.value_unsafe().key().raw(), value.raw_json_token().data(), key) ||
          !readEnvelopeMember(key, value)) {
        return false;
      }
    }
    out_.body.resize(used_);  // drops the members of a previous message this one did not reuse
    // Nothing after the object: OUT_OF_BOUNDS is simdjson's "at the end, no error".
    return doc.current_location().error() == simdjson::OUT_OF_BOUNDS && saw_version_ &&
           !out_.type.empty() && !out_.id.empty();
  }

private:
  bool readEnvelopeMember(std::string_view key, ondemand::value& value) {
    if (key == "v") {
      // The version, once, and ours; anything else is the general path's
      // bad_envelope or bad_version.
      uint64_t version = 0;
      if (saw_version_ || !readUnsigned(value, version) ||
          version != static_cast<uint64_t>(kProtocolVersion)) {
        return false;
      }
      saw_version_ = true;
      return true;
    }
    if (key == "type" || key == "id") {
      // nlohmann keeps the last of duplicate keys; rather than follow, refuse.
      std::string& field = key == "type" ? out_.type : out_.id;
      std::string_view text;
      if (!field.empty() || !readText(value, text) || text.empty()) {
        return false;
      }
      field.assign(text);
      return true;
    }
    if (key == "body") {
      if (saw_body_) {
        return false;
      }
      saw_body_ = true;
      return readBody(value);
    }
    // decodeRequest() ignores other members, but only once the whole text
    // has parsed: read this one, to know it is valid.
    return readScalar(value, ignored_);
  }

  bool readBody(ondemand::value& value) {
    ondemand::object body;
    if (value.get_object().get(body) != SUCCESS) {
      return false;  // not an object: bad_envelope on the general path
    }
    for (auto member : body) {
      if (member.error() != SUCCESS) {
        return false;
      }
      ondemand::value& member_value = member.value_unsafe().value();
      std::string_view key;
      if (!keyBefore(member.value_unsafe().key().raw(), member_value.raw_json_token().data(),
                     key) ||
          key.empty() || isDuplicate(key)) {
        return false;
      }
      if (used_ == out_.body.size()) {
        out_.body.emplace_back();
      }
      auto& [name, slot] = out_.body[used_++];
      name.assign(key);
      if (!readScalar(member_value, slot)) {
        return false;
      }
    }
    return true;
  }

  /**
   * True if @p key is one of the body's keys read so far.  A 64-bit summary
   * of those keys spares the comparisons (a memcmp each) unless one of them
   * is likely to match: a body's ten keys would otherwise cost forty-five.
   */
  bool isDuplicate(std::string_view key) {
    const size_t first = static_cast<unsigned char>(key.front());
    const size_t last = static_cast<unsigned char>(key.back());
    const uint64_t bit = uint64_t{1} << ((key.size() * 5 + first + last * 3) % 64);
    const bool maybe_seen = (seen_keys_ & bit) != 0;
    seen_keys_ |= bit;
    if (!maybe_seen) {
      return false;
    }
    for (size_t i = 0; i < used_; ++i) {
      if (out_.body[i].first == key) {
        return true;
      }
    }
    return false;
  }

  FlatRequest& out_;
  FlatValue ignored_;       ///< top-level members decodeRequest() ignores, read only to check them
  size_t used_ = 0;         ///< body slots filled by this message
  uint64_t seen_keys_ = 0;  ///< one bit per body key read, chosen by isDuplicate()
  bool saw_version_ = false;
  bool saw_body_ = false;
};

}  // namespace

FlatRequest::FlatRequest() = default;
FlatRequest::~FlatRequest() = default;
FlatRequest::FlatRequest(FlatRequest&& other) noexcept = default;
FlatRequest& FlatRequest::operator=(FlatRequest&& other) noexcept = default;

// The parser is working memory, not part of the message: a copy gets its own.
FlatRequest::FlatRequest(const FlatRequest& other)
    : type(other.type), id(other.id), body(other.body) {}

FlatRequest& FlatRequest::operator=(const FlatRequest& other) {
  type = other.type;
  id = other.id;
  body = other.body;
  return *this;
}

const FlatValue* FlatRequest::find(std::string_view key) const {
  for (const auto& [name, value] : body) {
    if (name == key) {
      return &value;
    }
  }
  return nullptr;
}

bool decodeFlatRequest(std::string_view bytes, FlatRequest& out) {
  if (bytes.size() > kMaxMessageBytes) {
    return false;
  }
  // A string's escapes are the one place where simdjson and nlohmann each
  // apply their own rules to the same bytes (unescaping, surrogate pairs,
  // \u0000); they agreed on every case tried, but rather than hold that
  // equal as well, a message with a backslash anywhere is not ours.  Clients
  // escape only quotes, backslashes and control characters, which requests
  // hardly hold; and a string without escapes is the bytes between its quotes.
  if (bytes.find('\\') != std::string_view::npos) {
    return false;
  }
  out.type.clear();
  out.id.clear();
  try {
    if (out.parser_ == nullptr) {
      out.parser_ = std::make_unique<FlatParser>();
    }
    ondemand::document doc;
    if (!out.parser_->load(bytes) || out.parser_->iterate().get(doc) != SUCCESS) {
      return false;
    }
    FlatReader reader(out);
    return reader.read(doc);
  } catch (const std::exception&) {
    return false;  // allocation failure: the general path will say so
  }
}

}  // namespace qos::control
