#include "manager/service/server_metrics.h"

#include <algorithm>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

namespace qos::manager {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// Capacity and reservations, read from the engine at scrape time.
class UsageCollector : public prometheus::Collectable {
public:
  explicit UsageCollector(const AdmissionEngine& engine) : engine_(engine) {}

  std::vector<MetricFamily> Collect() const override {
    MetricFamily reserved{"qosmgr_class_reserved_bits_per_second",
                          "Bandwidth reserved per network or SLA and class",
                          MetricType::Gauge,
                          {}};
    MetricFamily capacity{"qosmgr_class_capacity_bits_per_second",
                          "Admission capacity per network or SLA and class (absent: unlimited)",
                          MetricType::Gauge,
                          {}};
    MetricFamily flows{"qosmgr_class_flows",
                       "Flows holding a reservation per network or SLA and class",
                       MetricType::Gauge,
                       {}};
    for (const ClassUsage& u : engine_.usage()) {
      const std::vector<ClientMetric::Label> labels = {
          {u.kind == UsageKind::Sla ? "sla" : "network", u.owner}, {"class", u.class_name}};
      ClientMetric r;
      r.label = labels;
      r.gauge.value = static_cast<double>(u.reserved_bps);
      reserved.metric.push_back(r);
      ClientMetric f;
      f.label = labels;
      f.gauge.value = static_cast<double>(u.flows);
      flows.metric.push_back(f);
      if (u.capacity_bps) {
        ClientMetric c;
        c.label = labels;
        c.gauge.value = static_cast<double>(*u.capacity_bps);
        capacity.metric.push_back(c);
      }
    }
    MetricFamily active{"qosmgr_flows", "Flows with a live grant", MetricType::Gauge, {}};
    ClientMetric a;
    a.gauge.value = static_cast<double>(engine_.flowCount());
    active.metric.push_back(a);
    std::vector<MetricFamily> out = {reserved, capacity, flows, active};
    appendAppliances(out);
    return out;
  }

  /** The request loop's latest view of the appliances (it owns the hub). */
  void setAppliances(std::vector<control::ApplianceStatus> appliances) {
    const std::lock_guard<std::mutex> lock(appliances_mutex_);
    appliances_ = std::move(appliances);
  }

private:
  void appendAppliances(std::vector<MetricFamily>& out) const {
    MetricFamily up{"qosmgr_appliance_up",
                    "1 if the appliance synced within three heartbeats (up or syncing)",
                    MetricType::Gauge,
                    {}};
    MetricFamily rules{"qosmgr_appliance_rules",
                       "Rules an appliance should enforce, by state (installed, pending, rejected)",
                       MetricType::Gauge,
                       {}};
    MetricFamily behind{"qosmgr_appliance_changes_unacknowledged",
                        "Changes sent for the appliance that it has not acknowledged yet",
                        MetricType::Gauge,
                        {}};
    const std::lock_guard<std::mutex> lock(appliances_mutex_);
    for (const control::ApplianceStatus& a : appliances_) {
      const ClientMetric::Label name{"appliance", a.name};
      ClientMetric m;
      m.label = {name};
      m.gauge.value = a.state == control::ApplianceState::Down ? 0 : 1;
      up.metric.push_back(m);
      m.gauge.value = static_cast<double>(a.seq - std::min(a.seq, a.seq_acked));
      behind.metric.push_back(m);
      for (const auto& [state, n] :
           {std::pair{"installed", a.rules_installed}, std::pair{"pending", a.rules_pending},
            std::pair{"rejected", a.rules_rejected}}) {
        ClientMetric r;
        r.label = {name, {"state", state}};
        r.gauge.value = static_cast<double>(n);
        rules.metric.push_back(r);
      }
    }
    out.push_back(std::move(up));
    out.push_back(std::move(rules));
    out.push_back(std::move(behind));
  }

  const AdmissionEngine& engine_;
  mutable std::mutex appliances_mutex_;
  std::vector<control::ApplianceStatus> appliances_;  ///< guarded by appliances_mutex_
};

/** Rows of the requests counter: every message type, "invalid", then "unknown". */
constexpr size_t kRequestRows = control::kMessageTypes.size() + 2;

std::string_view requestRowName(size_t row) {
  if (row < control::kMessageTypes.size()) {
    return control::kMessageTypes[row].name;
  }
  return row == control::kMessageTypes.size() ? "invalid" : "unknown";
}

}  // namespace

struct ServerMetrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::shared_ptr<UsageCollector> usage;
  std::unique_ptr<prometheus::Exposer> exposer;
  static constexpr size_t kStatuses = 3;  // ok, denied, error
  static constexpr size_t kDenyReasons = static_cast<size_t>(DenyReason::NoCapacity) + 1;
  prometheus::Family<prometheus::Counter>* admissions = nullptr;
  /** By request row (requestRow()) and status. */
  std::array<std::array<prometheus::Counter*, kStatuses>, kRequestRows> requests{};
  std::vector<prometheus::Counter*> admissions_by_profile;  ///< made at first use
  std::array<prometheus::Counter*, kDenyReasons> denials{};
  prometheus::Counter* releases = nullptr;
  prometheus::Counter* expired = nullptr;
  prometheus::Histogram* commit_seconds = nullptr;
  prometheus::Counter* committed_changes = nullptr;
};

ServerMetrics::ServerMetrics(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ServerMetrics::~ServerMetrics() = default;

Result<std::unique_ptr<ServerMetrics>> ServerMetrics::start(const std::string& listen,
                                                            const AdmissionEngine& engine) {
  auto impl = std::make_unique<Impl>();
  auto& r = *impl->registry;
  auto& requests = prometheus::BuildCounter()
                       .Name("qosmgr_requests_total")
                       .Help("Control messages answered, by type and status")
                       .Register(r);
  for (size_t t = 0; t < kRequestRows; ++t) {
    const std::string type(requestRowName(t));
    for (size_t st = 0; st < Impl::kStatuses; ++st) {
      impl->requests[t][st] = &requests.Add(
          {{"type", type},
           {"status", control::replyStatusName(static_cast<control::ReplyStatus>(st))}});
    }
  }
  impl->admissions = &prometheus::BuildCounter()
                          .Name("qosmgr_admissions_total")
                          .Help("Flows admitted, by profile (default or alternate N)")
                          .Register(r);
  auto& denials = prometheus::BuildCounter()
                      .Name("qosmgr_denials_total")
                      .Help("Requests denied, by reason")
                      .Register(r);
  for (size_t reason = 0; reason < Impl::kDenyReasons; ++reason) {
    impl->denials[reason] =
        &denials.Add({{"reason", std::string(denyReasonName(static_cast<DenyReason>(reason)))}});
  }
  impl->releases = &prometheus::BuildCounter()
                        .Name("qosmgr_releases_total")
                        .Help("Flows released by their hosts")
                        .Register(r)
                        .Add({});
  impl->expired = &prometheus::BuildCounter()
                       .Name("qosmgr_lease_expiries_total")
                       .Help("Flows released because their lease lapsed")
                       .Register(r)
                       .Add({});
  impl->committed_changes = &prometheus::BuildCounter()
                                 .Name("qosmgr_store_changes_total")
                                 .Help("Reservation changes written to the store")
                                 .Register(r)
                                 .Add({});
  impl->commit_seconds =
      &prometheus::BuildHistogram()
           .Name("qosmgr_store_commit_seconds")
           .Help("Time of one group commit to the reservation store")
           .Register(r)
           .Add({}, prometheus::Histogram::BucketBoundaries{0.0001, 0.0005, 0.001, 0.002, 0.005,
                                                            0.01, 0.05, 0.1, 0.5});
  impl->usage = std::make_shared<UsageCollector>(engine);
  if (!listen.empty()) {
    try {
      impl->exposer = std::make_unique<prometheus::Exposer>(listen);
    } catch (const std::exception& e) {
      return makeError("cannot serve metrics on " + listen + " (is the port in use?): " + e.what());
    }
    impl->exposer->RegisterCollectable(impl->registry);
    impl->exposer->RegisterCollectable(impl->usage);
  }
  return std::unique_ptr<ServerMetrics>(new ServerMetrics(std::move(impl)));
}

void ServerMetrics::countRequest(std::string_view type, control::ReplyStatus status) {
  size_t row = 0;
  while (row < kRequestRows - 1 && requestRowName(row) != type) {
    ++row;
  }
  impl_->requests[row][static_cast<size_t>(status)]->Increment();
}

void ServerMetrics::countAdmission(size_t profile_index) {
  auto& by_profile = impl_->admissions_by_profile;
  // Profiles are the configured default and alternates: a handful.
  while (by_profile.size() <= profile_index) {
    const size_t i = by_profile.size();
    by_profile.push_back(&impl_->admissions->Add(
        {{"profile", i == 0 ? "default" : "alternate" + std::to_string(i)}}));
  }
  by_profile[profile_index]->Increment();
}

void ServerMetrics::countDenial(DenyReason reason) {
  impl_->denials[static_cast<size_t>(reason)]->Increment();
}

void ServerMetrics::countRelease() { impl_->releases->Increment(); }

void ServerMetrics::countExpired(size_t n) { impl_->expired->Increment(static_cast<double>(n)); }

void ServerMetrics::setAppliances(std::vector<control::ApplianceStatus> appliances) {
  impl_->usage->setAppliances(std::move(appliances));
}

void ServerMetrics::observeCommit(size_t n_changes, double seconds) {
  impl_->committed_changes->Increment(static_cast<double>(n_changes));
  impl_->commit_seconds->Observe(seconds);
}

std::vector<prometheus::MetricFamily> ServerMetrics::collect() const {
  std::vector<MetricFamily> families = impl_->registry->Collect();
  for (MetricFamily& family : impl_->usage->Collect()) {
    families.push_back(std::move(family));
  }
  return families;
}

}  // namespace qos::manager
