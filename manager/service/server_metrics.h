// qosmgr's Prometheus metrics: request counters by type and status,
// admissions, denials by reason, releases, lease expiries, store commit
// latency, and, read from the engine when scraped, per network/SLA/class
// capacity and reservation; per appliance, whether it is up and its rules
// installed, pending and rejected (as the request loop last published them).
//
// Every labelled series is made once (at start, or at its first use for
// admissions by profile) and kept: counting is then one atomic add, where
// prometheus::Family::Add() would build and hash a label map each time.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/metric_family.h>

#include "control/common/result.h"
#include "control/protocol/envelope.h"
#include "control/protocol/message_types.h"
#include "manager/admission/admission.h"

namespace qos::manager {

class ServerMetrics {
public:
  /**
   * Creates the metrics; serves them on @p listen ("127.0.0.1:9471") unless
   * it is empty.  @p engine must outlive this object.
   */
  static Result<std::unique_ptr<ServerMetrics>> start(const std::string& listen,
                                                      const AdmissionEngine& engine);
  ~ServerMetrics();

  /**
   * Counts an answered message.  @p type is a name of control::kMessageTypes
   * or "invalid" (a message that could not be decoded); any other is counted
   * as "unknown", so a client cannot create series at will.
   */
  void countRequest(std::string_view type, control::ReplyStatus status);
  void countAdmission(size_t profile_index);
  void countDenial(DenyReason reason);
  void countRelease();
  void countExpired(size_t n);
  void observeCommit(size_t n_changes, double seconds);
  /** The appliances as the request loop last saw them (any thread; scraped as gauges). */
  void setAppliances(std::vector<control::ApplianceStatus> appliances);

  /** What a scrape would return now (tests). */
  std::vector<prometheus::MetricFamily> collect() const;

private:
  struct Impl;
  explicit ServerMetrics(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qos::manager
