// ZoneNetwork's zones that joined a network namespace they did not make (a pod's): their
// nftables table inside that namespace (pod_firewall.h) and its NFLOG reader.
#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"
#include "rauhad/net/drop_counters.h"
#include "rauhad/net/zone_network.h"

namespace rauha::net {
namespace {

void LogJoinedError(const absl::Status& st) {
  if (!st.ok()) std::fprintf(stderr, "rauhad: network: %s\n", ToStd(st.message()).c_str());
}

}  // namespace

void ZoneNetwork::SetDropSink(DropLog::Sink sink) {
  drop_log_.SetSink(sink);
  std::lock_guard lock(logs_mu_);
  sink_ = std::move(sink);
}

void ZoneNetwork::DrainDrops() {
  drop_log_.Drain();
  std::vector<std::shared_ptr<DropLog>> logs;
  {
    std::lock_guard lock(logs_mu_);
    for (const auto& [id, log] : pod_logs_) logs.push_back(log);
  }
  for (const auto& log : logs) log->Drain();
}

void ZoneNetwork::StopDropLog() {
  drop_log_.Stop();
  std::map<std::string, std::shared_ptr<DropLog>> logs;
  {
    std::lock_guard lock(logs_mu_);
    logs.swap(pod_logs_);
  }
  for (const auto& [id, log] : logs) log->Stop();
}

std::vector<std::string> ZoneNetwork::AddressesOfLocked(const std::string& name,
                                                        const std::string& except_id) {
  std::vector<std::string> out;
  for (const auto& [id, e] : zones_) {
    if (e.name == name && id != except_id) out.push_back(e.address);
  }
  for (const auto& [id, j] : joined_) {
    if (j.name == name && id != except_id) {
      out.insert(out.end(), j.addresses.begin(), j.addresses.end());
    }
  }
  return out;
}

PodRules ZoneNetwork::PodRulesLocked(const std::string& id, const Joined& j) {
  PodRules r;
  r.zone_id = id;
  r.ingress = j.net.allowed_ingress;
  for (const auto& peer : j.net.allowed_zones) {
    for (auto& a : AddressesOfLocked(peer, id)) r.peer_addresses.push_back(std::move(a));
  }
  return r;
}

void ZoneNetwork::RefreshJoinedReferrersLocked(const std::string& name,
                                               const std::string& except_id) {
  for (const auto& [id, j] : joined_) {
    if (id == except_id) continue;
    const auto& peers = j.net.allowed_zones;
    if (std::find(peers.begin(), peers.end(), name) == peers.end()) continue;
    LogJoinedError(
        RunNftIn(j.netns.get(), StrCat("updating the table of zone ", j.name),
                 PodTableCommands(PodTable(id), PodRulesLocked(id, j), config_.nflog_group)));
  }
}

absl::Status ZoneNetwork::AttachJoined(const std::string& zone_id, const std::string& zone_name,
                                       pid_t shim_pid, const policy::Policy& policy) {
  // The shim is in the namespace the zone joined; its /proc entry names exactly that one,
  // whatever happens to the path CRI mounted it on.
  std::string ns_path = StrCat("/proc/", shim_pid, "/ns/net");
  UniqueFd ns(::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns) return ErrnoStatus(errno, StrCat("open ", ns_path));
  RAUHA_ASSIGN_OR_RETURN(std::vector<std::string> addresses, Ipv4AddressesIn(ns.get()));
  // Reading before the rules exist: no drop goes unreported. The zone works without it.
  std::shared_ptr<DropLog> log;
  if (config_.nflog_group != 0) {
    log = std::make_shared<DropLog>(config_.nflog_group);
    {
      std::lock_guard lock(logs_mu_);
      log->SetSink(sink_);
    }
    if (auto st = log->Start(ns.get()); !st.ok()) {
      std::fprintf(stderr,
                   "rauhad: network: zone %s: packets nftables drops in the namespace it joined "
                   "will not be events: %s\n",
                   zone_name.c_str(), ToStd(st.message()).c_str());
      log.reset();
    }
  }
  std::lock_guard lock(mu_);
  Joined j{zone_name, std::move(ns), std::move(addresses), policy.network};
  // A table of the zone's may be there already (rauhad restarted under a live shim): replaced.
  absl::Status st = RunNftIn(
      j.netns.get(), StrCat("installing the table of zone ", zone_name),
      PodTableRebuildCommands(PodTable(zone_id), PodRulesLocked(zone_id, j), config_.nflog_group));
  if (!st.ok()) {
    if (log) log->Stop();
    return st;
  }
  joined_[zone_id] = std::move(j);
  if (log) {
    std::lock_guard logs_lock(logs_mu_);
    pod_logs_[zone_id] = log;
  }
  RefreshJoinedReferrersLocked(zone_name, zone_id);
  return absl::OkStatus();
}

void ZoneNetwork::DetachJoined(const std::string& zone_id, const std::string& netns_path) {
  std::shared_ptr<DropLog> log;
  {
    std::lock_guard lock(mu_);
    auto it = joined_.find(zone_id);
    if (it != joined_.end()) {
      // The namespace is CRI's and may outlive the zone: nothing of ours stays in it.
      LogJoinedError(RunNftIn(it->second.netns.get(),
                              StrCat("deleting the table of zone ", it->second.name),
                              PodTableDeleteCommands(PodTable(zone_id))));
      std::string name = it->second.name;
      joined_.erase(it);
      RefreshJoinedReferrersLocked(name, zone_id);
      std::lock_guard logs_lock(logs_mu_);
      if (auto l = pod_logs_.find(zone_id); l != pod_logs_.end()) {
        log = std::move(l->second);
        pod_logs_.erase(l);
      }
    } else if (!netns_path.empty()) {
      // Never attached by this rauhad (its shim died while none ran): its table may still be
      // in the namespace, if that is still there.
      UniqueFd ns(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
      if (ns)
        (void)RunNftIn(ns.get(), "deleting a table", PodTableDeleteCommands(PodTable(zone_id)));
    }
  }
  // Outside mu_: the reader may be delivering a drop.
  if (log) log->Stop();
}

void ZoneNetwork::ShutdownJoined() {
  std::map<std::string, Joined> joined;
  {
    std::lock_guard lock(mu_);
    joined.swap(joined_);
  }
  for (const auto& [id, j] : joined) {
    if (!config_.keep_network) {
      LogJoinedError(RunNftIn(j.netns.get(), StrCat("deleting the table of zone ", j.name),
                              PodTableDeleteCommands(PodTable(id))));
    }
  }
  StopDropLog();
}

bool ZoneNetwork::IsJoined(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  return joined_.count(zone_id) != 0;
}

absl::Status ZoneNetwork::UpdateJoinedLocked(const std::string& zone_id,
                                             const policy::Policy& policy) {
  Joined& j = joined_.at(zone_id);
  policy::Policy::Network previous = j.net;
  j.net = policy.network;
  // One transaction: new connections see either the old rules or the new ones.
  absl::Status st = RunNftIn(
      j.netns.get(), StrCat("updating the table of zone ", j.name),
      PodTableCommands(PodTable(zone_id), PodRulesLocked(zone_id, j), config_.nflog_group));
  if (!st.ok()) j.net = previous;
  return st;
}

std::optional<DropCounts> ZoneNetwork::JoinedDropCountsLocked(const std::string& zone_id) {
  const Joined& j = joined_.at(zone_id);
  std::string table = PodTable(zone_id), text;
  absl::Status st = RunNftIn(j.netns.get(), StrCat("listing the counters of zone ", j.name),
                             StrCat("list counters table inet ", table), &text);
  if (!st.ok()) {
    LogJoinedError(st);
    return std::nullopt;
  }
  auto all = ParseDropCounters(text, table);
  if (!all.ok()) {
    LogJoinedError(all.status());
    return std::nullopt;
  }
  auto it = all->find(ShortId(zone_id));
  return it == all->end() ? DropCounts{} : it->second;
}

std::string ZoneNetwork::JoinedRulesLocked(const std::string& zone_id) {
  const Joined& j = joined_.at(zone_id);
  return PodTableCommands(PodTable(zone_id), PodRulesLocked(zone_id, j), config_.nflog_group);
}

}  // namespace rauha::net
