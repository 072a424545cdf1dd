// qosctl: the operator's command line for qosmgr.
//
//   qosctl [--endpoint EP] [--json] [--timeout MS] [--key FILE] [--manager-key FILE|Z85]
//          request --app NAME --src IP[:PORT] --dst IP[:PORT] --proto udp|tcp|sctp
//                  [--bidir] [--lease SEC]
//   qosctl [...] release FLOW_ID | refresh FLOW_ID [--lease SEC]
//   qosctl [...] flows | networks | appliances | stats | ping
//   qosctl keygen NAME
//
// Exit codes: 0 done (granted), 1 could not reach qosmgr or internal error,
// 2 usage or invalid input, 3 denied (no capacity on the path), 4 not
// authorized (key refused, or the role may not do this).
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/program_options.hpp>
#include <unistd.h>

#include "control/common/daemon.h"
#include "control/common/ip_prefix.h"
#include "control/common/port_range.h"
#include "control/common/units.h"
#include "control/protocol/error_codes.h"
#include "control/protocol/fields.h"
#include "control/protocol/message_types.h"
#include "control/protocol/messages.h"
#include "control/transport/client.h"
#include "control/transport/curve_keys.h"

namespace po = boost::program_options;
namespace ctl = qos::control;
using nlohmann::json;
using qos::Result;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitUnreachable = 1;
constexpr int kExitUsage = 2;
constexpr int kExitDenied = 3;
constexpr int kExitNotAuthorized = 4;

const char* kUsage =
    "Usage: qosctl [--endpoint EP] [--json] [--timeout MS] [--key FILE]\n"
    "              [--manager-key FILE|Z85] COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  request --app NAME --src IP[:PORT] --dst IP[:PORT] --proto udp|tcp|sctp\n"
    "          [--bidir] [--lease SEC] [--client ID] [--request-id ID]\n"
    "                       ask qosmgr to admit a flow; prints the grant\n"
    "  release FLOW_ID      release a flow's reservation on every network\n"
    "  refresh FLOW_ID [--lease SEC]   extend a flow's lease\n"
    "  flows                the flows holding reservations, and what the appliances saw\n"
    "  networks             capacity, reserved and available per network/SLA and class\n"
    "  appliances           the appliances: state, rules installed and pending\n"
    "  stats                qosmgr's counters\n"
    "  ping                 whether qosmgr answers, and who it takes this key for\n"
    "  keygen NAME          write a CURVE key pair: NAME.key (secret, 0600), NAME.pub\n"
    "\n"
    "CURVE: --key is this operator's secret key file, --manager-key qosmgr's public\n"
    "key (a file or its Z85 text); also QOSCTL_KEY and QOSCTL_MANAGER_KEY.\n"
    "IPv6 with a port: [2001:db8::1]:5004.\n"
    "Exit codes: 0 done, 1 qosmgr unreachable or internal error, 2 usage or invalid\n"
    "input, 3 denied (no capacity on the path), 4 not authorized.\n";

std::string orDash(const std::string& s) { return s.empty() ? "-" : s; }

/** A measured rate, to three significant digits ("59.0kbit"); "-" if none. */
std::string measuredRate(std::optional<uint64_t> bps) {
  if (!bps) {
    return "-";
  }
  static constexpr std::array<std::pair<double, const char*>, 3> kUnits = {
      {{1e9, "gbit"}, {1e6, "mbit"}, {1e3, "kbit"}}};
  for (const auto& [scale, unit] : kUnits) {
    if (static_cast<double>(*bps) >= scale) {
      const double v = static_cast<double>(*bps) / scale;
      char text[32];
      std::snprintf(text, sizeof text,
                    v >= 100  ? "%.0f%s"
                    : v >= 10 ? "%.1f%s"
                              : "%.2f%s",
                    v, unit);
      return text;
    }
  }
  return std::to_string(*bps) + "bit";
}

std::string portText(uint16_t port) { return port == 0 ? "any" : std::to_string(port); }

std::string protoText(uint8_t protocol) {
  const char* name = qos::ipProtocolName(protocol);
  return name != nullptr ? name : std::to_string(protocol);
}

std::string joined(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (const std::string& item : items) {
    out += (out.empty() ? "" : separator) + item;
  }
  return out.empty() ? "-" : out;
}

// "expires in 60 s" from an absolute expiry in epoch milliseconds.
std::string leaseText(uint64_t expires_at_ms) {
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const auto left_ms = static_cast<int64_t>(expires_at_ms) - now_ms;
  return left_ms <= 0 ? "expired" : "expires in " + std::to_string((left_ms + 999) / 1000) + " s";
}

// Prints rows as aligned columns.
void printTable(const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(header.size());
  for (size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& r : rows) {
      width[c] = std::max(width[c], r[c].size());
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t c = 0; c < cells.size(); ++c) {
      out += cells[c];
      if (c + 1 < cells.size()) {
        out += std::string(width[c] - cells[c].size() + 2, ' ');
      }
    }
    std::printf("%s\n", out.c_str());
  };
  line(header);
  for (const auto& r : rows) {
    line(r);
  }
}

// "198.18.1.10:5004", "198.18.1.10", "[2001:db8::1]:5004", "2001:db8::1".
bool parseEndpoint(const std::string& s, qos::IpAddress& addr, uint16_t& port, std::string& error) {
  std::string host = s;
  std::string port_text;
  if (!s.empty() && s.front() == '[') {
    const size_t close = s.find(']');
    if (close == std::string::npos) {
      error = "'" + s + "': missing ']'";
      return false;
    }
    host = s.substr(1, close - 1);
    if (close + 1 < s.size()) {
      if (s[close + 1] != ':') {
        error = "'" + s + "': expected ':PORT' after ']'";
        return false;
      }
      port_text = s.substr(close + 2);
    }
  } else if (std::count(s.begin(), s.end(), ':') == 1) {
    host = s.substr(0, s.find(':'));
    port_text = s.substr(s.find(':') + 1);
  }
  auto parsed = qos::parseIpAddress(host);
  if (!parsed) {
    error = parsed.error().message;
    return false;
  }
  addr = *parsed;
  port = 0;
  if (!port_text.empty()) {
    unsigned p = 0;
    if (!qos::parseUnsigned(port_text, p) || p == 0 || p > 65535) {
      error = "'" + s + "': port must be 1..65535";
      return false;
    }
    port = static_cast<uint16_t>(p);
  }
  return true;
}

int exitCodeOf(const ctl::Reply& reply) {
  switch (reply.status) {
    case ctl::ReplyStatus::Ok:
      return kExitOk;
    case ctl::ReplyStatus::Denied:
      return kExitDenied;
    case ctl::ReplyStatus::Error:
      switch (ctl::errorCodeOfWire(reply.error.code)) {
        case qos::ErrorCode::Unauthorized:
          return kExitNotAuthorized;
        case qos::ErrorCode::Internal:
        case qos::ErrorCode::Unavailable:
          return kExitUnreachable;
        default:
          return kExitUsage;
      }
  }
  return kExitUnreachable;
}

int exitCodeOf(const qos::Error& error) {
  switch (error.code) {
    case qos::ErrorCode::Unauthorized:
      return kExitNotAuthorized;
    case qos::ErrorCode::Invalid:
      return kExitUsage;
    default:
      return kExitUnreachable;
  }
}

void printGrant(const ctl::GrantReply& reply) {
  const ctl::Grant& g = reply.grant;
  const std::string which =
      g.profile_index == 0 ? "default" : "alternate " + std::to_string(g.profile_index);
  std::printf("granted flow %llu%s: %s, %s profile, class %s at %s (burst %llu bytes)\n",
              static_cast<unsigned long long>(g.flow_id), reply.retried ? " (again)" : "",
              orDash(g.application).c_str(), which.c_str(), g.profile.class_name.c_str(),
              qos::formatRate(g.profile.rate_bps).c_str(),
              static_cast<unsigned long long>(g.profile.burst_bytes));
  std::printf("  flow     %s %s:%s -> %s:%s%s\n", protoText(g.flow.protocol).c_str(),
              qos::formatIpAddress(g.flow.src).c_str(), portText(g.flow.src_port).c_str(),
              qos::formatIpAddress(g.flow.dst).c_str(), portText(g.flow.dst_port).c_str(),
              g.bidirectional ? " (both ways)" : "");
  std::printf("  dscp     %u (mark the sender's packets with it)\n", g.dscp);
  if (g.reverse_dscp) {
    std::printf("  reverse  dscp %u for the other host; path %s\n", *g.reverse_dscp,
                joined(g.reverse_path, " -> ").c_str());
  }
  std::printf("  path     %s\n", joined(g.path, " -> ").c_str());
  std::printf("  meter    srTCM cir %s, cbs %llu B, ebs %llu B\n",
              qos::formatRate(g.meter.cir_bps).c_str(),
              static_cast<unsigned long long>(g.meter.cbs_bytes),
              static_cast<unsigned long long>(g.meter.ebs_bytes));
  std::printf("  enforced %s%s\n", joined(reply.enforcement.enforced_by, ", ").c_str(),
              reply.enforcement.pending.empty()
                  ? ""
                  : ("; pending " + joined(reply.enforcement.pending, ", ")).c_str());
  std::printf("  lease    %s\n", leaseText(g.expires_at_ms).c_str());
}

void printFlows(const ctl::FlowsReply& reply) {
  std::vector<std::vector<std::string>> rows;
  for (const ctl::FlowListing& f : reply.flows) {
    const ctl::Grant& g = f.grant;
    rows.push_back({std::to_string(g.flow_id), orDash(g.application), g.profile.class_name,
                    qos::formatRate(g.profile.rate_bps), measuredRate(f.delivery.delivered_bps),
                    std::to_string(f.delivery.policed_pkts), std::to_string(g.dscp),
                    protoText(g.flow.protocol),
                    qos::formatIpAddress(g.flow.src) + ":" + portText(g.flow.src_port),
                    qos::formatIpAddress(g.flow.dst) + ":" + portText(g.flow.dst_port),
                    joined(f.enforcement.enforced_by, ","), joined(f.enforcement.pending, ","),
                    leaseText(g.expires_at_ms)});
  }
  if (rows.empty()) {
    std::printf("no flows\n");
    return;
  }
  printTable({"ID", "APP", "CLASS", "RESERVED", "DELIVERED", "POLICED", "DSCP", "PROTO", "SOURCE",
              "DESTINATION", "ENFORCED", "PENDING", "LEASE"},
             rows);
}

void printAppliances(const ctl::AppliancesReply& reply) {
  std::vector<std::vector<std::string>> rows;
  for (const ctl::ApplianceStatus& a : reply.appliances) {
    std::string state;
    for (const auto& row : ctl::kApplianceStates) {
      state = row.value == a.state ? std::string(row.name) : state;
    }
    rows.push_back({a.name, a.inside_network + " | " + a.outside_network, state, orDash(a.address),
                    a.last_heartbeat_age_ms
                        ? std::to_string((*a.last_heartbeat_age_ms + 500) / 1000) + " s ago"
                        : "never",
                    std::to_string(a.rules), std::to_string(a.rules_installed),
                    std::to_string(a.rules_pending), std::to_string(a.rules_rejected),
                    std::to_string(a.seq_acked) + "/" + std::to_string(a.seq)});
  }
  if (rows.empty()) {
    std::printf("no appliances configured\n");
    return;
  }
  printTable({"NAME", "LINK (INSIDE | OUTSIDE)", "STATE", "ADDRESS", "HEARTBEAT", "RULES",
              "INSTALLED", "PENDING", "REJECTED", "SEQ ACKED"},
             rows);
}

void printNetworks(const ctl::NetworksReply& reply) {
  std::vector<std::vector<std::string>> rows;
  for (const ctl::ClassUsage& u : reply.classes) {
    const bool sla = u.kind == ctl::UsageKind::Sla;
    rows.push_back({u.owner, sla ? "sla over " + u.network : "network", u.class_name,
                    u.dscp ? std::to_string(*u.dscp) : "-",
                    u.capacity_bps ? qos::formatRate(*u.capacity_bps) : "unlimited",
                    qos::formatRate(u.reserved_bps),
                    u.available_bps ? qos::formatRate(*u.available_bps) : "unlimited",
                    std::to_string(u.flows)});
  }
  printTable({"NAME", "KIND", "CLASS", "DSCP", "CAPACITY", "RESERVED", "AVAILABLE", "FLOWS"}, rows);
}

/** Decodes a reply body as @p T, for printing; false (and a line) if it does not read. */
template <typename T>
bool readBody(const ctl::Reply& reply, T& out) {
  Result<T> body = ctl::decodeObject<T>(reply.body, ctl::Unknown::Ignore, "reply body");
  if (!body) {
    std::fprintf(stderr, "qosctl: unexpected reply from qosmgr: %s\n",
                 body.error().message.c_str());
    return false;
  }
  out = std::move(*body);
  return true;
}

int show(const std::string& command, const ctl::Reply& reply, bool as_json) {
  if (as_json) {
    json out = reply.body;
    if (reply.status != ctl::ReplyStatus::Ok) {
      out = {{"status", ctl::replyStatusName(reply.status)},
             {"error", {{"code", reply.error.code}, {"message", reply.error.message}}},
             {"detail", reply.body}};
    }
    std::printf("%s\n", out.dump(2).c_str());
    return exitCodeOf(reply);
  }
  if (reply.status != ctl::ReplyStatus::Ok) {
    const int code = exitCodeOf(reply);
    std::fprintf(stderr, "qosctl: %s: %s (%s)\n",
                 reply.status == ctl::ReplyStatus::Denied ? "denied"
                 : code == kExitNotAuthorized             ? "not authorized"
                                                          : "error",
                 reply.error.message.c_str(), reply.error.code.c_str());
    return code;
  }
  bool ok = true;
  if (command == "request") {
    ctl::GrantReply grant;
    if ((ok = readBody(reply, grant))) {
      printGrant(grant);
    }
  } else if (command == "release") {
    ctl::Grant grant;
    if ((ok = readBody(reply, grant))) {
      std::printf("released flow %llu\n", static_cast<unsigned long long>(grant.flow_id));
    }
  } else if (command == "refresh") {
    ctl::RefreshReply refreshed;
    if ((ok = readBody(reply, refreshed))) {
      std::printf("flow %llu: lease %s\n", static_cast<unsigned long long>(refreshed.flow_id),
                  leaseText(refreshed.expires_at_ms).c_str());
    }
  } else if (command == "flows") {
    ctl::FlowsReply flows;
    if ((ok = readBody(reply, flows))) {
      printFlows(flows);
    }
  } else if (command == "networks") {
    ctl::NetworksReply networks;
    if ((ok = readBody(reply, networks))) {
      printNetworks(networks);
    }
  } else if (command == "appliances") {
    ctl::AppliancesReply appliances;
    if ((ok = readBody(reply, appliances))) {
      printAppliances(appliances);
    }
  } else {
    std::vector<std::vector<std::string>> rows;
    for (const auto& [key, value] : reply.body.items()) {
      rows.push_back({key, value.is_string() ? value.get<std::string>() : value.dump()});
    }
    printTable({"KEY", "VALUE"}, rows);
  }
  return ok ? kExitOk : kExitUnreachable;
}

int keygen(const std::vector<std::string>& args) {
  if (args.size() != 1) {
    std::fprintf(stderr, "qosctl: keygen takes one NAME (writes NAME.key and NAME.pub)\n");
    return kExitUsage;
  }
  Result<ctl::CurveKeyPair> pair = ctl::generateCurveKeyPair();
  if (!pair) {
    std::fprintf(stderr, "qosctl: %s\n", pair.error().message.c_str());
    return kExitUnreachable;
  }
  if (Result<void> written = ctl::writeCurveKeyFiles(args[0], *pair); !written) {
    std::fprintf(stderr, "qosctl: %s\n", written.error().message.c_str());
    return kExitUsage;
  }
  std::printf("wrote %s.key (secret: keep it on its machine, mode 0600) and %s.pub\n",
              args[0].c_str(), args[0].c_str());
  std::printf("public key: %s\n", pair->public_z85.c_str());
  return kExitOk;
}

/** The value of an option, else of an environment variable, else "". */
std::string optionOrEnv(const po::variables_map& vm, const char* option, const char* env) {
  if (vm.count(option) != 0) {
    return vm[option].as<std::string>();
  }
  const char* value = std::getenv(env);
  return value != nullptr ? value : "";
}

}  // namespace

int runMain(int argc, char** argv) {
  po::options_description global("Global options");
  global.add_options()("help,h", "print help")("version,V", "print the version")(
      "endpoint", po::value<std::string>()->default_value("tcp://127.0.0.1:7700"),
      "qosmgr's ZeroMQ endpoint")("json", "print one JSON document instead of tables")(
      "timeout", po::value<int>()->default_value(3000), "milliseconds to wait for qosmgr")(
      "key", po::value<std::string>(), "this operator's CURVE secret key file")(
      "manager-key", po::value<std::string>(), "qosmgr's CURVE public key: a file or Z85")(
      "command", po::value<std::string>(), "")("args", po::value<std::vector<std::string>>(), "");
  po::positional_options_description positional;
  positional.add("command", 1).add("args", -1);
  po::variables_map vm;
  std::vector<std::string> rest;
  try {
    auto parsed = po::command_line_parser(argc, argv)
                      .options(global)
                      .positional(positional)
                      .allow_unregistered()
                      .run();
    po::store(parsed, vm);
    po::notify(vm);
    rest = po::collect_unrecognized(parsed.options, po::include_positional);
  } catch (const po::error& e) {
    std::fprintf(stderr, "qosctl: %s\n%s", e.what(), kUsage);
    return kExitUsage;
  }
  if (vm.count("version") != 0) {
    std::printf("qosctl %s\n", QOS_VERSION);
    return kExitOk;
  }
  if (vm.count("help") != 0 || vm.count("command") == 0) {
    std::fprintf(vm.count("help") != 0 ? stdout : stderr, "%s", kUsage);
    return vm.count("help") != 0 ? kExitOk : kExitUsage;
  }
  const std::string command = vm["command"].as<std::string>();
  // rest = [command, args...] with the unregistered options in place.
  std::vector<std::string> args(rest.begin() + (rest.empty() ? 0 : 1), rest.end());
  if (command == "keygen") {
    return keygen(args);
  }
  const bool as_json = vm.count("json") != 0;
  const int timeout_ms = vm["timeout"].as<int>();
  if (timeout_ms <= 0) {
    std::fprintf(stderr, "qosctl: --timeout must be > 0 ms\n");
    return kExitUsage;
  }

  std::string type = command;
  std::string body = "{}";
  try {
    if (command == "request") {
      po::options_description opts("request options");
      opts.add_options()("app", po::value<std::string>(), "application name")(
          "src", po::value<std::string>()->required(), "source IP[:PORT]")(
          "dst", po::value<std::string>()->required(), "destination IP[:PORT]")(
          "proto", po::value<std::string>()->required(), "udp|tcp|sctp")(
          "bidir", "reserve both directions")("lease", po::value<uint32_t>(), "seconds")(
          "client", po::value<std::string>(), "client identity (without CURVE)")(
          "request-id", po::value<std::string>(), "request id (retries reuse it)");
      po::variables_map rvm;
      po::store(po::command_line_parser(args).options(opts).run(), rvm);
      po::notify(rvm);
      ctl::AdmissionRequest request;
      std::string error;
      if (!parseEndpoint(rvm["src"].as<std::string>(), request.flow.src, request.flow.src_port,
                         error) ||
          !parseEndpoint(rvm["dst"].as<std::string>(), request.flow.dst, request.flow.dst_port,
                         error)) {
        std::fprintf(stderr, "qosctl: %s\n", error.c_str());
        return kExitUsage;
      }
      const std::optional<uint8_t> protocol =
          ctl::portProtocolNumber(rvm["proto"].as<std::string>());
      if (!protocol) {
        std::fprintf(stderr, "qosctl: --proto must be udp, tcp or sctp\n");
        return kExitUsage;
      }
      request.flow.protocol = *protocol;
      request.bidirectional = rvm.count("bidir") != 0;
      if (rvm.count("app") != 0) {
        request.application = rvm["app"].as<std::string>();
      }
      if (rvm.count("lease") != 0) {
        request.lease_sec = rvm["lease"].as<uint32_t>();
      }
      // Without CURVE the manager takes the client's name from here; with it, from the key.
      request.client_id = rvm.count("client") != 0 ? rvm["client"].as<std::string>() : "qosctl";
      // Every request carries an id; a retry with the same id gets the same grant.
      request.request_id =
          rvm.count("request-id") != 0
              ? rvm["request-id"].as<std::string>()
              : "qosctl-" + std::to_string(getpid()) + "-" +
                    std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
      type = ctl::messageTypeName(ctl::MessageType::Provision);
      body = ctl::encodeObject(request);
    } else if (command == "release" || command == "refresh") {
      po::options_description opts(command + " options");
      opts.add_options()("flow", po::value<uint64_t>()->required(), "flow id")(
          "lease", po::value<uint32_t>(), "seconds (refresh)");
      po::positional_options_description pos;
      pos.add("flow", 1);
      po::variables_map rvm;
      po::store(po::command_line_parser(args).options(opts).positional(pos).run(), rvm);
      po::notify(rvm);
      if (command == "release") {
        body = ctl::encodeObject(ctl::FlowRef{rvm["flow"].as<uint64_t>()});
      } else {
        body = ctl::encodeObject(ctl::RefreshRequest{
            rvm["flow"].as<uint64_t>(),
            rvm.count("lease") != 0 ? rvm["lease"].as<uint32_t>() : uint32_t{0}});
      }
    } else if (ctl::messageTypeOf(command) && command != "provision" && command != "sync") {
      if (!args.empty()) {
        std::fprintf(stderr, "qosctl: %s takes no arguments\n", command.c_str());
        return kExitUsage;
      }
    } else {
      std::fprintf(stderr, "qosctl: unknown command '%s'\n%s", command.c_str(), kUsage);
      return kExitUsage;
    }
  } catch (const po::error& e) {
    std::fprintf(stderr, "qosctl %s: %s\n", command.c_str(), e.what());
    return kExitUsage;
  }

  // CURVE, when a key is given (on the command line or in the environment).
  std::optional<ctl::CurveClientKeys> curve;
  const std::string key_file = optionOrEnv(vm, "key", "QOSCTL_KEY");
  const std::string manager_key = optionOrEnv(vm, "manager-key", "QOSCTL_MANAGER_KEY");
  if (!key_file.empty() || !manager_key.empty()) {
    if (key_file.empty() || manager_key.empty()) {
      std::fprintf(stderr,
                   "qosctl: CURVE needs both --key (QOSCTL_KEY) and --manager-key "
                   "(QOSCTL_MANAGER_KEY)\n");
      return kExitUsage;
    }
    Result<ctl::CurveKeyPair> own = ctl::loadCurveSecretKey(key_file);
    if (!own) {
      std::fprintf(stderr, "qosctl: --key: %s\n", own.error().message.c_str());
      return kExitUsage;
    }
    Result<std::string> server = ctl::loadCurvePublicKey(manager_key);
    if (!server) {
      std::fprintf(stderr, "qosctl: --manager-key: %s\n", server.error().message.c_str());
      return kExitUsage;
    }
    curve = ctl::CurveClientKeys{own->public_z85, own->secret_z85, *server};
  }

  const auto fail = [as_json](const qos::Error& error) {
    const int code = exitCodeOf(error);
    if (as_json) {
      std::printf("%s\n",
                  json{{"status", "error"},
                       {"error",
                        {{"code", code == kExitNotAuthorized ? "unauthorized" : "unreachable"},
                         {"message", error.message}}}}
                      .dump(2)
                      .c_str());
    }
    std::fprintf(stderr, "qosctl: %s%s\n", code == kExitNotAuthorized ? "not authorized: " : "",
                 error.message.c_str());
    return code;
  };
  ctl::RequestClient client;
  if (auto r =
          client.connect(vm["endpoint"].as<std::string>(), timeout_ms, curve ? &*curve : nullptr);
      !r) {
    return fail(r.error());
  }
  auto reply = client.callEncoded(type, body);
  if (!reply) {
    return fail(reply.error());
  }
  return show(command, *reply, as_json);
}

int main(int argc, char** argv) {
  return qos::daemon::runGuarded("qosctl", [&] { return runMain(argc, argv); });
}
