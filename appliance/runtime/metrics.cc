#include "appliance/runtime/metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>

#include "appliance/runtime/appliance.h"

namespace qos::appliance {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

ClientMetric counterOf(double value, std::vector<ClientMetric::Label> labels) {
  ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = value;
  return m;
}

class ApplianceCollector : public prometheus::Collectable {
public:
  explicit ApplianceCollector(const Appliance& app) : app_(app) {}

  std::vector<MetricFamily> Collect() const override {
    MetricFamily rx_pkts{
        "qosgate_rx_packets_total", "Frames received, by port", MetricType::Counter, {}};
    MetricFamily rx_bytes{
        "qosgate_rx_bytes_total", "Bytes received, by port", MetricType::Counter, {}};
    MetricFamily tx_pkts{"qosgate_tx_packets_total",
                         "Frames forwarded out of the peer port, by ingress port",
                         MetricType::Counter,
                         {}};
    MetricFamily tx_bytes{
        "qosgate_tx_bytes_total", "Bytes forwarded, by ingress port", MetricType::Counter, {}};
    MetricFamily drops{"qosgate_dropped_packets_total",
                       "Frames dropped, by ingress port and reason",
                       MetricType::Counter,
                       {}};
    MetricFamily malformed{"qosgate_malformed_packets_total",
                           "Malformed frames (forwarded or dropped), by port and reason",
                           MetricType::Counter,
                           {}};
    MetricFamily matched{"qosgate_classified_packets_total",
                         "IP packets by how they were classified",
                         MetricType::Counter,
                         {}};
    MetricFamily remarked{"qosgate_remarked_packets_total",
                          "IP packets whose DSCP was rewritten",
                          MetricType::Counter,
                          {}};
    MetricFamily non_ip{
        "qosgate_non_ip_packets_total", "Non-IP frames passed through", MetricType::Counter, {}};
    MetricFamily hw_missed{"qosgate_port_rx_missed_packets_total",
                           "Frames the port dropped before qosgate saw them (RX queue full)",
                           MetricType::Counter,
                           {}};
    MetricFamily hw_rx_errors{
        "qosgate_port_rx_errors_total", "Erroneous frames received", MetricType::Counter, {}};
    MetricFamily hw_nombuf{
        "qosgate_port_rx_nombuf_total", "RX mbuf allocation failures", MetricType::Counter, {}};
    MetricFamily hw_tx_errors{
        "qosgate_port_tx_errors_total", "Failed transmissions", MetricType::Counter, {}};
    MetricFamily link_up{
        "qosgate_port_link_up", "1 if the port's link is up", MetricType::Gauge, {}};
    for (const PortInfo& port : app_.ports()) {
      const PortTotals t = app_.portTotals(port.port_id);
      const PortHardwareStats hw = app_.hardwareStats(port.port_id);
      const ClientMetric::Label label{"port", port.device};
      rx_pkts.metric.push_back(counterOf(static_cast<double>(t.rx_pkts), {label}));
      rx_bytes.metric.push_back(counterOf(static_cast<double>(t.rx_bytes), {label}));
      tx_pkts.metric.push_back(counterOf(static_cast<double>(t.tx_pkts), {label}));
      tx_bytes.metric.push_back(counterOf(static_cast<double>(t.tx_bytes), {label}));
      hw_missed.metric.push_back(counterOf(static_cast<double>(hw.rx_missed), {label}));
      hw_rx_errors.metric.push_back(counterOf(static_cast<double>(hw.rx_errors), {label}));
      hw_nombuf.metric.push_back(counterOf(static_cast<double>(hw.rx_nombuf), {label}));
      hw_tx_errors.metric.push_back(counterOf(static_cast<double>(hw.tx_errors), {label}));
      ClientMetric up;
      up.label = {label, {"role", port.role}};
      up.gauge.value = hw.link_up ? 1 : 0;
      link_up.metric.push_back(up);
      remarked.metric.push_back(counterOf(static_cast<double>(t.remarked_pkts), {label}));
      non_ip.metric.push_back(counterOf(static_cast<double>(t.non_ip_pkts), {label}));
      for (size_t r = 0; r < kDropReasons; ++r) {
        drops.metric.push_back(counterOf(static_cast<double>(t.drops[r]),
                                         {label, {"reason", dropReasonName(DropReason(r))}}));
      }
      for (size_t r = 1; r < kMalformedReasons; ++r) {
        malformed.metric.push_back(
            counterOf(static_cast<double>(t.malformed[r]),
                      {label, {"reason", std::string(malformedReasonName(MalformedReason(r)))}}));
      }
      for (size_t k = 0; k < kMatchKinds; ++k) {
        matched.metric.push_back(counterOf(static_cast<double>(t.matched[k]),
                                           {label, {"match", matchKindName(MatchKind(k))}}));
      }
    }
    MetricFamily flows{"qosgate_flows", "Admitted flows installed", MetricType::Gauge, {}};
    ClientMetric n;
    n.gauge.value = app_.flowCount();
    flows.metric.push_back(n);
    MetricFamily capacity{
        "qosgate_flow_capacity", "Flows the table can hold", MetricType::Gauge, {}};
    ClientMetric c;
    c.gauge.value = app_.flows().capacity();
    capacity.metric.push_back(c);
    MetricFamily rules{"qosgate_rules",
                       "Flow rules held, by owner: the config file's or the manager's",
                       MetricType::Gauge,
                       {}};
    for (const auto& [origin, name] :
         {std::pair{RuleOrigin::File, "file"}, std::pair{RuleOrigin::Manager, "manager"}}) {
      ClientMetric r;
      r.label = {{"owner", name}};
      r.gauge.value = app_.ruleCount(origin);
      rules.metric.push_back(r);
    }
    std::vector<MetricFamily> out = {rx_pkts,      rx_bytes,  tx_pkts,      tx_bytes, drops,
                                     malformed,    matched,   remarked,     non_ip,   hw_missed,
                                     hw_rx_errors, hw_nombuf, hw_tx_errors, link_up,  flows,
                                     capacity,     rules};
    if (app_.managerConnected() >= 0) {
      MetricFamily connected{"qosgate_manager_connected",
                             "1 while the manager answers this appliance's syncs",
                             MetricType::Gauge,
                             {}};
      ClientMetric m;
      m.gauge.value = app_.managerConnected();
      connected.metric.push_back(m);
      out.push_back(std::move(connected));
    }
    return out;
  }

private:
  const Appliance& app_;
};

}  // namespace

struct MetricsServer::Impl {
  std::unique_ptr<prometheus::Exposer> exposer;
  std::shared_ptr<ApplianceCollector> collector;
};

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MetricsServer::~MetricsServer() = default;

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const std::string& listen,
                                                            const Appliance& appliance) {
  auto impl = std::make_unique<Impl>();
  try {
    impl->exposer = std::make_unique<prometheus::Exposer>(listen);
  } catch (const std::exception& e) {
    return makeError("cannot serve metrics on " + listen + " (is the port in use?): " + e.what());
  }
  impl->collector = std::make_shared<ApplianceCollector>(appliance);
  impl->exposer->RegisterCollectable(impl->collector);
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

}  // namespace qos::appliance
