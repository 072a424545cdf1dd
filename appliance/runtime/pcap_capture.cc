#include "appliance/runtime/pcap_capture.h"

#include <memory>
#include <string_view>

#include <pcap/pcap.h>

#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_ethdev.h>

namespace qos::appliance {

std::optional<std::string> infiniteRxCapture(uint16_t port_id) {
  rte_eth_dev_info info{};
  if (rte_eth_dev_info_get(port_id, &info) != 0 || info.driver_name == nullptr ||
      std::string_view(info.driver_name) != "net_pcap" || info.device == nullptr) {
    return std::nullopt;
  }
  const rte_devargs* devargs = rte_dev_devargs(info.device);
  if (devargs == nullptr || devargs->args == nullptr) {
    return std::nullopt;
  }
  // "rx_pcap=FILE,infinite_rx=1,...": KEY=VALUE pairs separated by commas.
  std::optional<std::string> capture;
  bool infinite = false;
  std::string_view rest(devargs->args);
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view pair = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (pair.starts_with("rx_pcap=")) {
      capture = std::string(pair.substr(8));
    } else if (pair == "infinite_rx=1") {
      infinite = true;
    }
  }
  return infinite ? capture : std::nullopt;
}

Result<uint64_t> capturePackets(const std::string& path) {
  char error[PCAP_ERRBUF_SIZE] = {};
  std::unique_ptr<pcap_t, decltype(&pcap_close)> pcap(pcap_open_offline(path.c_str(), error),
                                                      &pcap_close);
  if (!pcap) {
    return makeError("cannot read " + path + ": " + error);
  }
  uint64_t packets = 0;
  pcap_pkthdr* header = nullptr;
  const u_char* data = nullptr;
  while (pcap_next_ex(pcap.get(), &header, &data) == 1) {
    ++packets;
  }
  return packets;
}

}  // namespace qos::appliance
