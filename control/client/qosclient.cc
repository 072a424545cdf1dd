// The C API (qosclient.h) over the C++ session (session.h): handles that own
// C++ objects, statuses from error codes, messages into the caller's buffer,
// and no exception across the boundary.
#include "control/client/qosclient.h"

#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <utility>

#include "control/client/session.h"
#include "control/common/ip_prefix.h"
#include "control/common/ip_protocol.h"
#include "control/transport/curve_keys.h"

// The C API's handles and functions, named as C names things.
// NOLINTBEGIN(readability-identifier-naming)
struct qos_session {
  std::unique_ptr<qos::client::Session> session;
};

struct qos_grant {
  std::shared_ptr<qos::client::HeldGrant> held;
};
// NOLINTEND(readability-identifier-naming)

namespace {

using qos::ErrorCode;

qos_status statusOf(ErrorCode code) {
  switch (code) {
    case ErrorCode::Invalid:
      return QOS_INVALID;
    case ErrorCode::NotFound:
      return QOS_NOT_FOUND;
    case ErrorCode::Denied:
      return QOS_DENIED;
    case ErrorCode::Unauthorized:
      return QOS_UNAUTHORIZED;
    case ErrorCode::Unavailable:
      return QOS_UNAVAILABLE;
    case ErrorCode::Internal:
      return QOS_INTERNAL;
  }
  return QOS_INTERNAL;
}

void say(char* buffer, size_t len, const std::string& text) {
  if (buffer != nullptr && len > 0) {
    std::snprintf(buffer, len, "%s", text.c_str());
  }
}

qos_status fail(char* buffer, size_t len, const qos::Error& error) {
  say(buffer, len, error.message);
  return statusOf(error.code);
}

qos_status invalid(char* buffer, size_t len, const std::string& why) {
  say(buffer, len, why);
  return QOS_INVALID;
}

/** Runs @p body, turning any exception into QOS_INTERNAL. */
template <typename Body>
qos_status guarded(char* buffer, size_t len, Body body) noexcept {
  try {
    return body();
  } catch (const std::exception& e) {
    say(buffer, len, std::string("internal error: ") + e.what());
  } catch (...) {
    say(buffer, len, "internal error");
  }
  return QOS_INTERNAL;
}

qos_status toRequest(const qos_flow& flow, qos::control::AdmissionRequest& request, char* error,
                     size_t len) {
  if (flow.app != nullptr) {
    request.application = flow.app;
  }
  if (flow.src == nullptr || flow.dst == nullptr) {
    return invalid(error, len, "flow: src and dst are required");
  }
  qos::Result<qos::IpAddress> src = qos::parseIpAddress(flow.src);
  if (!src) {
    return invalid(error, len, "flow.src: " + src.error().message);
  }
  qos::Result<qos::IpAddress> dst = qos::parseIpAddress(flow.dst);
  if (!dst) {
    return invalid(error, len, "flow.dst: " + dst.error().message);
  }
  const std::optional<uint8_t> proto =
      flow.proto != nullptr ? qos::ipProtocolNumber(flow.proto) : std::nullopt;
  if (!proto || !qos::ipProtocolHasPorts(*proto)) {
    return invalid(error, len, "flow.proto: expected \"udp\", \"tcp\" or \"sctp\"");
  }
  request.flow.src = *src;
  request.flow.dst = *dst;
  request.flow.src_port = flow.sport;
  request.flow.dst_port = flow.dport;
  request.flow.protocol = *proto;
  request.bidirectional = flow.bidirectional != 0;
  request.lease_sec = flow.lease_sec;
  return QOS_OK;
}

}  // namespace

extern "C" {
// NOLINTBEGIN(readability-identifier-naming)

const char* qos_status_name(qos_status status) {
  switch (status) {
    case QOS_OK:
      return "ok";
    case QOS_UNAVAILABLE:
      return "unavailable";
    case QOS_INVALID:
      return "invalid";
    case QOS_DENIED:
      return "denied";
    case QOS_UNAUTHORIZED:
      return "unauthorized";
    case QOS_INTERNAL:
      return "internal";
    case QOS_NOT_FOUND:
      return "not_found";
  }
  return "unknown";
}

qos_status qos_session_open(const qos_session_options* options, qos_session** session, char* error,
                            size_t error_len) {
  return guarded(error, error_len, [&]() -> qos_status {
    if (options == nullptr || session == nullptr || options->endpoint == nullptr) {
      return invalid(error, error_len, "options, options->endpoint and session are required");
    }
    *session = nullptr;
    qos::client::SessionOptions opts;
    opts.endpoint = options->endpoint;
    opts.timeout_ms = options->timeout_ms > 0 ? options->timeout_ms : 3000;
    if ((options->secret_key_file == nullptr) != (options->manager_public_key == nullptr)) {
      return invalid(error, error_len,
                     "CURVE needs both secret_key_file and manager_public_key (or neither)");
    }
    if (options->secret_key_file != nullptr) {
      qos::Result<qos::control::CurveKeyPair> own =
          qos::control::loadCurveSecretKey(options->secret_key_file);
      if (!own) {
        return fail(error, error_len, own.error());
      }
      qos::Result<std::string> server =
          qos::control::loadCurvePublicKey(options->manager_public_key);
      if (!server) {
        return fail(error, error_len, server.error());
      }
      opts.curve = qos::control::CurveClientKeys{own->public_z85, own->secret_z85, *server};
    }
    qos::Result<std::unique_ptr<qos::client::Session>> opened =
        qos::client::Session::open(std::move(opts));
    if (!opened) {
      return fail(error, error_len, opened.error());
    }
    *session = new qos_session{std::move(*opened)};
    return QOS_OK;
  });
}

void qos_session_close(qos_session* session) {
  static_cast<void>(guarded(nullptr, 0, [&] {
    delete session;
    return QOS_OK;
  }));
}

qos_status qos_request(qos_session* session, const qos_flow* flow, qos_lost_fn on_lost, void* user,
                       qos_grant** grant, char* error, size_t error_len) {
  return guarded(error, error_len, [&]() -> qos_status {
    if (session == nullptr || flow == nullptr || grant == nullptr) {
      return invalid(error, error_len, "session, flow and grant are required");
    }
    *grant = nullptr;
    qos::control::AdmissionRequest request;
    if (const qos_status s = toRequest(*flow, request, error, error_len); s != QOS_OK) {
      return s;
    }
    qos::client::LostCallback lost;
    if (on_lost != nullptr) {
      lost = [on_lost, user](uint64_t flow_id, const std::string& why) {
        on_lost(flow_id, why.c_str(), user);
      };
    }
    qos::Result<qos::client::Outcome> outcome =
        session->session->request(std::move(request), std::move(lost));
    if (!outcome) {
      return fail(error, error_len, outcome.error());
    }
    if (const auto* denial = std::get_if<qos::control::Denial>(&*outcome)) {
      say(error, error_len,
          std::string(qos::control::denyReasonName(denial->reason)) + ": " + denial->message);
      return denial->reason == qos::control::DenyReason::BadRequest ? QOS_INVALID : QOS_DENIED;
    }
    *grant = new qos_grant{std::get<std::shared_ptr<qos::client::HeldGrant>>(*outcome)};
    say(error, error_len, "");
    return QOS_OK;
  });
}

qos_status qos_grant_info_get(const qos_grant* grant, qos_grant_info* info) {
  return guarded(nullptr, 0, [&]() -> qos_status {
    if (grant == nullptr || info == nullptr) {
      return QOS_INVALID;
    }
    const qos::control::Grant& g = grant->held->grant();
    *info = qos_grant_info{};
    info->flow_id = g.flow_id;
    info->dscp = g.dscp;
    info->has_reverse_dscp = g.reverse_dscp.has_value() ? 1 : 0;
    info->reverse_dscp = g.reverse_dscp.value_or(0);
    std::snprintf(info->class_name, sizeof info->class_name, "%s", g.profile.class_name.c_str());
    info->rate_bps = g.profile.rate_bps;
    info->burst_bytes = g.profile.burst_bytes;
    info->profile_index = g.profile_index;
    info->expires_at_ms = g.expires_at_ms;
    return QOS_OK;
  });
}

qos_grant_state qos_grant_state_get(const qos_grant* grant) {
  if (grant == nullptr) {
    return QOS_GRANT_RELEASED;
  }
  try {
    switch (grant->held->state()) {
      case qos::client::GrantState::Held:
        return QOS_GRANT_HELD;
      case qos::client::GrantState::Lost:
        return QOS_GRANT_LOST;
      case qos::client::GrantState::Released:
        return QOS_GRANT_RELEASED;
    }
  } catch (...) {
  }
  return QOS_GRANT_RELEASED;
}

void qos_grant_lost_reason(const qos_grant* grant, char* buffer, size_t len) {
  static_cast<void>(guarded(buffer, len, [&] {
    say(buffer, len, grant == nullptr ? "" : grant->held->lostReason());
    return QOS_OK;
  }));
}

qos_status qos_grant_mark_socket(qos_grant* grant, int fd, char* error, size_t error_len) {
  return guarded(error, error_len, [&]() -> qos_status {
    if (grant == nullptr) {
      return invalid(error, error_len, "grant is required");
    }
    if (qos::Result<void> r = grant->held->markSocket(fd); !r) {
      return fail(error, error_len, r.error());
    }
    return QOS_OK;
  });
}

qos_status qos_grant_release(qos_grant* grant, char* error, size_t error_len) {
  return guarded(error, error_len, [&]() -> qos_status {
    if (grant == nullptr) {
      return invalid(error, error_len, "grant is required");
    }
    if (qos::Result<void> r = grant->held->release(); !r) {
      return fail(error, error_len, r.error());
    }
    return QOS_OK;
  });
}

void qos_grant_free(qos_grant* grant) {
  static_cast<void>(guarded(nullptr, 0, [&] {
    delete grant;
    return QOS_OK;
  }));
}

qos_status qos_mark_socket(int fd, uint8_t dscp, char* error, size_t error_len) {
  return guarded(error, error_len, [&]() -> qos_status {
    qos::Result<qos::client::SocketMark> mark = qos::client::markSocket(fd, dscp);
    if (!mark) {
      return fail(error, error_len, mark.error());
    }
    return QOS_OK;
  });
}

// NOLINTEND(readability-identifier-naming)
}  // extern "C"
