// qosmgr's Prometheus metrics: request counters by type and status,
// admissions, denials by reason, releases, lease expiries, store commit
// latency, and, read from the engine when scraped, per network/SLA/class
// capacity and reservation.
#pragma once

#include <memory>
#include <string>

#include "control/common/result.h"
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

  void countRequest(const std::string& type, const std::string& status);
  void countAdmission(size_t profile_index);
  void countDenial(DenyReason reason);
  void countRelease();
  void countExpired(size_t n);
  void observeCommit(size_t n_changes, double seconds);

private:
  struct Impl;
  explicit ServerMetrics(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qos::manager
