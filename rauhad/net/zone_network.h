// Bridged networking for zones: an address from the IPAM, a veth from the zone's namespace to
// the bridge, and the zone's nftables chains. Thread-safe. The bridge and the table exist while
// at least one bridged zone is attached; when the last one goes, and on Shutdown, they are
// removed unless `keep_network`.
//
// Side effect on the daemon's network namespace: IPv4 forwarding is switched on (zones are
// routed through the host; the forward chain decides what passes). When it was off, rauhad
// switches it off again when it removes the bridge (last bridged zone gone, or rauhad stops);
// a marker file remembers this across a rauhad crash.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rauha-common/fd.h"
#include "rauha-common/policy/policy.h"
#include "rauhad/net/drop_log.h"
#include "rauhad/net/firewall.h"
#include "rauhad/net/ipam.h"
#include "rauhad/net/pod_firewall.h"
#include "rauhad/store/store.h"

namespace rauha::net {

struct NetConfig {
  std::string bridge = "rauha0";
  std::string subnet = "10.89.0.0/24";  // why this default: see ipam.h
  std::string nft_table = "rauha";
  bool keep_network = false;
  // NFLOG group the zone chains' drops are logged to (drop_log.h); 0: drops are not logged.
  uint16_t nflog_group = 21057;
  // Exists while this rauhad has IPv4 forwarding on because it switched it on (in its run dir,
  // so a restarted rauhad still knows); "" never restores.
  std::string forwarding_marker;
};

// "rz" + the first 8 hex digits of the zone id: the host end of the zone's veth.
std::string HostLinkName(const std::string& zone_id);

class ZoneNetwork {
 public:
  static absl::StatusOr<std::unique_ptr<ZoneNetwork>> Create(NetConfig config, store::Store* store);

  // Gives a bridged zone whose shim (holding its namespace) runs its address, link and rules.
  // Returns the address. On failure nothing of the zone's is left but its address allocation.
  absl::StatusOr<std::string> Attach(const std::string& zone_id, const std::string& zone_name,
                                     pid_t shim_pid, const policy::Policy& policy);
  // After a rauhad restart: the zone's shim and veth survived; take them over (re-creating the
  // link if it is gone). Rules are installed by Reconcile.
  absl::StatusOr<std::string> Adopt(const std::string& zone_id, const std::string& zone_name,
                                    pid_t shim_pid, const policy::Policy& policy);
  // A zone that joined a network namespace it did not make (a pod's: CreateZoneRequest.
  // network_namespace), whose shim runs in it: the zone's nftables table installed inside that
  // namespace (pod_firewall.h; replacing whatever table of the zone's is there, as after a
  // rauhad restart), its drops read from that namespace's NFLOG group, and the rules of zones
  // whose allowed_zones name it refreshed with its address. On failure nothing of it is left.
  absl::Status AttachJoined(const std::string& zone_id, const std::string& zone_name,
                            pid_t shim_pid, const policy::Policy& policy);
  // Removes the zone's link and rules; its address stays allocated (the zone still exists).
  // A joined zone's table is deleted from the namespace it joined; `netns_path` names that
  // namespace for a zone this rauhad never attached (its shim died while no rauhad ran).
  void Detach(const std::string& zone_id, const std::string& netns_path = "");
  // The zone is gone: its address returns to the pool.
  void Release(const std::string& zone_id);
  // Replaces the zone's rules in one transaction (ApplyPolicy).
  absl::Status UpdatePolicy(const std::string& zone_id, const policy::Policy& policy);
  // After recovery: the whole table rebuilt from the attached zones, veths on the bridge that
  // belong to none of them deleted, addresses of zones not in `existing_zone_ids` freed.
  absl::Status Reconcile(const std::set<std::string>& existing_zone_ids);
  // Daemon stop: table and bridge removed unless keep_network; the drop log stops either way.
  void Shutdown();

  // Where the packets the zone chains drop go (set once, before the first Attach).
  void SetDropSink(DropLog::Sink sink);
  // Delivers the drops queued now to the sink.
  void DrainDrops();
  // Stops reading drops (the sink is called no more).
  void StopDropLog();

  std::string AddressOf(const std::string& zone_id);
  // Whether the zone's rules live in a namespace it joined (AttachJoined).
  bool IsJoined(const std::string& zone_id);
  // Every packet the zone's chains dropped since its rules were installed (rauhad's start or
  // the zone's attach), counted by nftables; nullopt when the zone has no rules (not bridged).
  std::optional<DropCounts> DropCountsOf(const std::string& zone_id);
  // The zone's rules as nft commands ("" when not attached).
  std::string RulesOf(const std::string& zone_id);
  const NetConfig& config() const { return config_; }

 private:
  struct Entry {
    std::string name;
    std::string address;
    policy::Policy::Network net;
  };
  ZoneNetwork(NetConfig config, Subnet subnet, store::Store* store);

  absl::Status EnsureUpLocked();                                 // mu_ held
  ZoneRules RulesLocked(const std::string& id, const Entry& e);  // mu_ held
  std::vector<ZoneRules> ReferrersLocked(const std::string& name,
                                         const std::string& except_id);  // mu_ held
  void RemoveInfraLocked();                                              // mu_ held

  // A zone in a network namespace it joined (a pod's).
  struct Joined {
    std::string name;
    UniqueFd netns;                      // held while attached: rules go to this very namespace
    std::vector<std::string> addresses;  // its IPv4 addresses there (CNI's)
    policy::Policy::Network net;
  };
  PodRules PodRulesLocked(const std::string& id, const Joined& j);  // mu_ held
  // Addresses of the zones named `name` (bridged and joined), but `except_id`'s.
  std::vector<std::string> AddressesOfLocked(const std::string& name,
                                             const std::string& except_id);  // mu_ held
  // Rewrites the tables of joined zones whose allowed_zones name `name`.
  void RefreshJoinedReferrersLocked(const std::string& name,
                                    const std::string& except_id);  // mu_ held
  void DetachJoined(const std::string& zone_id, const std::string& netns_path);
  void ShutdownJoined();
  absl::Status UpdateJoinedLocked(const std::string& zone_id,
                                  const policy::Policy& policy);                 // mu_ held
  std::optional<DropCounts> JoinedDropCountsLocked(const std::string& zone_id);  // mu_ held
  std::string JoinedRulesLocked(const std::string& zone_id);                     // mu_ held
  std::string PodTable(const std::string& zone_id) const {
    return PodTableName(config_.nft_table, zone_id);
  }

  NetConfig config_;
  Ipam ipam_;
  Firewall firewall_;
  DropLog drop_log_;
  std::mutex mu_;
  bool up_ = false;
  std::map<std::string, Entry> zones_;    // attached, by zone id
  std::map<std::string, Joined> joined_;  // joined namespaces' zones, by zone id

  // Each joined namespace has its own NFLOG group (groups are per namespace), so its own
  // reader. Under a lock of their own: draining must not wait for rule changes, and a reader's
  // sink must never wait for mu_.
  std::mutex logs_mu_;
  DropLog::Sink sink_;
  std::map<std::string, std::shared_ptr<DropLog>> pod_logs_;  // by zone id
};

}  // namespace rauha::net
