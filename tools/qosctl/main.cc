// qosctl: the operator's command line for qosmgr.
//
//   qosctl [--endpoint EP] [--json] [--timeout MS] request --app NAME --src IP[:PORT]
//          --dst IP[:PORT] --proto udp|tcp|sctp [--bidir] [--lease SEC]
//   qosctl [...] release FLOW_ID
//   qosctl [...] refresh FLOW_ID [--lease SEC]
//   qosctl [...] flows | networks | appliances | stats
//
// Exit codes: 0 done (granted), 1 could not reach qosmgr or internal error,
// 2 usage or invalid input, 3 denied (no capacity on the path).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <unistd.h>

#include "control/common/daemon.h"
#include "control/common/ip_prefix.h"
#include "control/common/ip_protocol.h"
#include "control/common/units.h"
#include "control/protocol/fields.h"
#include "control/protocol/messages.h"
#include "control/transport/client.h"

namespace po = boost::program_options;
using nlohmann::json;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitUnreachable = 1;
constexpr int kExitUsage = 2;
constexpr int kExitDenied = 3;

const char* kUsage =
    "Usage: qosctl [--endpoint EP] [--json] [--timeout MS] COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  request --app NAME --src IP[:PORT] --dst IP[:PORT] --proto udp|tcp|sctp\n"
    "          [--bidir] [--lease SEC] [--client ID] [--request-id ID]\n"
    "                       ask qosmgr to admit a flow; prints the grant\n"
    "  release FLOW_ID      release a flow's reservation on every network\n"
    "  refresh FLOW_ID [--lease SEC]   extend a flow's lease\n"
    "  flows                the flows holding reservations\n"
    "  networks             capacity, reserved and available per network/SLA and class\n"
    "  appliances           the appliances known to qosmgr\n"
    "  stats                qosmgr's counters\n"
    "\n"
    "IPv6 with a port: [2001:db8::1]:5004.\n"
    "Exit codes: 0 done, 1 qosmgr unreachable or internal error, 2 usage or invalid\n"
    "input, 3 denied (no capacity on the path).\n";

// A value as text, "-" when missing.
std::string text(const json& j, const std::string& key) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    return "-";
  }
  if (it->is_string()) {
    return it->get<std::string>();
  }
  if (it->is_boolean()) {
    return it->get<bool>() ? "yes" : "no";
  }
  if (it->is_array()) {
    std::string out;
    for (const auto& e : *it) {
      out += (out.empty() ? "" : " -> ") + (e.is_string() ? e.get<std::string>() : e.dump());
    }
    return out.empty() ? "-" : out;
  }
  return it->dump();
}

std::string rate(const json& j, const std::string& key) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned()) {
    return "-";
  }
  return qos::formatRate(it->get<uint64_t>());
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
    unsigned long p = 0;
    try {
      size_t used = 0;
      p = std::stoul(port_text, &used);
      if (used != port_text.size()) {
        throw std::invalid_argument("trailing");
      }
    } catch (const std::exception&) {
      p = 70000;
    }
    if (p == 0 || p > 65535) {
      error = "'" + s + "': port must be 1..65535";
      return false;
    }
    port = static_cast<uint16_t>(p);
  }
  return true;
}

int exitCodeOf(const qos::control::Reply& reply) {
  switch (reply.status) {
    case qos::control::ReplyStatus::Ok:
      return kExitOk;
    case qos::control::ReplyStatus::Denied:
      return kExitDenied;
    case qos::control::ReplyStatus::Error:
      return reply.error.code == "internal" ? kExitUnreachable : kExitUsage;
  }
  return kExitUnreachable;
}

// "expires in 60 s" from an absolute expiry in epoch milliseconds.
std::string leaseText(const json& g) {
  const auto it = g.find("expires_at_ms");
  if (it == g.end() || !it->is_number_unsigned()) {
    return "-";
  }
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const auto left_ms = static_cast<int64_t>(it->get<uint64_t>()) - now_ms;
  return left_ms <= 0 ? "expired" : "expires in " + std::to_string((left_ms + 999) / 1000) + " s";
}

void printGrant(const json& g) {
  const json& profile = g.value("profile", json::object());
  const int64_t profile_index = g.value("profile_index", int64_t{0});
  const std::string which =
      profile_index == 0 ? "default" : "alternate " + std::to_string(profile_index);
  std::printf("granted flow %s: %s, %s profile, class %s at %s (burst %s bytes)\n",
              text(g, "flow_id").c_str(), text(g, "app").c_str(), which.c_str(),
              text(profile, "class").c_str(), rate(profile, "rate_bps").c_str(),
              text(profile, "burst_bytes").c_str());
  std::printf("  flow     %s %s:%s -> %s:%s%s\n", text(g, "proto").c_str(), text(g, "src").c_str(),
              text(g, "sport").c_str(), text(g, "dst").c_str(), text(g, "dport").c_str(),
              g.value("bidir", false) ? " (both ways)" : "");
  std::printf("  dscp     %s (mark the sender's packets with it)\n", text(g, "dscp").c_str());
  if (g.contains("reverse_dscp") && !g["reverse_dscp"].is_null()) {
    std::printf("  reverse  dscp %s for the other host; path %s\n", text(g, "reverse_dscp").c_str(),
                text(g, "reverse_path").c_str());
  }
  std::printf("  path     %s\n", text(g, "path").c_str());
  const json& meter = g.value("meter", json::object());
  std::printf("  meter    srTCM cir %s, cbs %s B, ebs %s B\n", rate(meter, "cir_bps").c_str(),
              text(meter, "cbs_bytes").c_str(), text(meter, "ebs_bytes").c_str());
  std::printf("  lease    %s\n", leaseText(g).c_str());
}

int show(const std::string& command, const qos::control::Reply& reply, bool as_json) {
  if (as_json) {
    json out = reply.body;
    if (reply.status != qos::control::ReplyStatus::Ok) {
      out = {{"status", qos::control::replyStatusName(reply.status)},
             {"error", {{"code", reply.error.code}, {"message", reply.error.message}}},
             {"detail", reply.body}};
    }
    std::printf("%s\n", out.dump(2).c_str());
    return exitCodeOf(reply);
  }
  if (reply.status != qos::control::ReplyStatus::Ok) {
    std::fprintf(stderr, "qosctl: %s: %s (%s)\n",
                 reply.status == qos::control::ReplyStatus::Denied ? "denied" : "error",
                 reply.error.message.c_str(), reply.error.code.c_str());
    return exitCodeOf(reply);
  }
  const json& b = reply.body;
  if (command == "request") {
    printGrant(b);
  } else if (command == "release") {
    std::printf("released flow %s\n", text(b, "flow_id").c_str());
  } else if (command == "refresh") {
    std::printf("flow %s: lease now expires at %s ms since the epoch\n", text(b, "flow_id").c_str(),
                text(b, "expires_at_ms").c_str());
  } else if (command == "flows") {
    std::vector<std::vector<std::string>> rows;
    for (const json& g : b.value("flows", json::array())) {
      const json& p = g.value("profile", json::object());
      rows.push_back({text(g, "flow_id"), text(g, "app"), text(p, "class"), rate(p, "rate_bps"),
                      text(g, "dscp"), text(g, "proto"), text(g, "src") + ":" + text(g, "sport"),
                      text(g, "dst") + ":" + text(g, "dport"), text(g, "path"), leaseText(g)});
    }
    if (rows.empty()) {
      std::printf("no flows\n");
    } else {
      printTable(
          {"ID", "APP", "CLASS", "RATE", "DSCP", "PROTO", "SOURCE", "DESTINATION", "PATH", "LEASE"},
          rows);
    }
  } else if (command == "networks") {
    std::vector<std::vector<std::string>> rows;
    for (const json& u : b.value("classes", json::array())) {
      const bool limited = u.contains("capacity_bps") && u["capacity_bps"].is_number_unsigned();
      const bool sla = u.value("kind", std::string()) == "sla";
      rows.push_back({text(u, "owner"), sla ? "sla over " + text(u, "network") : "network",
                      text(u, "class"), text(u, "dscp"),
                      limited ? rate(u, "capacity_bps") : "unlimited", rate(u, "reserved_bps"),
                      limited ? rate(u, "available_bps") : "unlimited", text(u, "flows")});
    }
    printTable({"NAME", "KIND", "CLASS", "DSCP", "CAPACITY", "RESERVED", "AVAILABLE", "FLOWS"},
               rows);
  } else if (command == "appliances") {
    const json& list = b.value("appliances", json::array());
    if (list.empty()) {
      std::printf("no appliances registered\n");
    }
    for (const json& a : list) {
      std::printf("%s\n", a.dump().c_str());
    }
  } else {
    std::vector<std::vector<std::string>> rows;
    for (const auto& [key, value] : b.items()) {
      rows.push_back({key, value.is_string() ? value.get<std::string>() : value.dump()});
    }
    printTable({"KEY", "VALUE"}, rows);
  }
  return kExitOk;
}

}  // namespace

int runMain(int argc, char** argv) {
  po::options_description global("Global options");
  global.add_options()("help,h", "print help")("version,V", "print the version")(
      "endpoint", po::value<std::string>()->default_value("tcp://127.0.0.1:7700"),
      "qosmgr's ZeroMQ endpoint")("json", "print one JSON document instead of tables")(
      "timeout", po::value<int>()->default_value(3000), "milliseconds to wait for qosmgr")(
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
  const bool as_json = vm.count("json") != 0;
  const int timeout_ms = vm["timeout"].as<int>();
  if (timeout_ms <= 0) {
    std::fprintf(stderr, "qosctl: --timeout must be > 0 ms\n");
    return kExitUsage;
  }

  std::string type = command;
  json body = json::object();
  try {
    if (command == "request") {
      po::options_description opts("request options");
      opts.add_options()("app", po::value<std::string>(), "application name")(
          "src", po::value<std::string>()->required(), "source IP[:PORT]")(
          "dst", po::value<std::string>()->required(), "destination IP[:PORT]")(
          "proto", po::value<std::string>()->required(), "udp|tcp|sctp")(
          "bidir", "reserve both directions")("lease", po::value<uint32_t>(), "seconds")(
          "client", po::value<std::string>(), "client identity (for idempotent retries)")(
          "request-id", po::value<std::string>(), "request id (retries reuse it)");
      po::variables_map rvm;
      po::store(po::command_line_parser(args).options(opts).run(), rvm);
      po::notify(rvm);
      qos::control::AdmissionRequest request;
      std::string error;
      if (!parseEndpoint(rvm["src"].as<std::string>(), request.flow.src, request.flow.src_port,
                         error) ||
          !parseEndpoint(rvm["dst"].as<std::string>(), request.flow.dst, request.flow.dst_port,
                         error)) {
        std::fprintf(stderr, "qosctl: %s\n", error.c_str());
        return kExitUsage;
      }
      const std::optional<uint8_t> protocol =
          qos::control::portProtocolNumber(rvm["proto"].as<std::string>());
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
      type = "provision";
      body = json::parse(qos::control::encodeObject(request));
    } else if (command == "release" || command == "refresh") {
      po::options_description opts(command + " options");
      opts.add_options()("flow", po::value<uint64_t>()->required(), "flow id")(
          "lease", po::value<uint32_t>(), "seconds (refresh)");
      po::positional_options_description pos;
      pos.add("flow", 1);
      po::variables_map rvm;
      po::store(po::command_line_parser(args).options(opts).positional(pos).run(), rvm);
      po::notify(rvm);
      body = {{"flow_id", rvm["flow"].as<uint64_t>()}};
      if (command == "refresh" && rvm.count("lease") != 0) {
        body["lease"] = rvm["lease"].as<uint32_t>();
      }
    } else if (command == "flows" || command == "networks" || command == "appliances" ||
               command == "stats") {
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

  qos::control::RequestClient client;
  if (auto r = client.connect(vm["endpoint"].as<std::string>(), timeout_ms); !r) {
    std::fprintf(stderr, "qosctl: %s\n", r.error().message.c_str());
    return kExitUnreachable;
  }
  auto reply = client.call(type, body);
  if (!reply) {
    if (as_json) {
      std::printf("%s\n",
                  json{{"status", "error"},
                       {"error", {{"code", "unreachable"}, {"message", reply.error().message}}}}
                      .dump(2)
                      .c_str());
    }
    std::fprintf(stderr, "qosctl: %s\n", reply.error().message.c_str());
    return kExitUnreachable;
  }
  return show(command, *reply, as_json);
}

int main(int argc, char** argv) {
  return qos::daemon::runGuarded("qosctl", [&] { return runMain(argc, argv); });
}
