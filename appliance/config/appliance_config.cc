#include "appliance/config/appliance_config.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>
#include <tuple>

#include "appliance/config/flow_rule_check.h"
#include "control/common/ip_protocol.h"
#include "control/config/endpoint.h"
#include "control/config/toml_support.h"

namespace qos::appliance {
namespace {

using config::ConfigReader;
using config::Need;
using config::Section;

constexpr int64_t kMaxDscp = 63;

std::optional<IpAddress> readAddress(Section& s, std::string_view key) {
  auto text = s.getString(key, Need::Required);
  if (!text) {
    return std::nullopt;
  }
  auto addr = parseIpAddress(*text);
  if (!addr) {
    s.failAt(key, addr.error().message);
    return std::nullopt;
  }
  return *addr;
}

std::optional<IpPrefix> readPrefix(Section& s, std::string_view key) {
  auto text = s.getString(key);
  if (!text) {
    return std::nullopt;
  }
  auto prefix = parseIpPrefix(*text);
  if (!prefix) {
    s.failAt(key, prefix.error().message);
    return std::nullopt;
  }
  return *prefix;
}

std::optional<uint8_t> readProtocol(Section& s, std::string_view key) {
  auto text = s.getString(key);
  if (!text) {
    return kAnyProtocol;
  }
  auto proto = parseProtocol(*text);
  if (!proto) {
    s.failAt(key, proto.error().message);
    return std::nullopt;
  }
  return *proto;
}

std::optional<PacketAction> readAction(Section& s, std::string_view key, PacketAction fallback,
                                       bool trust_word) {
  auto text = s.getString(key);
  if (!text) {
    return fallback;
  }
  if (trust_word && *text == "trust") {
    return PacketAction{PacketAction::Kind::Pass, 0};
  }
  if (trust_word && *text == "pass") {
    s.failAt(key, "class rules say \"trust\", \"remark:N\" or \"drop\"");
    return std::nullopt;
  }
  auto action = parsePacketAction(*text);
  if (!action) {
    s.failAt(key, action.error().message);
    return std::nullopt;
  }
  return *action;
}

std::optional<MeterConfig> readMeter(Section& m) {
  MeterConfig meter;
  const auto mode = m.getString("mode", Need::Required);
  if (mode == "srtcm") {
    meter.mode = MeterMode::Srtcm;
  } else if (mode == "trtcm") {
    meter.mode = MeterMode::Trtcm;
  } else if (mode) {
    m.failAt("mode", "expected \"srtcm\" (RFC 2697) or \"trtcm\" (RFC 2698)");
  }
  const auto cir = m.getRateBitsPerSec("cir", Need::Required);
  const auto cbs = m.getSizeBytes("cbs", Need::Required);
  std::optional<uint64_t> ebs;
  std::optional<uint64_t> pir;
  std::optional<uint64_t> pbs;
  if (meter.mode == MeterMode::Srtcm) {
    ebs = m.getSizeBytes("ebs", Need::Required);
  } else {
    pir = m.getRateBitsPerSec("pir", Need::Required);
    pbs = m.getSizeBytes("pbs", Need::Required);
  }
  const auto yellow = readAction(m, "yellow", PacketAction{PacketAction::Kind::Pass, 0}, false);
  const auto red = readAction(m, "red", PacketAction{PacketAction::Kind::Drop, 0}, false);
  if (m.reader().failed()) {
    return std::nullopt;
  }
  // What the values mean together is checkFlowRule()'s to say, for every rule.
  meter.cir_bytes_per_sec = (*cir + 7) / 8;
  meter.cbs_bytes = *cbs;
  if (meter.mode == MeterMode::Srtcm) {
    meter.ebs_bytes = *ebs;
  } else {
    meter.pir_bytes_per_sec = (*pir + 7) / 8;
    meter.pbs_bytes = *pbs;
  }
  meter.yellow = *yellow;
  meter.red = *red;
  m.rejectUnknownKeys();
  return meter;
}

void readFlow(Section& f, ApplianceConfig& cfg) {
  FlowRule rule;
  const auto src = readAddress(f, "src");
  const auto dst = readAddress(f, "dst");
  const auto proto = readProtocol(f, "proto");
  const auto sport = f.getInt("sport", 0, 65535);
  const auto dport = f.getInt("dport", 0, 65535);
  const auto dscp = f.getInt("dscp", 0, kMaxDscp, Need::Required);
  std::optional<Section> meter_table = f.getTable("meter");
  std::optional<MeterConfig> meter;
  if (meter_table) {
    meter = readMeter(*meter_table);
  }
  f.rejectUnknownKeys();
  if (f.reader().failed()) {
    return;
  }
  rule.src = *src;
  rule.dst = *dst;
  rule.protocol = *proto;
  rule.src_port = static_cast<uint16_t>(sport.value_or(0));
  rule.dst_port = static_cast<uint16_t>(dport.value_or(0));
  rule.dscp = static_cast<uint8_t>(*dscp);
  rule.meter = meter;
  if (const std::optional<RuleProblem> problem = checkFlowRule(rule)) {
    constexpr std::string_view kMeter = "meter.";
    if (meter_table && problem->field.starts_with(kMeter)) {
      meter_table->failAt(problem->field.substr(kMeter.size()), problem->message);
    } else {
      f.failAt(problem->field, problem->message);
    }
    return;
  }
  cfg.flows.push_back(rule);
}

void readClass(Section& c, ApplianceConfig& cfg) {
  ClassRule rule;
  rule.name = c.getString("name").value_or(c.path());
  const auto src = readPrefix(c, "src");
  const auto dst = readPrefix(c, "dst");
  const auto proto = readProtocol(c, "proto");
  const auto sports = c.getPortRange("sport");
  const auto dports = c.getPortRange("dport");
  const auto action = readAction(c, "action", PacketAction{}, true);
  if (!c.has("action")) {
    c.fail("action: missing (expected \"trust\", \"remark:N\" or \"drop\")");
  }
  if (const toml::node* n = c.node("dscp_in")) {
    rule.dscp_in_mask = 0;
    auto add = [&](const toml::node& v) {
      const auto* i = v.as_integer();
      if (i == nullptr || i->get() < 0 || i->get() > kMaxDscp) {
        c.failAt("dscp_in", "expected a DSCP 0..63 or an array of them");
        return;
      }
      rule.dscp_in_mask |= 1ULL << i->get();
    };
    if (const auto* arr = n->as_array()) {
      for (const auto& v : *arr) {
        add(v);
      }
    } else {
      add(*n);
    }
  }
  c.rejectUnknownKeys();
  if (c.reader().failed()) {
    return;
  }
  if (src && dst && src->address.family != dst->address.family) {
    c.failAt("dst", "src and dst must both be IPv4 or both IPv6");
    return;
  }
  rule.src = src;
  rule.dst = dst;
  rule.protocol = *proto;
  rule.src_ports = *sports;
  rule.dst_ports = *dports;
  rule.action = *action;
  cfg.policy.classes.push_back(rule);
}

void readControl(Section& c, ApplianceConfig& cfg) {
  ControlConfig control;
  control.manager = c.getString("manager", Need::Required).value_or("");
  control.name = c.getString("name", Need::Required).value_or("");
  const auto secret = c.getString("secret_key");
  const auto manager_key = c.getString("manager_public_key");
  c.rejectUnknownKeys();
  if (c.reader().failed()) {
    return;
  }
  if (auto problem = config::checkZmqEndpoint(control.manager)) {
    c.failAt("manager", *problem);
    return;
  }
  if (!config::isPeerName(control.name)) {
    c.failAt("name", "invalid name '" + control.name +
                         "': names are letters, digits, '-' and '_', as in the manager's "
                         "[[appliance]]");
    return;
  }
  if (secret.has_value() != manager_key.has_value()) {
    c.failAt(secret ? "secret_key" : "manager_public_key",
             "CURVE needs both secret_key (this appliance's) and manager_public_key");
    return;
  }
  if (!secret && !config::isLocalEndpoint(control.manager)) {
    c.failAt("manager", "the manager at " + control.manager +
                            " is not on this machine: set secret_key and manager_public_key "
                            "(CURVE), which only a loopback or ipc manager may go without");
    return;
  }
  if (secret) {
    control.secret_key_path = config::pathFromConfig(cfg.source_path, *secret);
    control.manager_public_key = config::publicKeyFromConfig(cfg.source_path, *manager_key);
  }
  cfg.control = std::move(control);
}

Result<ApplianceConfig> readConfig(const toml::table& root, const std::string& path) {
  ConfigReader reader;
  Section top(reader, root, "");
  ApplianceConfig cfg;
  cfg.source_path = path;

  if (auto eal = top.getTable("eal")) {
    if (auto args = eal->getStringArray("args")) {
      cfg.eal_args = *args;
    }
    cfg.eal_in_memory = eal->getBool("in_memory").value_or(true);
    eal->rejectUnknownKeys();
  }

  std::set<std::string> devices;
  for (Section& p : top.getTableArray("pair")) {
    PortPair pair;
    pair.inside = p.getString("inside", Need::Required).value_or("");
    pair.outside = p.getString("outside", Need::Required).value_or("");
    p.rejectUnknownKeys();
    if (reader.failed()) {
      break;
    }
    if (pair.inside == pair.outside) {
      p.failAt("outside", "inside and outside must be different devices");
    } else if (!devices.insert(pair.inside).second) {
      p.failAt("inside", "device '" + pair.inside + "' is already in another pair");
    } else if (!devices.insert(pair.outside).second) {
      p.failAt("outside", "device '" + pair.outside + "' is already in another pair");
    }
    cfg.pairs.push_back(pair);
  }
  if (!reader.failed() && cfg.pairs.empty()) {
    top.fail("at least one [[pair]] (inside = \"DEV\", outside = \"DEV\") is required");
  }

  if (auto policy = top.getTable("policy")) {
    const auto unmatched = policy->getString("unmatched");
    if (unmatched == "remark") {
      cfg.policy.unmatched = UnmatchedPolicy::Remark;
    } else if (unmatched == "trust") {
      cfg.policy.unmatched = UnmatchedPolicy::Trust;
    } else if (unmatched == "drop") {
      cfg.policy.unmatched = UnmatchedPolicy::Drop;
    } else if (unmatched) {
      policy->failAt("unmatched", "expected \"remark\", \"trust\" or \"drop\"");
    }
    if (auto dscp = policy->getInt("default_dscp", 0, kMaxDscp)) {
      cfg.policy.default_dscp = static_cast<uint8_t>(*dscp);
    }
    const auto malformed = policy->getString("malformed");
    if (malformed == "forward") {
      cfg.policy.malformed = MalformedPolicy::Forward;
    } else if (malformed == "drop") {
      cfg.policy.malformed = MalformedPolicy::Drop;
    } else if (malformed) {
      policy->failAt("malformed", "expected \"forward\" or \"drop\"");
    }
    policy->rejectUnknownKeys();
  }

  for (Section& c : top.getTableArray("class")) {
    readClass(c, cfg);
  }

  // The family too: 198.18.1.10 and c612:10a:: share their address bytes.
  std::set<std::tuple<uint8_t, std::array<uint8_t, 16>, std::array<uint8_t, 16>, uint8_t, uint16_t,
                      uint16_t>>
      seen;
  for (Section& f : top.getTableArray("flow")) {
    readFlow(f, cfg);
    if (reader.failed()) {
      break;
    }
    const FlowRule& r = cfg.flows.back();
    if (!seen.insert({r.src.family, r.src.bytes, r.dst.bytes, r.protocol, r.src_port, r.dst_port})
             .second) {
      f.fail("the same flow (src, dst, proto, sport, dport) is defined twice");
    }
  }

  if (auto dp = top.getTable("dataplane")) {
    if (auto v = dp->getInt("max_flows", 1024, int64_t{1} << 26)) {
      cfg.dataplane.max_flows = static_cast<uint32_t>(*v);
    }
    if (auto v = dp->getInt("mbufs", 1023, int64_t{1} << 24)) {
      cfg.dataplane.mbufs = static_cast<uint32_t>(*v);
    }
    if (auto v = dp->getInt("rx_descriptors", 64, 16384)) {
      cfg.dataplane.rx_descriptors = static_cast<uint16_t>(*v);
    }
    if (auto v = dp->getInt("tx_descriptors", 64, 16384)) {
      cfg.dataplane.tx_descriptors = static_cast<uint16_t>(*v);
    }
    if (auto v = dp->getInt("idle_sleep_us", 0, 100000)) {
      cfg.dataplane.idle_sleep_us = static_cast<uint32_t>(*v);
    }
    dp->rejectUnknownKeys();
  }
  if (!reader.failed() && cfg.flows.size() > cfg.dataplane.max_flows) {
    top.fail("dataplane.max_flows (" + std::to_string(cfg.dataplane.max_flows) +
             ") is smaller than the " + std::to_string(cfg.flows.size()) + " [[flow]] rules");
  }

  if (auto control = top.getTable("control")) {
    readControl(*control, cfg);
  }

  if (auto metrics = top.getTable("metrics")) {
    cfg.metrics.listen = metrics->getString("listen").value_or("");
    metrics->rejectUnknownKeys();
  }

  top.rejectUnknownKeys();
  if (reader.failed()) {
    return reader.error();
  }
  return cfg;
}

}  // namespace

Result<uint8_t> parseProtocol(std::string_view text) {
  if (const std::optional<uint8_t> number = ipProtocolNumber(text)) {
    return *number;
  }
  if (text == "any") {
    return kAnyProtocol;
  }
  unsigned number = 0;
  if (parseUnsigned(text, number) && number > 0 && number <= 255) {
    return static_cast<uint8_t>(number);
  }
  return makeError("unknown protocol '" + std::string(text) +
                   "': expected udp, tcp, sctp, icmp, icmpv6, any or 1..255");
}

Result<PacketAction> parsePacketAction(std::string_view text) {
  if (text == "pass") {
    return PacketAction{PacketAction::Kind::Pass, 0};
  }
  if (text == "drop") {
    return PacketAction{PacketAction::Kind::Drop, 0};
  }
  constexpr std::string_view kRemark = "remark:";
  if (text.starts_with(kRemark)) {
    unsigned dscp = 0;
    if (parseUnsigned(text.substr(kRemark.size()), dscp) && dscp <= kMaxDscp) {
      return PacketAction{PacketAction::Kind::Remark, static_cast<uint8_t>(dscp)};
    }
    return makeError("invalid action '" + std::string(text) + "': remark needs a DSCP 0..63");
  }
  return makeError("invalid action '" + std::string(text) +
                   "': expected \"pass\", \"drop\" or \"remark:N\"");
}

Result<ApplianceConfig> loadApplianceConfig(const std::string& path) {
  auto root = config::parseTomlFile(path);
  if (!root) {
    return root.error();
  }
  return readConfig(*root, path);
}

Result<ApplianceConfig> parseApplianceConfig(std::string_view text,
                                             const std::string& source_name) {
  auto root = config::parseTomlText(text, source_name);
  if (!root) {
    return root.error();
  }
  return readConfig(*root, source_name);
}

}  // namespace qos::appliance
