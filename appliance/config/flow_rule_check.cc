#include "appliance/config/flow_rule_check.h"

#include "control/common/ip_protocol.h"

namespace qos::appliance {
namespace {

constexpr uint8_t kMaxDscp = 63;

std::optional<RuleProblem> checkAction(const PacketAction& action, const char* field) {
  if (action.kind == PacketAction::Kind::Remark && action.dscp > kMaxDscp) {
    return RuleProblem{field, "remark needs a DSCP 0..63"};
  }
  return std::nullopt;
}

std::optional<RuleProblem> checkMeter(const MeterConfig& meter) {
  if (meter.cir_bytes_per_sec == 0) {
    return RuleProblem{"meter.cir", "must be > 0"};
  }
  if (meter.mode == MeterMode::Srtcm) {
    if (meter.cbs_bytes == 0 && meter.ebs_bytes == 0) {
      return RuleProblem{"meter.cbs", "cbs and ebs cannot both be 0"};
    }
  } else {
    if (meter.pir_bytes_per_sec < meter.cir_bytes_per_sec) {
      return RuleProblem{"meter.pir", "must be >= cir (RFC 2698)"};
    }
    if (meter.cbs_bytes == 0) {
      return RuleProblem{"meter.cbs", "must be > 0"};
    }
    if (meter.pbs_bytes == 0) {
      return RuleProblem{"meter.pbs", "must be > 0"};
    }
  }
  if (auto problem = checkAction(meter.yellow, "meter.yellow")) {
    return problem;
  }
  return checkAction(meter.red, "meter.red");
}

}  // namespace

std::optional<RuleProblem> checkFlowRule(const FlowRule& rule) {
  if (rule.src.family != 4 && rule.src.family != 6) {
    return RuleProblem{"src", "must be an IPv4 or IPv6 address"};
  }
  if (rule.src.family != rule.dst.family) {
    return RuleProblem{"dst", "src and dst must both be IPv4 or both IPv6"};
  }
  if ((rule.src_port != 0 || rule.dst_port != 0) && rule.protocol != kAnyProtocol &&
      !ipProtocolHasPorts(rule.protocol)) {
    return RuleProblem{"proto", "ports only apply to udp, tcp or sctp"};
  }
  if (rule.dscp > kMaxDscp) {
    return RuleProblem{"dscp", std::to_string(rule.dscp) + " is out of range 0..63"};
  }
  if (rule.meter) {
    return checkMeter(*rule.meter);
  }
  return std::nullopt;
}

}  // namespace qos::appliance
