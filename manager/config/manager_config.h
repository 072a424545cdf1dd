// The managed world as qosmgr.toml describes it: networks and their classes,
// the links between them, the SLAs over them, and the applications with their
// default and alternate traffic profiles.  Validated as a whole before use.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/common/ip_prefix.h"
#include "control/common/port_range.h"
#include "control/common/result.h"
#include "control/protocol/message_types.h"
#include "control/protocol/messages.h"

namespace qos::manager {

/** A DiffServ class as one network implements it. */
struct ClassSpec {
  uint8_t dscp = 0;                      ///< 0..63: what this network marks the class with
  std::optional<uint64_t> capacity_bps;  ///< admission limit; none: not admission-controlled
};

struct NetworkConfig {
  std::string name;
  std::vector<IpPrefix> prefixes;            ///< hosts of this network (may be empty: transit)
  bool class_enabled = false;                ///< false: no DiffServ, no admission, no DSCP
  std::map<std::string, ClassSpec> classes;  ///< by class name ("EF", "AF41", "BE")
};

struct LinkConfig {
  std::string a;  ///< network name
  std::string b;  ///< network name
};

/** A contract with a carrier over one network: a rate per class. */
struct SlaConfig {
  std::string name;
  std::string network;
  std::map<std::string, uint64_t>
      class_rate_bps;  ///< classes it does not list are not limited by it
};

/** A traffic characterization: what a flow of an application needs (class, rate, burst). */
using control::Profile;

using qos::PortRange;

/** How a request that names no application is recognized as this one. */
struct AppMatch {
  uint8_t protocol = 0;  ///< 0: any
  PortRange src_ports;
  PortRange dst_ports;
};

struct ApplicationConfig {
  std::string name;
  std::optional<AppMatch> match;
  Profile default_profile;
  std::vector<Profile> alternates;  ///< tried in order when the default does not fit
};

/**
 * A qosgate appliance: a bump in the wire on one link.  Its inside port
 * faces the first network of the link, its outside port the second.
 */
struct ApplianceSite {
  std::string name;     ///< as its [control] name says, and its [[peer]] name with CURVE
  std::string inside;   ///< the network its inside port faces
  std::string outside;  ///< the network its outside port faces
};

/** A key the manager lets in, and what it may do ([[peer]]). */
struct PeerConfig {
  std::string name;  ///< who it is: an appliance's [[appliance]] name, a host's, an admin's
  control::Role role = control::Role::Host;
  std::string public_key_z85;  ///< its CURVE public key, read from the file or the text given
};

/** [security]: who may talk to the manager. */
struct SecurityConfig {
  bool curve = false;           ///< false: mode "none" (loopback or ipc only); every peer is admin
  std::string secret_key_path;  ///< the manager's CURVE secret key file (resolved)
  std::string secret_z85;       ///< read from it
  std::string public_z85;       ///< derived from it: what peers give as manager_public_key
  std::vector<PeerConfig> peers;
  std::map<std::string, control::Role> role_by_name;  ///< the peers, by name
};

struct ManagerConfig {
  std::string source_path;
  std::string listen = "tcp://127.0.0.1:7700";  ///< ZeroMQ ROUTER endpoint
  std::string state_path;                       ///< SQLite file; empty: in memory (tests)
  uint32_t lease_sec = 60;                      ///< default lease
  uint32_t max_lease_sec = 86400;               ///< longest lease a request may ask for
  std::string metrics_listen;                   ///< "127.0.0.1:9471"; empty: none
  uint32_t heartbeat_ms = 1000;     ///< longest an appliance's sync is held without an answer
  uint32_t enforce_wait_ms = 1000;  ///< longest a grant reply waits for its appliances' acks
  uint32_t idle_release_sec = 0;    ///< release a flow no appliance saw for this long; 0: never
  std::vector<NetworkConfig> networks;
  std::vector<LinkConfig> links;
  std::vector<SlaConfig> slas;
  std::vector<ApplicationConfig> applications;
  std::vector<ApplianceSite> appliances;
  SecurityConfig security;
};

/** Loads and validates qosmgr.toml.  Errors: "FILE:LINE:COLUMN: key.path: message". */
Result<ManagerConfig> loadManagerConfig(const std::string& path);
/** Same from text (tests). */
Result<ManagerConfig> parseManagerConfig(std::string_view text, const std::string& source_name);

}  // namespace qos::manager
