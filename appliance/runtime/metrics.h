// The appliance's Prometheus endpoint: per-port packet, byte, drop and
// malformed counters, summed over workers when scraped (never per packet).
#pragma once

#include <memory>
#include <string>

#include "control/common/result.h"

namespace qos::appliance {

class Appliance;

/** Serves /metrics until destroyed.  The Appliance must outlive it. */
class MetricsServer {
public:
  static Result<std::unique_ptr<MetricsServer>> start(const std::string& listen,
                                                      const Appliance& appliance);
  ~MetricsServer();

private:
  struct Impl;
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qos::appliance
