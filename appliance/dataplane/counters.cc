#include "appliance/dataplane/counters.h"

namespace qos::appliance {

const char* dropReasonName(DropReason reason) {
  switch (reason) {
    case DropReason::MeterRed:
      return "meter_red";
    case DropReason::MeterYellow:
      return "meter_yellow";
    case DropReason::ClassPolicy:
      return "class_policy";
    case DropReason::Unmatched:
      return "unmatched";
    case DropReason::Malformed:
      return "malformed";
    case DropReason::TxFull:
      return "tx_full";
    case DropReason::HandoffFull:
      return "handoff_full";
    case DropReason::Count:
      break;
  }
  return "unknown";
}

const char* matchKindName(MatchKind kind) {
  switch (kind) {
    case MatchKind::Flow:
      return "flow";
    case MatchKind::Class:
      return "class";
    case MatchKind::Unmatched:
      return "unmatched";
    case MatchKind::Malformed:
      return "malformed";
    case MatchKind::Count:
      break;
  }
  return "unknown";
}

const char* colorName(Color color) {
  switch (color) {
    case Color::Green:
      return "green";
    case Color::Yellow:
      return "yellow";
    case Color::Red:
      return "red";
    case Color::Count:
      break;
  }
  return "unknown";
}

}  // namespace qos::appliance
