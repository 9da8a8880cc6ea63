#include "rauhad/enforcement_hub.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cstdio>

#include "rauha-common/strcat.h"
#include "rauhad/net/drop_event.h"
#include "rauhad/net/firewall.h"

namespace rauha {

std::vector<bpf::ZoneRules::Device> ResolveDevices(const std::vector<std::string>& paths) {
  std::vector<bpf::ZoneRules::Device> out;
  for (const auto& p : paths) {
    if (p == "/dev/pts") {
      // The zone's own devpts instance: its terminals are UNIX98_PTY_SLAVE_MAJOR, any minor
      // (20 bits of minor hold every pty the kernel allows). /dev/ptmx is stat'ed below: the
      // zone's pts/ptmx has the host's ptmx numbers (c 5:2).
      out.push_back({'c', 136, bpf::ZoneRules::Device::kAnyMinor});
      continue;
    }
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) continue;
    if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode)) continue;
    out.push_back({S_ISCHR(st.st_mode) ? 'c' : 'b', major(st.st_rdev), minor(st.st_rdev)});
  }
  return out;
}

uint64_t PidNamespaceOf(int64_t pid) {
  if (pid <= 0) return 0;
  struct stat st {};
  if (::stat(StrCat("/proc/", pid, "/ns/pid").c_str(), &st) != 0) return 0;
  return st.st_ino;
}

EnforcementHub::EnforcementHub(std::unique_ptr<bpf::Enforcer> enforcer, HostLayers host,
                               EventBus* bus)
    : enforcer_(std::move(enforcer)), host_(std::move(host)), bus_(bus) {
  if (enforcer_) enforcer_->SetSink([this](EnforcementEvent e) { OnEvent(std::move(e), true); });
}

EnforcementHub::~EnforcementHub() {
  {
    std::lock_guard lock(mu_);
    for (auto& [id, z] : zones_) {
      if (!z.attachment) continue;
      z.attachment->KeepPinned();
      z.attachment.reset();
    }
  }
  // The enforcer's consumer thread calls OnEvent: stop it before the members it uses go.
  enforcer_.reset();
}

bpf::ZoneRules EnforcementHub::Compile(const std::string& zone_id, uint64_t cgroup_id,
                                       const policy::Policy& p, const std::string& subnet,
                                       const std::string& address) const {
  bpf::ZoneRules r;
  r.zone_id = zone_id;
  r.cgroup_id = cgroup_id;
  r.network_mode = p.network.mode;
  r.egress = p.network.allowed_egress;
  if (!address.empty()) r.peer_addresses.push_back(address);
  r.ingress = p.network.allowed_ingress;
  // Zone to zone is nftables' decision (it knows which zones allow which); the in-kernel second
  // line lets the zone subnet through and holds everything else to allowed_egress.
  if (p.network.mode == policy::NetworkMode::kBridged && !subnet.empty()) {
    auto rule = policy::ParseNetRule(StrCat(subnet, ":0"));
    if (rule.ok()) r.egress.push_back(*rule);
  }
  for (const auto& cap : p.capabilities.allowed) {
    if (cap == "CAP_NET_RAW") r.allow_raw_sockets = true;
    if (auto n = policy::CapabilityNumber(cap); n && *n < 64) r.capabilities_allowed |= 1ull << *n;
  }
  r.devices = ResolveDevices(p.devices.allowed);
  r.writable_paths = p.filesystem.writable_paths;
  r.writable_paths.push_back("/workspace");  // the repository, when a task mounts one
  r.exec_allowed = p.exec.allowed;
  r.exec_denied = p.exec.denied;
  return r;
}

absl::Status EnforcementHub::AttachZone(const std::string& zone_id, const std::string& zone_name,
                                        const cgroup::ZoneCgroup& cg, const policy::Policy& policy,
                                        const std::string& subnet) {
  Zone zone{zone_name, cg.id, subnet, "", policy, nullptr, {}};
  if (enforcer_ && !cg.v2_path.empty() && cg.id != 0) {
    auto att = enforcer_->AttachZone(cg.v2_path, Compile(zone_id, cg.id, policy, subnet, ""));
    if (!att.ok()) {
      return absl::Status(att.status().code(),
                          StrCat("attaching the zone's BPF programs: ", att.status().message()));
    }
    zone.attachment = *std::move(att);
  }
  std::lock_guard lock(mu_);
  zones_[zone_id] = std::move(zone);
  return absl::OkStatus();
}

absl::Status EnforcementHub::Recompile(const std::string& zone_id,
                                       const std::function<void(Zone&)>& change) {
  bpf::ZoneRules rules;
  {
    std::lock_guard lock(mu_);
    auto it = zones_.find(zone_id);
    if (it == zones_.end()) return absl::OkStatus();
    Zone& z = it->second;
    change(z);
    if (!z.attachment) return absl::OkStatus();
    rules = Compile(zone_id, z.cgroup_id, z.policy, z.subnet, z.address);
  }
  return enforcer_->UpdateZone(rules);
}

absl::Status EnforcementHub::UpdateZone(const std::string& zone_id, const policy::Policy& policy) {
  return Recompile(zone_id, [&](Zone& z) { z.policy = policy; });
}

absl::Status EnforcementHub::SetZoneAddress(const std::string& zone_id,
                                            const std::string& address) {
  return Recompile(zone_id, [&](Zone& z) { z.address = address; });
}

void EnforcementHub::DetachZone(const std::string& zone_id) {
  std::unique_ptr<bpf::ZoneAttachment> att;
  {
    std::lock_guard lock(mu_);
    auto it = zones_.find(zone_id);
    if (it == zones_.end()) return;
    att = std::move(it->second.attachment);
    zones_.erase(it);
  }
  att.reset();  // outside mu_: detaching may wait for the consumer thread
}

void EnforcementHub::FinishRecovery() {
  if (enforcer_) enforcer_->FinishAdoption();
}

bool EnforcementHub::attached(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  auto it = zones_.find(zone_id);
  return it != zones_.end() && it->second.attachment != nullptr;
}

// Never called with mu_ held: the enforcer may hold its own lock while its sink takes mu_.
uint64_t EnforcementHub::KernelLost(uint64_t cgroup_id) const {
  return enforcer_ && cgroup_id ? enforcer_->Counters(cgroup_id).lost : 0;
}

void EnforcementHub::BeginTask(const std::string& task_id, const std::string& zone_id,
                               uint64_t pidns_ino) {
  Collector c;
  c.zone_id = zone_id;
  c.pidns_ino = pidns_ino;
  c.lost_before = KernelLost(CgroupIdOf(zone_id));
  std::lock_guard lock(mu_);
  collectors_[task_id] = std::move(c);
}

void EnforcementHub::SetTaskPidns(const std::string& task_id, uint64_t pidns_ino) {
  std::lock_guard lock(mu_);
  if (auto it = collectors_.find(task_id); it != collectors_.end()) {
    it->second.pidns_ino = pidns_ino;
    FeedLive(it->second);
  }
}

void EnforcementHub::SetTaskLive(const std::string& task_id,
                                 std::function<void(const EnforcementEvent&)> live) {
  std::lock_guard lock(mu_);
  if (auto it = collectors_.find(task_id); it != collectors_.end()) {
    it->second.live = std::move(live);
    FeedLive(it->second);
  }
}

void EnforcementHub::FeedLive(Collector& c) {
  // Until the task's pid namespace is known an event cannot be told to be its (EndTask's
  // filter); a task whose start did not say stays with the result only.
  if (!c.live || c.pidns_ino == 0) return;
  for (; c.live_sent < c.out.events.size(); ++c.live_sent) {
    const EnforcementEvent& e = c.out.events[c.live_sent];
    if (e.pidns_ino != 0 && e.pidns_ino != c.pidns_ino) continue;  // another task's
    c.live(e);
  }
}

TaskEvents EnforcementHub::EndTask(const std::string& task_id) {
  // Every event of the task was committed to the ring buffer before the syscall that caused it
  // returned, so before the task ended: draining now delivers all of them.
  if (enforcer_) enforcer_->Drain();
  if (extra_drain_) extra_drain_();
  Collector c;
  {
    std::lock_guard lock(mu_);
    auto it = collectors_.find(task_id);
    if (it == collectors_.end()) return {};
    c = std::move(it->second);
    collectors_.erase(it);
  }
  if (c.pidns_ino != 0) {
    std::erase_if(c.out.events, [&](const EnforcementEvent& e) {
      return e.pidns_ino != 0 && e.pidns_ino != c.pidns_ino;
    });
  }
  uint64_t now = KernelLost(CgroupIdOf(c.zone_id));
  if (now > c.lost_before) c.out.lost += now - c.lost_before;
  return std::move(c.out);
}

void EnforcementHub::Publish(const EnforcementEvent& event) { OnEvent(event, false); }

void EnforcementHub::PublishDrop(const net::DroppedPacket& packet, int64_t time_ns) {
  std::string zone_id, target_id, target_name;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, z] : zones_) {
      if (net::ShortId(id) == packet.zone_short_id) zone_id = id;
      if (packet.kind == net::DropKind::kZoneToZone && !z.address.empty() &&
          z.address == packet.destination) {
        target_id = id;
        target_name = z.name;
      }
    }
  }
  if (zone_id.empty()) return;  // a zone deleted since, or another rauhad's
  OnEvent(net::DropEvent(packet, zone_id, target_id, target_name, time_ns), true);
}

void EnforcementHub::OnEvent(EnforcementEvent event, bool for_results) {
  std::string zone_name;
  {
    std::lock_guard lock(mu_);
    auto it = zones_.find(event.zone_id);
    if (it != zones_.end()) {
      zone_name = it->second.name;
      HookCount& c = it->second.counts[event.hook];
      c.hook = event.hook;
      c.layer = event.layer;
      ++c.denied;
    }
    // Shim events reach the task's result through the shim's own (complete) list.
    if (for_results) {
      // The pid namespace filter runs in EndTask: a task's namespace is known only once its
      // start returned, and its first events may come before that.
      for (auto& [task_id, col] : collectors_) {
        if (col.zone_id != event.zone_id) continue;
        if (col.out.events.size() < kMaxEventsPerTask) {
          col.out.events.push_back(event);
          FeedLive(col);
        } else {
          ++col.out.lost;
        }
      }
    }
  }
  if (bus_ && !zone_name.empty()) {
    nlohmann::json j = ToJson(event);
    j["zone_name"] = zone_name;
    bus_->Publish(zone_name, "enforcement",
                  j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  if (recorder_) recorder_->Denial(event);
}

std::vector<HookCount> EnforcementHub::Counters(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  std::vector<HookCount> out;
  auto it = zones_.find(zone_id);
  if (it == zones_.end()) return out;
  for (const auto& [hook, c] : it->second.counts) out.push_back(c);
  return out;
}

uint64_t EnforcementHub::Lost(const std::string& zone_id) {
  return KernelLost(CgroupIdOf(zone_id));
}

uint64_t EnforcementHub::CgroupIdOf(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  auto it = zones_.find(zone_id);
  return it == zones_.end() ? 0 : it->second.cgroup_id;
}

}  // namespace rauha
