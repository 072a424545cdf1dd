#include "appliance/runtime/appliance.h"

#include <cerrno>
#include <cstring>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "appliance/runtime/pcap_capture.h"
#include "appliance/runtime/startup_fault.h"
#include "control/common/log.h"

namespace qos::appliance {
namespace {

constexpr unsigned kMempoolCache = 256;
// Packets each worker's hand-off ring holds (a power of two; one less usable),
// and the mbufs the pool sets aside for them: a quarter of a ring per worker
// (more in flight is an overload, when RX may go short of mbufs).
constexpr unsigned kHandoffRingSize = 4096;
constexpr unsigned kHandoffMbufs = kHandoffRingSize / 4;
std::atomic<unsigned> g_instance{0};

/** The file's [[flow]]s as the File owner's whole rule set. */
RuleChanges fileRules(const std::vector<FlowRule>& flows) {
  RuleChanges changes;
  changes.origin = RuleOrigin::File;
  changes.replace_all = true;
  changes.put.reserve(flows.size());
  for (const FlowRule& rule : flows) {
    changes.put.push_back({RuleId::file(rule), rule});
  }
  return changes;
}

std::string rteError(const std::string& what, int rc) {
  return what + ": " + rte_strerror(rc < 0 ? -rc : rc);
}

}  // namespace

Result<std::unique_ptr<Appliance>> Appliance::create(const ApplianceConfig& config) {
  std::unique_ptr<Appliance> app(new Appliance());
  app->config_ = config;
  app->name_ = "q" + std::to_string(g_instance.fetch_add(1));

  unsigned lcore = 0;
  RTE_LCORE_FOREACH_WORKER(lcore) { app->worker_lcores_.push_back(lcore); }
  if (app->worker_lcores_.empty()) {
    return makeError(
        "no worker lcore: qosgate needs at least two lcores, the main one for control and one "
        "worker (EAL option -l, e.g. \"-l 0-1\")");
  }
  const unsigned n_workers = static_cast<unsigned>(app->worker_lcores_.size());

  // Enough mbufs for every descriptor of every queue, plus per-lcore caches
  // and one burst in flight per worker.
  const uint64_t n_ports = 2 * config.pairs.size();
  const uint64_t needed =
      n_ports * n_workers * (config.dataplane.rx_descriptors + config.dataplane.tx_descriptors) +
      uint64_t{n_workers + 1} * (kMempoolCache + kBurstSize) +
      (n_workers > 1 ? uint64_t{n_workers} * kHandoffMbufs : 0);
  app->mbufs_for_descriptors_ = needed;
  if (config.dataplane.mbufs < needed) {
    return makeError("dataplane.mbufs = " + std::to_string(config.dataplane.mbufs) +
                     " is too few: " + std::to_string(n_ports) + " ports x " +
                     std::to_string(n_workers) + " queues x descriptors need at least " +
                     std::to_string(needed));
  }
  const std::string pool_name = "pool_" + app->name_;
  app->pool_ =
      rte_pktmbuf_pool_create(pool_name.c_str(), config.dataplane.mbufs, kMempoolCache, 0,
                              RTE_MBUF_DEFAULT_BUF_SIZE, static_cast<int>(rte_socket_id()));
  if (app->pool_ == nullptr) {
    return makeError(rteError("cannot create the mbuf pool (" +
                                  std::to_string(config.dataplane.mbufs) +
                                  " mbufs); give EAL more memory (-m) or lower dataplane.mbufs",
                              rte_errno));
  }

  const size_t qsbr_size = rte_rcu_qsbr_get_memsize(n_workers);
  app->qsbr_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc("qsbr", qsbr_size, RTE_CACHE_LINE_SIZE));
  if (app->qsbr_ == nullptr || startupFault("rcu") ||
      rte_rcu_qsbr_init(app->qsbr_, n_workers) != 0) {
    return makeError("cannot create the RCU variable");
  }
  for (unsigned id = 0; id < n_workers; ++id) {
    rte_rcu_qsbr_thread_register(app->qsbr_, id);
  }

  auto flows = FlowTable::create(app->name_, config.dataplane.max_flows,
                                 static_cast<int>(rte_socket_id()), app->qsbr_);
  if (!flows) {
    return flows.error();
  }
  app->flows_ = std::move(*flows);
  if (Result<RuleSummary> r = app->applyRules(fileRules(config.flows)); !r) {
    return r.error();
  }
  app->policy_.store(new PolicySnapshot(PolicySnapshot::build(config.policy)),
                     std::memory_order_release);

  if (auto r = app->setUpPorts(); !r) {
    return r.error();
  }

  // With several workers, each has a hand-off ring: the packets of flows it
  // owns that another worker received (worker.h).
  if (n_workers > 1) {
    for (unsigned w = 0; w < n_workers; ++w) {
      const std::string ring_name = "ho_" + app->name_ + "_" + std::to_string(w);
      rte_ring* ring = rte_ring_create(ring_name.c_str(), kHandoffRingSize,
                                       static_cast<int>(rte_socket_id()), RING_F_SC_DEQ);
      if (ring == nullptr) {
        return makeError(rteError("cannot create the hand-off ring of worker " + std::to_string(w) +
                                      "; give EAL more memory (-m)",
                                  rte_errno));
      }
      app->handoff_.push_back(ring);
    }
  }
  WorkerShared shared;
  shared.n_workers = n_workers;
  shared.handoff = app->handoff_.data();
  shared.flows = app->flows_.get();
  shared.policy = &app->policy_;
  shared.qsbr = app->qsbr_;
  shared.stop = &app->stop_;
  shared.idle_sleep_us = config.dataplane.idle_sleep_us;
  for (unsigned w = 0; w < n_workers; ++w) {
    std::vector<WorkerQueue> queues;
    for (const PortInfo& port : app->ports_) {
      queues.push_back(WorkerQueue{port.port_id, static_cast<uint16_t>(w), port.peer_port_id,
                                   static_cast<uint16_t>(w)});
    }
    app->workers_.push_back(std::make_unique<Worker>(w, shared, std::move(queues)));
  }
  return app;
}

Result<void> Appliance::setUpPorts() {
  const auto n_queues = static_cast<uint16_t>(worker_lcores_.size());
  for (const PortPair& pair : config_.pairs) {
    uint16_t inside = 0;
    uint16_t outside = 0;
    if (rte_eth_dev_get_port_by_name(pair.inside.c_str(), &inside) != 0) {
      return makeError("no DPDK port named '" + pair.inside +
                       "' (pair.inside): is its --vdev or PCI address in the EAL args?");
    }
    if (rte_eth_dev_get_port_by_name(pair.outside.c_str(), &outside) != 0) {
      return makeError("no DPDK port named '" + pair.outside +
                       "' (pair.outside): is its --vdev or PCI address in the EAL args?");
    }
    ports_.push_back(PortInfo{inside, pair.inside, "inside", outside});
    ports_.push_back(PortInfo{outside, pair.outside, "outside", inside});
  }
  // From the first configure on, a port may hold mbufs of the pool (a PMD
  // that fills its RX queue at setup, as net_pcap's infinite_rx does, keeps
  // them even when the setup then fails): closePorts() must give them back
  // before the pool is freed, whether or not the ports started.
  ports_open_ = true;

  for (PortInfo& port : ports_) {
    rte_eth_dev_info info{};
    int rc = rte_eth_dev_info_get(port.port_id, &info);
    if (rc != 0) {
      return makeError(rteError("port " + port.device + ": cannot read device info", rc));
    }
    if (info.max_rx_queues < n_queues || info.max_tx_queues < n_queues) {
      return makeError("port " + port.device + " has " + std::to_string(info.max_rx_queues) +
                       " RX queues, " + std::to_string(n_queues) +
                       " workers need one each: use fewer lcores or more queues");
    }
    rte_eth_conf conf{};
    if (n_queues > 1) {
      // A 5-tuple RSS hash spreads flows over the queues; what it cannot keep
      // on one queue (a wildcard rule's 5-tuples, fragments) each flow
      // entry's owner worker meters alone (worker.h: hand-off).
      conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
      conf.rx_adv_conf.rss_conf.rss_hf =
          info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP);
    }
    if ((info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE) != 0) {
      conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
    }
    rc = rte_eth_dev_configure(port.port_id, n_queues, n_queues, &conf);
    if (rc != 0) {
      return makeError(rteError("port " + port.device + ": configure failed", rc));
    }
    uint16_t n_rxd = config_.dataplane.rx_descriptors;
    uint16_t n_txd = config_.dataplane.tx_descriptors;
    rc = rte_eth_dev_adjust_nb_rx_tx_desc(port.port_id, &n_rxd, &n_txd);
    if (rc != 0) {
      return makeError(rteError("port " + port.device + ": descriptor counts refused", rc));
    }
    if (auto r = checkInfiniteRx(port, n_queues); !r) {
      return r;
    }
    const int socket = rte_eth_dev_socket_id(port.port_id);
    for (uint16_t q = 0; q < n_queues; ++q) {
      rc = rte_eth_rx_queue_setup(port.port_id, q, n_rxd, static_cast<unsigned>(socket), nullptr,
                                  pool_);
      if (rc != 0) {
        return makeError(rteError("port " + port.device + ": RX queue setup failed", rc));
      }
      rte_eth_txconf txconf = info.default_txconf;
      txconf.offloads = conf.txmode.offloads;
      rc = rte_eth_tx_queue_setup(port.port_id, q, n_txd, static_cast<unsigned>(socket), &txconf);
      if (rc != 0) {
        return makeError(rteError("port " + port.device + ": TX queue setup failed", rc));
      }
    }
    rc = rte_eth_dev_start(port.port_id);
    if (rc != 0) {
      return makeError(rteError("port " + port.device + ": start failed", rc));
    }
    port.started = true;
    // A bump in the wire forwards every frame, whatever its destination MAC.
    rc = rte_eth_promiscuous_enable(port.port_id);
    if (rc != 0 && rc != -ENOTSUP) {
      return makeError(rteError("port " + port.device + ": cannot enable promiscuous mode", rc));
    }
  }
  return {};
}

Result<void> Appliance::checkInfiniteRx(const PortInfo& port, uint16_t n_queues) {
  // net_pcap with infinite_rx reads its whole capture into the pool at RX
  // queue setup, once per queue, and fails (after taking what there was) if
  // it does not fit: say how many mbufs it takes before it tries.
  const std::optional<std::string> capture = infiniteRxCapture(port.port_id);
  if (!capture) {
    return {};
  }
  const Result<uint64_t> packets = capturePackets(*capture);
  if (!packets) {
    return makeError("port " + port.device + ": " + packets.error().message);
  }
  const uint64_t needed = mbufs_for_descriptors_ + *packets * n_queues;
  if (config_.dataplane.mbufs < needed) {
    return makeError("port " + port.device + ": infinite_rx holds all " + std::to_string(*packets) +
                     " packets of " + *capture + " in mbufs (" + std::to_string(n_queues) +
                     " RX queue(s)), on top of the " + std::to_string(mbufs_for_descriptors_) +
                     " the descriptors take: set [dataplane] mbufs to at least " +
                     std::to_string(needed) + " (it is " + std::to_string(config_.dataplane.mbufs) +
                     ")");
  }
  return {};
}

Appliance::~Appliance() {
  stop();
  closePorts();
  flows_.reset();
  delete policy_.load();
  rte_free(qsbr_);
  for (rte_ring* ring : handoff_) {
    rte_ring_free(ring);
  }
  rte_mempool_free(pool_);
}

Result<void> Appliance::start() {
  if (running_) {
    return {};
  }
  stop_.store(false);
  for (size_t w = 0; w < workers_.size(); ++w) {
    // (A test may make the last launch fail: the ones before it are undone.)
    const int rc =
        w + 1 == workers_.size() && startupFault("launch")
            ? -EBUSY
            : rte_eal_remote_launch(&Worker::launch, workers_[w].get(), worker_lcores_[w]);
    if (rc != 0) {
      stop_.store(true);
      for (size_t v = 0; v < w; ++v) {
        rte_eal_wait_lcore(worker_lcores_[v]);
      }
      return makeError(
          rteError("cannot launch the worker on lcore " + std::to_string(worker_lcores_[w]), rc));
    }
  }
  running_ = true;
  return {};
}

void Appliance::stop() {
  if (!running_) {
    return;
  }
  stop_.store(true);
  for (unsigned lcore : worker_lcores_) {
    rte_eal_wait_lcore(lcore);
  }
  running_ = false;
  dropHandedOff();
}

// What was handed to a worker that then stopped is dropped and counted
// (handoff_full, under the port it came in on): received = sent + dropped.
void Appliance::dropHandedOff() {
  for (size_t w = 0; w < handoff_.size(); ++w) {
    void* obj = nullptr;
    while (rte_ring_sc_dequeue(handoff_[w], &obj) == 0) {
      auto* m = static_cast<rte_mbuf*>(obj);
      workers_[w]->countUndelivered(m->port);
      rte_pktmbuf_free(m);
    }
  }
}

void Appliance::closePorts() {
  if (!ports_open_) {
    return;
  }
  for (PortInfo& port : ports_) {
    if (port.started) {
      rte_eth_dev_stop(port.port_id);
      port.started = false;
    }
    rte_eth_dev_close(port.port_id);
  }
  ports_open_ = false;
}

Result<RuleSummary> Appliance::applyRules(const RuleChanges& changes) {
  Result<RulePlan> plan = book_.plan(changes, flows_->capacity());
  if (!plan) {
    return plan.error();
  }
  // Apply the operations; if one fails, undo the ones done, last first.
  size_t done = 0;
  std::optional<Error> failure;
  for (; done < plan->ops.size(); ++done) {
    const TableOp& op = plan->ops[done];
    if (op.kind == TableOp::Kind::Remove) {
      flows_->remove(op.key);
      continue;
    }
    if (Result<void> r = flows_->add(op.rule); !r) {
      failure = makeError(r.error().code, r.error().message);
      break;
    }
  }
  if (failure) {
    while (done-- > 0) {
      const TableOp& op = plan->ops[done];
      if (op.before) {
        if (Result<void> r = flows_->add(*op.before); !r) {
          log::error("could not restore a flow rule while undoing a change: " + r.error().message);
        }
      } else {
        flows_->remove(op.key);
      }
    }
    return *failure;
  }
  book_.commit(*plan);
  for (const RuleOrigin origin : {RuleOrigin::Manager, RuleOrigin::File}) {
    rule_counts_[static_cast<size_t>(origin)].store(static_cast<uint32_t>(book_.count(origin)),
                                                    std::memory_order_relaxed);
  }
  return plan->summary;
}

Result<void> Appliance::addFlow(const FlowRule& rule) {
  RuleChanges changes;
  changes.put.push_back({RuleId::file(rule), rule});
  Result<RuleSummary> r = applyRules(changes);
  if (!r) {
    return r.error();
  }
  return {};
}

bool Appliance::removeFlow(const FlowRule& rule) {
  const RuleId id = RuleId::file(rule);
  if (book_.find(id) == nullptr) {
    return false;
  }
  RuleChanges changes;
  changes.remove.push_back(id);
  return applyRules(changes).ok();
}

const FlowEntry* Appliance::entryOf(const RuleId& id) const {
  const FlowRule* rule = book_.find(id);
  if (rule == nullptr || !book_.installed(id)) {
    return nullptr;
  }
  return flows_->find(flowKeyOf(*rule));
}

void Appliance::applyPolicy(const TrafficPolicy& policy) {
  const auto* next = new PolicySnapshot(PolicySnapshot::build(policy));
  const PolicySnapshot* old = policy_.exchange(next, std::memory_order_acq_rel);
  // Wait until every worker has passed a quiescent state: none still holds `old`.
  rte_rcu_qsbr_synchronize(qsbr_, RTE_QSBR_THRID_INVALID);
  delete old;
}

Result<ReloadSummary> Appliance::reload(const ApplianceConfig& next) {
  ReloadSummary summary;
  Result<RuleSummary> flows = applyRules(fileRules(next.flows));
  if (!flows) {
    return flows.error();
  }
  summary.flows_added = flows->added;
  summary.flows_removed = flows->removed;
  summary.flows_changed = flows->changed;
  if (!(next.policy == config_.policy)) {
    applyPolicy(next.policy);
    summary.policy_changed = true;
  }
  if (next.eal_args != config_.eal_args) {
    summary.needs_restart.emplace_back("eal.args");
  }
  if (next.pairs.size() != config_.pairs.size() ||
      !std::equal(next.pairs.begin(), next.pairs.end(), config_.pairs.begin(),
                  [](const PortPair& a, const PortPair& b) {
                    return a.inside == b.inside && a.outside == b.outside;
                  })) {
    summary.needs_restart.emplace_back("pair");
  }
  if (next.dataplane.max_flows != config_.dataplane.max_flows ||
      next.dataplane.mbufs != config_.dataplane.mbufs ||
      next.dataplane.rx_descriptors != config_.dataplane.rx_descriptors ||
      next.dataplane.tx_descriptors != config_.dataplane.tx_descriptors ||
      next.dataplane.idle_sleep_us != config_.dataplane.idle_sleep_us) {
    summary.needs_restart.emplace_back("dataplane");
  }
  if (next.metrics.listen != config_.metrics.listen) {
    summary.needs_restart.emplace_back("metrics.listen");
  }
  const auto controlOf = [](const ApplianceConfig& c) {
    return c.control ? c.control->manager + "|" + c.control->name + "|" +
                           c.control->secret_key_path + "|" + c.control->manager_public_key
                     : std::string();
  };
  if (controlOf(next) != controlOf(config_)) {
    summary.needs_restart.emplace_back("control");
  }
  config_.flows = next.flows;
  config_.policy = next.policy;
  return summary;
}

void Appliance::housekeeping() { flows_->reclaim(); }

PortTotals Appliance::portTotals(uint16_t port_id) const {
  PortTotals totals;
  for (const auto& worker : workers_) {
    totals.addFrom(worker->counters(port_id));
  }
  return totals;
}

PortHardwareStats Appliance::hardwareStats(uint16_t port_id) const {
  PortHardwareStats hw;
  rte_eth_stats stats{};
  if (rte_eth_stats_get(port_id, &stats) == 0) {
    hw.rx_missed = stats.imissed;
    hw.rx_errors = stats.ierrors;
    hw.rx_nombuf = stats.rx_nombuf;
    hw.tx_errors = stats.oerrors;
  }
  rte_eth_link link{};
  if (rte_eth_link_get_nowait(port_id, &link) == 0) {
    hw.link_up = link.link_status == RTE_ETH_LINK_UP;
    hw.link_speed_mbps = link.link_speed;
  }
  return hw;
}

unsigned Appliance::mbufsInUse() const { return rte_mempool_in_use_count(pool_); }

unsigned Appliance::mbufsTotal() const { return pool_->size; }

}  // namespace qos::appliance
