// The example two-LAN, one-WAN qosmgr config: an SLA on the WAN, voip and
// video.  Shared by the tests that parse it.
#pragma once

namespace qos::manager::test_data {

inline constexpr const char* kTwoLanExample = R"(
[manager]
listen = "tcp://127.0.0.1:7700"      # ZeroMQ endpoint for hosts, appliances and qosctl
state = "/var/lib/qosmgr/state.db"    # reservation store
lease = "60s"                          # default lease; requests may ask for less

[[network]]
name = "lan-a"
prefixes = ["198.18.1.0/24", "2001:db8:a::/48"]
class_enabled = true
classes = { EF = { dscp = 46, capacity = "2mbit" }, AF41 = { dscp = 34, capacity = "20mbit" }, BE = { dscp = 0 } }

[[network]]
name = "wan"
class_enabled = true
classes = { EF = { dscp = 40, capacity = "10mbit" }, AF41 = { dscp = 26, capacity = "50mbit" }, BE = { dscp = 0 } }

[[network]]
name = "lan-b"
prefixes = ["198.19.1.0/24"]
class_enabled = false

[[link]]
between = ["lan-a", "wan"]
[[link]]
between = ["wan", "lan-b"]

[[sla]]
name = "carrier-x"
network = "wan"
classes = { EF = { rate = "1mbit" }, AF41 = { rate = "10mbit" } }

[[application]]
name = "voip"
match = { proto = "udp", dport = "16384-32767" }    # identifies the app when a request names none
default = { class = "EF", rate = "100kbit", burst = "10kB" }
alternates = [ { class = "AF41", rate = "100kbit", burst = "10kB" } ]

[[application]]
name = "video"
default = { class = "AF41", rate = "4mbit", burst = "64kB" }
alternates = [ { class = "AF41", rate = "1500kbit", burst = "32kB" }, { class = "AF41", rate = "500kbit", burst = "16kB" } ]
)";

}  // namespace qos::manager::test_data
