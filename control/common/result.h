// Result<T>: a value or an Error, for failures that are expected (bad config,
// a DPDK call that returns an error, a peer that times out).  C++20 has no
// std::expected; this is the small subset we need.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace qos {

/**
 * What kind of failure an Error is: what its receiver should do about it.
 * Wire error codes ("no_capacity", "bad_json", ...) are finer; each maps to
 * one of these (control/protocol/error_codes.h).
 */
enum class ErrorCode : uint8_t {
  Internal,      ///< a bug, or a failure nobody planned for: report it, do not retry
  Invalid,       ///< the input is wrong (config, message, argument): fix it, do not retry
  NotFound,      ///< what was named does not exist (a flow id that was released)
  Denied,        ///< refused on the merits: no capacity on the path, unknown application
  Unauthorized,  ///< the key is not known, or its role may not do this
  Unavailable,   ///< a peer or resource is not there now (timeout, restart): retry later
};

/** "internal", "invalid", "not_found", "denied", "unauthorized", "unavailable". */
const char* errorCodeName(ErrorCode code);

/** Whether the same request may succeed if it is sent again later, unchanged. */
constexpr bool isRetryable(ErrorCode code) { return code == ErrorCode::Unavailable; }

/** An expected failure: one human-readable line, already with its context, and its kind. */
struct Error {
  std::string message;  ///< e.g. "qosgate.toml:12:7: flow[2].dscp: must be 0..63"
  ErrorCode code = ErrorCode::Internal;
};

template <typename T>
class [[nodiscard]] Result {
public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(v_); }

private:
  std::variant<T, Error> v_;
};

/** Result of an operation with no value. */
template <>
class [[nodiscard]] Result<void> {
public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

private:
  Error error_;
  bool ok_ = true;
};

/** An Error of kind Internal: the caller did not say what kind it is. */
inline Error makeError(std::string message) { return Error{std::move(message)}; }
inline Error makeError(ErrorCode code, std::string message) {
  return Error{std::move(message), code};
}

inline const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::Internal:
      return "internal";
    case ErrorCode::Invalid:
      return "invalid";
    case ErrorCode::NotFound:
      return "not_found";
    case ErrorCode::Denied:
      return "denied";
    case ErrorCode::Unauthorized:
      return "unauthorized";
    case ErrorCode::Unavailable:
      return "unavailable";
  }
  return "internal";
}

}  // namespace qos
