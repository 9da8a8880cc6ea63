#include "rauhad/net/zone_network.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/strcat.h"
#include "rauhad/linux/netlink.h"

namespace rauha::net {
namespace {

// /proc/sys/net is the namespace of the opening thread: rauhad's own.
absl::Status WriteSysctl(const std::string& path, const char* value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, StrCat("open ", path));
  if (::write(fd.get(), value, std::char_traits<char>::length(value)) < 0) {
    return ErrnoStatus(errno, StrCat("write ", value, " to ", path));
  }
  return absl::OkStatus();
}

void LogError(const absl::Status& st) {
  if (!st.ok()) std::fprintf(stderr, "rauhad: network: %s\n", ToStd(st.message()).c_str());
}

constexpr char kIpForward[] = "/proc/sys/net/ipv4/ip_forward";

// "0", "1", or "" when unreadable.
std::string ReadSysctl(const char* path) {
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return "";
  char buf[16];
  ssize_t n = ::read(fd.get(), buf, sizeof(buf));
  if (n <= 0) return "";
  std::string v(buf, static_cast<size_t>(n));
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  return v;
}

// Switches IPv4 forwarding on; when it was off, leaves `marker` so that RestoreForwarding
// switches it off again.
absl::Status EnableForwarding(const std::string& marker) {
  if (ReadSysctl(kIpForward) == "1") return absl::OkStatus();
  if (!marker.empty()) {
    UniqueFd fd(::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) return ErrnoStatus(errno, StrCat("create ", marker));
  }
  return WriteSysctl(kIpForward, "1");
}

void RestoreForwarding(const std::string& marker) {
  if (marker.empty() || ::access(marker.c_str(), F_OK) != 0) return;
  LogError(WriteSysctl(kIpForward, "0"));
  std::fprintf(stderr, "rauhad: network: IPv4 forwarding switched off again (it was off)\n");
  ::unlink(marker.c_str());
}

}  // namespace

std::string HostLinkName(const std::string& zone_id) { return StrCat("rz", ShortId(zone_id)); }

absl::StatusOr<std::unique_ptr<ZoneNetwork>> ZoneNetwork::Create(NetConfig config,
                                                                 store::Store* store) {
  RAUHA_ASSIGN_OR_RETURN(Subnet subnet, Subnet::Parse(config.subnet));
  if (config.bridge.empty() || config.bridge.size() >= 16) {
    return absl::InvalidArgumentError(
        StrCat("--bridge \"", config.bridge, "\": a link name has 1 to 15 characters"));
  }
  if (config.nft_table.empty() ||
      config.nft_table.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789_-") != std::string::npos) {
    return absl::InvalidArgumentError(
        StrCat("--nft-table \"", config.nft_table, "\": use letters, digits, '_' and '-'"));
  }
  return std::unique_ptr<ZoneNetwork>(new ZoneNetwork(std::move(config), subnet, store));
}

ZoneNetwork::ZoneNetwork(NetConfig config, Subnet subnet, store::Store* store)
    : config_(std::move(config)),
      ipam_(subnet, store),
      firewall_(config_.nft_table, config_.bridge, subnet.Cidr(), subnet.Gateway(),
                config_.nflog_group),
      drop_log_(config_.nflog_group) {}

absl::Status ZoneNetwork::EnsureUpLocked() {
  if (up_) return absl::OkStatus();
  RAUHA_RETURN_IF_ERROR(EnableForwarding(config_.forwarding_marker));
  // Zones work without it; only their drops go unreported.
  if (config_.nflog_group != 0) {
    if (auto st = drop_log_.Start(); !st.ok()) {
      std::fprintf(stderr, "rauhad: network: packets nftables drops will not be events: %s\n",
                   ToStd(st.message()).c_str());
    }
  }
  RAUHA_RETURN_IF_ERROR(netlink::EnsureBridge(config_.bridge, ipam_.subnet().GatewayCidr()));
  // Zone-to-zone traffic leaves by the interface it came in on; redirects would only tell
  // zones to bypass the forward hook (which their /32 routes refuse anyway).
  LogError(WriteSysctl(StrCat("/proc/sys/net/ipv4/conf/", config_.bridge, "/send_redirects"), "0"));
  std::vector<ZoneRules> rules;
  for (const auto& [id, e] : zones_) rules.push_back(RulesLocked(id, e));
  RAUHA_RETURN_IF_ERROR(firewall_.Rebuild(rules));
  up_ = true;
  return absl::OkStatus();
}

ZoneRules ZoneNetwork::RulesLocked(const std::string& id, const Entry& e) {
  ZoneRules r;
  r.zone_id = id;
  r.address = e.address;
  r.egress = e.net.allowed_egress;
  r.ingress = e.net.allowed_ingress;
  for (const auto& peer : e.net.allowed_zones) {
    for (const auto& [other_id, other] : zones_) {
      if (other.name == peer && other_id != id) r.peer_addresses.push_back(other.address);
    }
  }
  return r;
}

std::vector<ZoneRules> ZoneNetwork::ReferrersLocked(const std::string& name,
                                                    const std::string& except_id) {
  std::vector<ZoneRules> out;
  for (const auto& [id, e] : zones_) {
    if (id == except_id) continue;
    const auto& peers = e.net.allowed_zones;
    if (std::find(peers.begin(), peers.end(), name) != peers.end())
      out.push_back(RulesLocked(id, e));
  }
  return out;
}

void ZoneNetwork::RemoveInfraLocked() {
  drop_log_.Stop();
  LogError(firewall_.DeleteTable());
  LogError(netlink::DeleteLink(config_.bridge));
  RestoreForwarding(config_.forwarding_marker);
  up_ = false;
}

absl::StatusOr<std::string> ZoneNetwork::Attach(const std::string& zone_id,
                                                const std::string& zone_name, pid_t shim_pid,
                                                const policy::Policy& policy) {
  std::lock_guard lock(mu_);
  RAUHA_ASSIGN_OR_RETURN(std::string address, ipam_.Allocate(zone_id));
  RAUHA_RETURN_IF_ERROR(EnsureUpLocked());
  netlink::ZoneLink link;
  link.bridge = config_.bridge;
  link.host_name = HostLinkName(zone_id);
  link.zone_netns = StrCat("/proc/", shim_pid, "/ns/net");
  link.address_cidr = StrCat(address, "/32");
  link.gateway = ipam_.subnet().Gateway();
  RAUHA_RETURN_IF_ERROR(netlink::AttachZone(link));
  zones_[zone_id] = Entry{zone_name, address, policy.network};
  std::vector<ZoneRules> rules = ReferrersLocked(zone_name, zone_id);
  rules.push_back(RulesLocked(zone_id, zones_[zone_id]));
  if (auto st = firewall_.Put(rules); !st.ok()) {
    zones_.erase(zone_id);
    (void)netlink::DeleteLink(link.host_name);
    return st;
  }
  RefreshJoinedReferrersLocked(zone_name, zone_id);
  return address;
}

absl::StatusOr<std::string> ZoneNetwork::Adopt(const std::string& zone_id,
                                               const std::string& zone_name, pid_t shim_pid,
                                               const policy::Policy& policy) {
  std::lock_guard lock(mu_);
  RAUHA_ASSIGN_OR_RETURN(std::string address, ipam_.Allocate(zone_id));
  std::string host = HostLinkName(zone_id);
  if (!netlink::LinkExists(host)) {
    RAUHA_RETURN_IF_ERROR(netlink::EnsureBridge(config_.bridge, ipam_.subnet().GatewayCidr()));
    netlink::ZoneLink link{config_.bridge, host, StrCat("/proc/", shim_pid, "/ns/net"),
                           StrCat(address, "/32"), ipam_.subnet().Gateway()};
    RAUHA_RETURN_IF_ERROR(netlink::AttachZone(link));
  }
  zones_[zone_id] = Entry{zone_name, address, policy.network};
  return address;
}

void ZoneNetwork::Detach(const std::string& zone_id, const std::string& netns_path) {
  DetachJoined(zone_id, netns_path);
  std::lock_guard lock(mu_);
  std::string host = HostLinkName(zone_id);
  // Deleting the host end takes the zone's eth0 with it, synchronously.
  if (netlink::LinkExists(host)) LogError(netlink::DeleteLink(host));
  auto it = zones_.find(zone_id);
  if (it == zones_.end()) return;
  Entry gone = it->second;
  ZoneRules gone_rules = RulesLocked(zone_id, gone);
  zones_.erase(it);
  RefreshJoinedReferrersLocked(gone.name, zone_id);
  if (zones_.empty() && !config_.keep_network) {
    RemoveInfraLocked();
    return;
  }
  if (up_) LogError(firewall_.Remove(gone_rules, ReferrersLocked(gone.name, zone_id)));
}

void ZoneNetwork::Release(const std::string& zone_id) { LogError(ipam_.Release(zone_id)); }

absl::Status ZoneNetwork::UpdatePolicy(const std::string& zone_id, const policy::Policy& policy) {
  std::lock_guard lock(mu_);
  if (joined_.count(zone_id)) return UpdateJoinedLocked(zone_id, policy);
  auto it = zones_.find(zone_id);
  if (it == zones_.end()) {
    return absl::FailedPreconditionError(
        "the zone has no network attached (its shim is not running); nothing to update");
  }
  Entry updated = it->second;
  updated.net = policy.network;
  RAUHA_RETURN_IF_ERROR(firewall_.Put({RulesLocked(zone_id, updated)}));
  it->second = updated;
  return absl::OkStatus();
}

absl::Status ZoneNetwork::Reconcile(const std::set<std::string>& existing_zone_ids) {
  std::lock_guard lock(mu_);
  // Only a daemon that had bridged zones cleans up: one that never had any must not touch a
  // bridge or table of the same name that someone else may be using.
  bool had_network = ipam_.HasAny() || !zones_.empty();
  if (!had_network) return absl::OkStatus();
  std::set<std::string> ours;
  for (const auto& [id, e] : zones_) ours.insert(HostLinkName(id));
  auto ports = netlink::BridgePorts(config_.bridge, "rz");
  if (ports.ok()) {
    for (const auto& p : *ports) {
      if (!ours.count(p)) LogError(netlink::DeleteLink(p));
    }
  } else {
    LogError(ports.status());
  }
  RAUHA_RETURN_IF_ERROR(ipam_.ReleaseAllBut(existing_zone_ids));
  if (zones_.empty()) {
    if (!config_.keep_network) RemoveInfraLocked();
    return absl::OkStatus();
  }
  up_ = false;  // rebuild everything: the table may hold a crashed instance's chains
  return EnsureUpLocked();
}

void ZoneNetwork::Shutdown() {
  ShutdownJoined();
  std::lock_guard lock(mu_);
  if (up_ && !config_.keep_network) RemoveInfraLocked();
  drop_log_.Stop();
}

std::string ZoneNetwork::AddressOf(const std::string& zone_id) {
  {
    std::lock_guard lock(mu_);
    auto it = zones_.find(zone_id);
    if (it != zones_.end()) return it->second.address;
  }
  return ipam_.Lookup(zone_id);
}

std::string ZoneNetwork::RulesOf(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  if (joined_.count(zone_id)) return JoinedRulesLocked(zone_id);
  auto it = zones_.find(zone_id);
  return it == zones_.end() ? "" : firewall_.ChainCommands(RulesLocked(zone_id, it->second));
}

std::optional<DropCounts> ZoneNetwork::DropCountsOf(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  if (joined_.count(zone_id)) return JoinedDropCountsLocked(zone_id);
  if (!up_ || zones_.count(zone_id) == 0) return std::nullopt;
  auto all = firewall_.DropCounters();
  if (!all.ok()) {
    std::fprintf(stderr, "rauhad: %s\n", ToStd(all.status().message()).c_str());
    return std::nullopt;
  }
  auto it = all->find(ShortId(zone_id));
  return it == all->end() ? DropCounts{} : it->second;
}

}  // namespace rauha::net
