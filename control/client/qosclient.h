/*
 * libqosclient's C API: ask the qosgate services manager (or the host's
 * qos-agent) for QoS for a flow, hold the grant (its lease is refreshed in
 * the background), mark sockets with its DSCP, release it.
 *
 *   qos_session_options options = {0};
 *   options.endpoint = "ipc:///run/qos-agent/agent.sock";
 *   qos_session *session;
 *   char error[256];
 *   if (qos_session_open(&options, &session, error, sizeof error) != QOS_OK) ...
 *   qos_flow flow = {0};
 *   flow.app = "voip"; flow.src = "198.18.1.10"; flow.sport = 40000;
 *   flow.dst = "198.19.1.20"; flow.dport = 20000; flow.proto = "udp"; flow.bidirectional = 1;
 *   qos_grant *grant;
 *   switch (qos_request(session, &flow, NULL, NULL, &grant, error, sizeof error)) {
 *   case QOS_OK:     qos_grant_mark_socket(grant, fd, error, sizeof error); break;
 *   case QOS_DENIED: best effort; error says why; break;
 *   default:         error says what went wrong;
 *   }
 *   ...
 *   qos_grant_free(grant);          releases it at the manager, puts the socket back
 *   qos_session_close(session);
 *
 * Handles are opaque; no C++ exception crosses this API.  Every call that
 * can fail returns a qos_status and, when given a buffer, writes a
 * NUL-terminated message into it.  A session may be used from several
 * threads; a grant from one thread at a time.  Link with
 * `pkg-config --cflags --libs qosclient`.
 */
#ifndef QOSCLIENT_H
#define QOSCLIENT_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define QOS_API __attribute__((visibility("default")))
#else
#define QOS_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* A C API, named as C names things. */
/* NOLINTBEGIN(readability-identifier-naming) */

/* What a call came to; 0..4 are qosctl's exit codes. */
typedef enum qos_status {
  QOS_OK = 0,
  QOS_UNAVAILABLE = 1,  /* the manager or agent did not answer: try again later */
  QOS_INVALID = 2,      /* a bad argument, flow or key: fix it */
  QOS_DENIED = 3,       /* no room on the path (or no such application): go best effort */
  QOS_UNAUTHORIZED = 4, /* the key was refused, or its role may not do this */
  QOS_INTERNAL = 5,     /* a failure nobody planned for */
  QOS_NOT_FOUND = 6     /* the flow is no longer held at the manager */
} qos_status;

typedef enum qos_grant_state {
  QOS_GRANT_HELD = 0,    /* granted; its lease is kept alive */
  QOS_GRANT_LOST = 1,    /* released at the manager without us (admin, lapsed lease) */
  QOS_GRANT_RELEASED = 2 /* released by the application, or its session closed */
} qos_grant_state;

typedef struct qos_session qos_session;
typedef struct qos_grant qos_grant;

typedef struct qos_session_options {
  const char* endpoint;           /* "tcp://qosmgr:7700", or qos-agent's "ipc://..." */
  const char* secret_key_file;    /* this host's CURVE key file (qosctl keygen); NULL: no CURVE */
  const char* manager_public_key; /* the manager's .pub file or Z85 text, with secret_key_file */
  int timeout_ms;                 /* per request; 0: 3000 */
} qos_session_options;

typedef struct qos_flow {
  const char* app; /* the manager's application; NULL or "": identified by proto and ports */
  const char* src; /* this host's address, IPv4 or IPv6 */
  uint16_t sport;  /* 0: any */
  const char* dst;
  uint16_t dport;     /* 0: any */
  const char* proto;  /* "udp", "tcp" or "sctp" */
  int bidirectional;  /* nonzero: reserve the reverse direction too */
  uint32_t lease_sec; /* 0: the manager's default */
} qos_flow;

typedef struct qos_grant_info {
  uint64_t flow_id;
  uint8_t dscp;         /* mark this host's packets with it */
  int has_reverse_dscp; /* bidirectional: the DSCP for the other host's packets */
  uint8_t reverse_dscp;
  char class_name[32]; /* "EF", "AF41", ... */
  uint64_t rate_bps;
  uint64_t burst_bytes;
  uint32_t profile_index; /* 0: the application's default; n: its alternate n */
  uint64_t expires_at_ms; /* the lease's end when granted, epoch ms (refreshed since) */
} qos_grant_info;

/* Called once, on the session's thread, when a held grant is lost. */
typedef void (*qos_lost_fn)(uint64_t flow_id, const char* why, void* user);

QOS_API const char* qos_status_name(qos_status status);

QOS_API qos_status qos_session_open(const qos_session_options* options, qos_session** session,
                                    char* error, size_t error_len);
/* Releases every grant still held, then frees the session.  NULL is ignored. */
QOS_API void qos_session_close(qos_session* session);

/*
 * Asks for QoS for *flow.  QOS_OK: *grant is held (free it with
 * qos_grant_free()); QOS_DENIED: error says which network or SLA had no room.
 */
QOS_API qos_status qos_request(qos_session* session, const qos_flow* flow, qos_lost_fn on_lost,
                               void* user, qos_grant** grant, char* error, size_t error_len);

QOS_API qos_status qos_grant_info_get(const qos_grant* grant, qos_grant_info* info);
QOS_API qos_grant_state qos_grant_state_get(const qos_grant* grant);
/* Why a lost grant was lost ("" otherwise), into buffer. */
QOS_API void qos_grant_lost_reason(const qos_grant* grant, char* buffer, size_t len);

/* Marks fd's packets with the grant's DSCP, ECN kept, and paces a TCP socket at the
 * grant's rate (SO_MAX_PACING_RATE); release puts it back. */
QOS_API qos_status qos_grant_mark_socket(qos_grant* grant, int fd, char* error, size_t error_len);
/* Releases the grant at the manager (the handle stays valid until freed). */
QOS_API qos_status qos_grant_release(qos_grant* grant, char* error, size_t error_len);
/* Releases the grant if still held, and frees the handle.  NULL is ignored. */
QOS_API void qos_grant_free(qos_grant* grant);

/* Marks fd with dscp (0..63), ECN kept: the other host of a two-way grant uses the reverse DSCP. */
QOS_API qos_status qos_mark_socket(int fd, uint8_t dscp, char* error, size_t error_len);

/* NOLINTEND(readability-identifier-naming) */

#ifdef __cplusplus
}
#endif

#endif /* QOSCLIENT_H */
