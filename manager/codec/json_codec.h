// JSON for the manager's types, as they travel in message bodies and sit in
// the reservation store.
//
// Units are in the keys and values are integers: rates in bits per second
// ("_bps"), bursts in bytes ("_bytes"), times in milliseconds since the Unix
// epoch ("_ms"); the lease of a request is "lease", in seconds, as clients
// write it.  Addresses are strings ("198.18.1.10", "2001:db8::1"), protocols
// "udp" | "tcp" | "sctp", DSCPs numbers 0..63, reasons snake_case codes.
//
// A provisioning request body (the "provision" message):
//   {"app":"voip","src":"198.18.1.10","sport":40000,"dst":"198.19.1.20","dport":5004,
//    "proto":"udp","bidir":false,"lease":30,"client":"host-a","request_id":"r-1"}
// app, sport, dport (0: any), bidir (false) and lease (0: the configured
// default) may be left out or null; src, dst, proto, client and request_id may
// not.  An unknown key is an error, so a misspelt field is never silently
// ignored.
//
// A grant:
//   {"flow_id":7,"app":"voip","profile_index":0,
//    "profile":{"class":"EF","rate_bps":64000,"burst_bytes":1500},
//    "src":"198.18.1.10","sport":40000,"dst":"198.19.1.20","dport":5004,"proto":"udp",
//    "bidir":true,"dscp":46,"reverse_dscp":46,"path":["site-a","wan","site-b"],
//    "reverse_path":["site-b","wan","site-a"],
//    "meter":{"cir_bps":64000,"cbs_bytes":1500,"ebs_bytes":1500},
//    "expires_at_ms":1700000030000,"client":"host-a","request_id":"r-1"}
// reverse_dscp is null when there is none.  The meter's committed rate is kept
// in bytes per second in the Grant; here it is cir_bps = 8 x that (read back
// rounded up to whole bytes, which is exact for every value a grant can hold).
// Unknown keys in a grant are ignored, so a client can read grants from a
// newer manager.
//
// Every decoding error names the field, with its path for nested ones:
// "profile.rate_bps: must be an unsigned integer, got \"fast\"".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "control/common/result.h"
#include "control/protocol/flat_request.h"
#include "manager/admission/admission.h"
#include "manager/config/manager_config.h"

namespace qos::manager {

/**
 * A grant as replies carry it (the shape at the top of this file), written
 * straight into a string by control::JsonWriter: every reply that tells of
 * a grant is made here, so no tree is built for it.
 */
std::string encodeGrant(const Grant& grant);
/** The inverse of encodeGrant(); exact for every field. */
Result<Grant> grantFromJson(const nlohmann::json& json);

/**
 * Reads a grant as schema version 2 of the reservation store kept it, as
 * JSON: only what restoring it needs, without what the store's own columns
 * held (flow_id, expires_at_ms, client, request_id) or what
 * AdmissionEngine::restore() derives again from the config (dscp,
 * reverse_dscp, path, reverse_path, meter):
 *   {"app":"voip","profile_index":0,
 *    "profile":{"class":"EF","rate_bps":64000,"burst_bytes":1500},
 *    "src":"198.18.1.10","sport":40000,"dst":"198.19.1.20","dport":5004,
 *    "proto":"udp","bidir":true}
 * or a whole grant, as version 1 kept it (the other members are ignored).
 * The derived fields are left empty, the column fields are taken from the
 * arguments.  The store reads older files with it to upgrade them.
 */
Result<Grant> storedGrantFromJson(const nlohmann::json& json, uint64_t flow_id,
                                  uint64_t expires_at_ms, std::string client_id,
                                  std::string request_id);

/** Reads the body of a "provision" message (see the top of this file). */
Result<AdmissionRequest> requestFromJson(const nlohmann::json& body);
/**
 * The same, from a body read by control::decodeFlatRequest(): the request if
 * requestFromJson() would return exactly it, nullopt for anything else (then
 * requestFromJson() on the general path names the error).
 */
std::optional<AdmissionRequest> requestFromFlatBody(const control::FlatRequest& message);
/** The body of a "provision" message, as clients send it. */
nlohmann::json toJson(const AdmissionRequest& request);

/**
 * {"owner","kind":"network"|"sla","network","class","dscp" (null for an SLA),
 *  "capacity_bps" (null: not admission-controlled),"reserved_bps",
 *  "available_bps" (null when capacity_bps is),"flows"}
 */
nlohmann::json toJson(const ClassUsage& usage);

/** {"reason":"no_capacity","message":"..."} */
nlohmann::json toJson(const Denial& denial);
Result<Denial> denialFromJson(const nlohmann::json& json);

/** The wire code of a reason: "bad_request", "no_capacity", ... */
const char* denyReasonCode(DenyReason reason);
std::optional<DenyReason> denyReasonFromCode(std::string_view code);

/** "udp", "tcp", "sctp"; nullptr for any other protocol number. */
const char* protocolName(uint8_t protocol);
/** 17, 6, 132 for "udp", "tcp", "sctp"; nullopt for anything else. */
std::optional<uint8_t> protocolFromName(std::string_view name);

}  // namespace qos::manager
