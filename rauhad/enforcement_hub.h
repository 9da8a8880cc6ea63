// Where enforcement meets the rest of rauhad: owns the zones' BPF attachments, knows which
// layer enforces what here (controls.h), and routes every enforcement event (BPF ring buffer,
// the shims' seccomp notifications) to WatchEvents, per-zone per-hook counters and the results
// of the tasks running when it happened. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "rauha-common/enforcement_event.h"
#include "rauhad/audit/recorder.h"
#include "rauhad/controls.h"
#include "rauhad/event_bus.h"
#include "rauhad/linux/bpf/enforcer.h"
#include "rauhad/linux/cgroup.h"
#include "rauhad/net/drop_packet.h"

namespace rauha {

struct HookCount {
  std::string hook;
  std::string layer;
  uint64_t denied = 0;
};

struct TaskEvents {
  std::vector<EnforcementEvent> events;
  uint64_t lost = 0;  // the kernel had no room for them, or the result's bound was reached
};

class EnforcementHub {
 public:
  static constexpr size_t kMaxEventsPerTask = 4096;

  // `enforcer` may be null (no BPF here): BPF-enforced controls then fall back or are gaps.
  EnforcementHub(std::unique_ptr<bpf::Enforcer> enforcer, HostLayers host, EventBus* bus);
  // Zones still attached live on (rauhad exits without stopping them): their pinned programs
  // stay in the kernel for the next rauhad. DetachZone is what removes a zone's.
  ~EnforcementHub();

  const HostLayers& host() const { return host_; }
  bool has_bpf() const { return enforcer_ != nullptr; }

  // Zone lifecycle. AttachZone is a no-op without BPF. `address`/`subnet`: bridged zones.
  absl::Status AttachZone(const std::string& zone_id, const std::string& zone_name,
                          const cgroup::ZoneCgroup& cg, const policy::Policy& policy,
                          const std::string& subnet);
  absl::Status UpdateZone(const std::string& zone_id, const policy::Policy& policy);
  // A bridged zone's address, once the network gave it one (after AttachZone: the programs
  // must be in place before the shim starts, the address comes after).
  absl::Status SetZoneAddress(const std::string& zone_id, const std::string& address);
  void DetachZone(const std::string& zone_id);
  bool attached(const std::string& zone_id);
  // After start-up recovery attached every surviving zone (adopting its pinned links): removes
  // the pins of zones that did not survive and starts the event flow (Enforcer::FinishAdoption).
  void FinishRecovery();

  // A task's events: from Begin until End. End drains the ring buffer first, so every event
  // the kernel produced before End was called is in the answer. `pidns_ino` (0 unknown) tells
  // concurrent tasks of one zone apart. Shim (seccomp) events come with the shim's result and
  // are merged by the caller.
  void BeginTask(const std::string& task_id, const std::string& zone_id, uint64_t pidns_ino);
  void SetTaskPidns(const std::string& task_id, uint64_t pidns_ino);
  // The task's kernel events (ring buffer, nftables drops) also go to `live` as they come,
  // once its pid namespace is known (SetTaskPidns; the ones before that then): called with
  // the hub's lock held, from the thread that read the event, so it must only queue the
  // event (a slow reader must not hold up enforcement). EndTask still returns every event.
  void SetTaskLive(const std::string& task_id, std::function<void(const EnforcementEvent&)> live);
  TaskEvents EndTask(const std::string& task_id);

  // Events that reach rauhad outside the ring buffer (the shim's live seccomp frames).
  void Publish(const EnforcementEvent& event);
  // An event of rauhad's own making (the egress proxy's refusals): counted, published, and
  // added to the results of the zone's running tasks.
  void PublishToResults(const EnforcementEvent& event) { OnEvent(event, true); }
  // A packet a zone's nftables chain dropped: attributed to that zone (and the zone it was
  // for), counted, published, and added to the zone's running tasks' results.
  void PublishDrop(const net::DroppedPacket& packet, int64_t time_ns);
  // EndTask runs `drain` too (the drop log's queue), after the ring buffer. Set before tasks run.
  void set_extra_drain(std::function<void()> drain) { extra_drain_ = std::move(drain); }
  // Every denial also goes to the audit log.
  void set_recorder(audit::Recorder* recorder) { recorder_ = recorder; }

  std::vector<HookCount> Counters(const std::string& zone_id);
  uint64_t Lost(const std::string& zone_id);

 private:
  struct Zone {
    std::string name;
    uint64_t cgroup_id = 0;
    std::string subnet;
    std::string address;
    policy::Policy policy;
    std::unique_ptr<bpf::ZoneAttachment> attachment;
    std::map<std::string, HookCount> counts;  // by hook
  };
  struct Collector {
    std::string zone_id;
    uint64_t pidns_ino = 0;
    uint64_t lost_before = 0;
    TaskEvents out;
    std::function<void(const EnforcementEvent&)> live;
    size_t live_sent = 0;  // out.events before this index went to `live` (or were not its)
  };
  // Sends the collector's events not yet sent to its `live`, if its pid namespace is known.
  // mu_ held.
  static void FeedLive(Collector& c);

  // `for_results`: the event goes to the results of the zone's running tasks too (the kernel's
  // events; the shim's reach results through its own list).
  void OnEvent(EnforcementEvent event, bool for_results);
  // Applies `change` to the zone's entry and loads its recompiled rules into the kernel.
  absl::Status Recompile(const std::string& zone_id, const std::function<void(Zone&)>& change);
  uint64_t KernelLost(uint64_t cgroup_id) const;
  uint64_t CgroupIdOf(const std::string& zone_id);
  bpf::ZoneRules Compile(const std::string& zone_id, uint64_t cgroup_id,
                         const policy::Policy& policy, const std::string& subnet,
                         const std::string& address) const;

  std::unique_ptr<bpf::Enforcer> enforcer_;
  HostLayers host_;
  EventBus* bus_;
  audit::Recorder* recorder_ = nullptr;
  std::function<void()> extra_drain_;
  std::mutex mu_;
  std::map<std::string, Zone> zones_;            // by zone id
  std::map<std::string, Collector> collectors_;  // by task id
};

// The zone's [devices].allowed as (type, major, minor), stat'ed on the host; devices the host
// lacks are left out (the shim warns about them).
std::vector<bpf::ZoneRules::Device> ResolveDevices(const std::vector<std::string>& paths);

// The pid namespace inode of a host pid (0 when it is gone).
uint64_t PidNamespaceOf(int64_t pid);

}  // namespace rauha
