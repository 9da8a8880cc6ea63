// nftables rules for a zone that joined a network namespace it did not make (a Kubernetes
// pod's, made by CRI and CNI): one table per zone inside that namespace, family inet, named
// "<rauhad's --nft-table>_<zone id8>" (two zones may share one namespace):
//
//   chain input (hook input): loopback passes (the pod's containers talk on localhost);
//     established/related passes (replies to what the zone sent); IPv6 neighbour discovery
//     passes; then the zone's allowed_zones (by the named zones' addresses, as sources) and
//     allowed_ingress ("CIDR:port"); everything else drops, logged and counted as a bridged
//     zone's ingress drops are (firewall.h: NFLOG prefix "rauha/ingress/<id8>", counter
//     "di_<id8>").
//
// Egress in such a namespace stays with the zone's cgroup-bpf programs (connect/sendmsg), which
// refuse before a packet exists. Nothing here touches any other namespace: the CNI bridge and
// the host's rules are CNI's. The namespace belongs to CRI and may outlive the zone, so the
// zone's deletion deletes its table explicitly.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rauha-common/policy/policy.h"

namespace rauha::net {

struct PodRules {
  std::string zone_id;
  std::vector<std::string> peer_addresses;  // allowed_zones, resolved to addresses
  std::vector<policy::NetRule> ingress;     // allowed_ingress
};

// "rauha_1a2b3c4d".
std::string PodTableName(const std::string& base, const std::string& zone_id);

// Commands that create the zone's table or replace its rules in one transaction (its counters
// are kept: "add counter" leaves an existing one as it is).
std::string PodTableCommands(const std::string& table, const PodRules& rules, uint16_t log_group);
// The same, after deleting whatever table of that name is there (counters start from 0).
std::string PodTableRebuildCommands(const std::string& table, const PodRules& rules,
                                    uint16_t log_group);
// Deletes the table; a missing table is fine.
std::string PodTableDeleteCommands(const std::string& table);

// Runs nft commands through libnftables inside network namespace `netns_fd`: a helper thread
// enters it and makes the nft context there (a netlink socket belongs to the namespace it was
// made in), so no other thread of rauhad's changes namespace. The listing output, if any, goes
// to `output`.
absl::Status RunNftIn(int netns_fd, const std::string& what, const std::string& commands,
                      std::string* output = nullptr);

// The IPv4 addresses of the namespace's interfaces but loopback (the pod's address from CNI).
absl::StatusOr<std::vector<std::string>> Ipv4AddressesIn(int netns_fd);

// Runs `fn` on a helper thread inside network namespace `netns_fd`.
absl::Status InNetns(int netns_fd, const std::function<absl::Status()>& fn);

}  // namespace rauha::net
