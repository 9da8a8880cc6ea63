// nftables rules for bridged zones through libnftables (the library; no `nft` process). One
// table per rauhad instance, family inet:
//
//   chain forward (hook forward): traffic that touches neither the bridge is none of ours and
//     passes; established/related passes; from a zone -> that zone's egress chain (verdict map
//     by source address); anything else from the bridge drops; to a zone -> that zone's ingress
//     chain (verdict map by destination); anything else to the bridge drops.
//   chain input (hook input): what zones send to the host itself (the gateway or any other host
//     address) passes established/related and ICMP echo (zones can ping their gateway), then
//     the zone's egress chain (so "10.89.0.1/32:53" lets a zone reach a resolver on the host),
//     else drops. Other interfaces are none of ours.
//   chain zo_<id8>: the zone's allowed_zones (by address), then its allowed_egress; drop.
//   chain zi_<id8>: the zone's allowed_ingress; drop.
//
// Each drop of a zone chain is logged to NFLOG group `log_group` (prefix "rauha/<kind>/<id8>",
// drop_packet.h) at most kDropLogRate packets a second per chain and rule (burst
// kDropLogBurst); past that the packet is dropped unlogged. rauhad turns the log into events.
// Every drop, logged or not, also counts in the zone's named counter for its kind
// (drop_counters.h): counters are objects of the table, so a policy change (which rewrites the
// chains) keeps them; they go with the zone's chains, and start from 0 when the table is
// rebuilt (rauhad's start).
//
// Zones have /32 addresses routed via the gateway, so zone-to-zone traffic is routed by the
// host and passes this forward hook too. Nothing is ever masqueraded. IPv4 only: IPv6 rules in
// a policy are not installed (zones get no IPv6 address).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "rauha-common/policy/policy.h"
#include "rauhad/net/drop_counters.h"

struct nft_ctx;

namespace rauha::net {

struct ZoneRules {
  std::string zone_id;
  std::string address;
  std::vector<std::string> peer_addresses;  // allowed_zones, resolved
  std::vector<policy::NetRule> egress;
  std::vector<policy::NetRule> ingress;
};

class Firewall {
 public:
  static constexpr int kDropLogRate = 20;
  static constexpr int kDropLogBurst = 50;

  // `log_group` 0: drops are not logged.
  Firewall(std::string table, std::string bridge, std::string subnet_cidr, std::string gateway,
           uint16_t log_group);
  ~Firewall();
  Firewall(const Firewall&) = delete;
  Firewall& operator=(const Firewall&) = delete;

  // Replaces the whole table with the base chains and `zones`, in one transaction.
  absl::Status Rebuild(const std::vector<ZoneRules>& zones);
  // Adds or replaces the chains of `zones` (and their map entries), one transaction.
  absl::Status Put(const std::vector<ZoneRules>& zones);
  // Removes `gone` (chains and map entries) and replaces `refresh`, one transaction.
  absl::Status Remove(const ZoneRules& gone, const std::vector<ZoneRules>& refresh);
  // Deletes the table; a missing table is fine.
  absl::Status DeleteTable();

  // Packets each zone's drop rules dropped, by zone short id (drop_counters.h).
  absl::StatusOr<std::map<std::string, DropCounts>> DropCounters();

  // The commands Put would run (for tests and `zone show`).
  std::string ChainCommands(const ZoneRules& z) const;

 private:
  absl::Status Run(const std::string& commands);
  std::string BaseCommands() const;

  std::string table_;
  std::string bridge_;
  std::string subnet_;
  std::string gateway_;
  uint16_t log_group_;
  std::mutex mu_;  // an nft context is not thread-safe
  nft_ctx* ctx_ = nullptr;
};

// "zo_1a2b3c4d" / "zi_1a2b3c4d" from a zone id.
std::string ShortId(const std::string& zone_id);

// The rules of one drop of a zone chain (`table` is "inet NAME"): with `log_group` != 0 a drop
// that logs to that NFLOG group (rate-limited), then the same drop unlogged for what exceeds
// the rate; both count in the zone's counter for `kind`, so the count is exact whatever the
// rate let through.
std::string DropRuleCommands(const std::string& table, const std::string& chain,
                             const std::string& match, DropKind kind,
                             const std::string& zone_short_id, uint16_t log_group);

}  // namespace rauha::net
