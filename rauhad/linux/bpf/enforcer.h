// The eBPF enforcer: one CO-RE object (ebpf/enforcer.bpf.c, embedded as a bpftool skeleton)
// loaded once per rauhad.
//
// - LSM programs (file_open, bprm_check_security, ptrace_access_check, task_kill,
//   socket_connect, sb_mount, move_mount, bpf, perf_event_open, kernel module loading, capable,
//   userns_create, writes to cgroupfs) attach globally when the kernel accepts them (probed at
//   Load: this host refuses every trampoline program with EPERM), and return at once for a
//   process in no zone (its cgroup v2 id is not a key of the zone map).
// - cgroup-bpf programs (connect4/6, sendmsg4/6, bind4/6, sock_create, dev, sysctl) attach to
//   each zone's v2 cgroup directory in AttachZone, whatever the LSM probe said.
// - A kprobe on landlock_log_denial (kernels with Landlock audit, 6.15+) turns Landlock
//   denials in zones into events; elsewhere Landlock denials are not observable.
// Every deny writes one event to a single ring buffer (batched wake-ups: producers do not wake
// the consumer per event); a failed reservation counts as lost for the zone.
//
// With a pin directory (Options::pin_dir, layout in pin_dir.h) the maps, programs and links
// are pinned in bpffs, so enforcement goes on while no rauhad runs (kill -9 closes every fd;
// a link lives as long as a pin refers to it). The next Load adopts them: it reuses the maps
// (zone entries, counters, the ring buffer with the events made meanwhile) when they fit the
// object, keeps the LSM links when it does, and AttachZone switches a zone's pinned links to
// the new programs instead of attaching duplicates. A zone's pins go when its attachment is
// destroyed; the rest when the Enforcer goes with no zone pinned.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rauha-common/enforcement_event.h"
#include "rauha-common/policy/policy.h"

namespace rauha::bpf {

// What one zone is allowed, compiled by rauhad from its policy and runtime facts.
struct ZoneRules {
  std::string zone_id;
  uint64_t cgroup_id = 0;  // the zone's cgroup v2 id (map key)
  policy::NetworkMode network_mode = policy::NetworkMode::kIsolated;
  // connect/sendmsg: allowed destinations besides loopback ([network].allowed_egress).
  std::vector<policy::NetRule> egress;
  // The zone's own addresses: reachable on any port, and the only non-loopback, non-wildcard
  // addresses it may bind.
  std::vector<std::string> peer_addresses;
  // [network].allowed_ingress (kept in the map; which ports are reachable is nftables' call).
  std::vector<policy::NetRule> ingress;
  bool allow_raw_sockets = false;  // CAP_NET_RAW in [capabilities].allowed
  struct Device {
    static constexpr uint32_t kAnyMinor = 0xffffffffu;  // every minor of `major`
    char type = 'c';                                    // 'c' or 'b'
    uint32_t major = 0;
    uint32_t minor = 0;
  };
  std::vector<Device> devices;              // [devices].allowed, resolved by rauhad (stat)
  std::vector<std::string> writable_paths;  // inside the task's root, e.g. "/tmp", "/workspace"
  std::vector<std::string> exec_allowed;    // [exec].allowed prefixes; empty: any
  std::vector<std::string> exec_denied;     // [exec].denied prefixes
  uint64_t capabilities_allowed = 0;        // bit N = capability N may be used
};

// Denials per hook for one zone, read from the kernel's counters.
struct HookCounter {
  std::string hook;   // "cgroup/connect4", "lsm/file_open", "landlock", ...
  std::string layer;  // "cgroup-bpf", "lsm", "landlock"
  uint64_t denied = 0;
};
struct ZoneCounters {
  std::vector<HookCounter> hooks;  // hooks with at least one denial
  uint64_t lost = 0;               // events the ring buffer had no room for
};

class Enforcer;

// The zone's cgroup programs and map entries; destroying it detaches the links, removes their
// pins and the entries (after which nothing of the zone is left in the kernel).
class ZoneAttachment {
 public:
  virtual ~ZoneAttachment() = default;
  // rauhad is going while the zone lives on: destroying the attachment then only closes its
  // fds, and the pinned links keep enforcing (without a pin directory they end anyway).
  virtual void KeepPinned() = 0;
  // How many of its links were adopted from pins rather than attached.
  virtual int adopted_links() const = 0;
};

class Enforcer {
 public:
  struct Options {
    bool try_lsm = true;  // false: never load LSM programs (tests of the fallback path)
    bool observe_landlock = true;
    size_t ring_buffer_bytes = 1u << 22;
    // bpffs directory of this instance (made, and bpffs mounted at /sys/fs/bpf when nothing
    // is, if needed); "" pins nothing. When it cannot be used, Load goes on unpinned and
    // pin_detail() says why.
    std::string pin_dir;
  };

  // Loads the object. Fails only when even the cgroup programs cannot load (no BPF at all):
  // the caller then reports every BPF-enforced control as unavailable.
  static absl::StatusOr<std::unique_ptr<Enforcer>> Load(const Options& options);
  virtual ~Enforcer() = default;

  virtual bool lsm_loaded() const = 0;
  // Why LSM programs are not loaded ("BPF_PROG_LOAD lsm/file_open: Operation not permitted"),
  // or what is loaded ("13 LSM hooks").
  virtual std::string lsm_detail() const = 0;
  virtual bool landlock_observed() const = 0;
  virtual std::string landlock_detail() const = 0;
  // "pinned in DIR (...)" or why nothing is pinned.
  virtual std::string pin_detail() const = 0;

  // Fills the zone's map entry and attaches the cgroup programs to `cgroup_v2_path`.
  virtual absl::StatusOr<std::unique_ptr<ZoneAttachment>> AttachZone(
      const std::string& cgroup_v2_path, const ZoneRules& rules) = 0;
  // Replaces the zone's rules in place (ApplyPolicy); links stay.
  virtual absl::Status UpdateZone(const ZoneRules& rules) = 0;
  // Once every zone that outlived the previous rauhad has been attached again: removes the
  // pins and map entries of zones nobody claimed (deleted while the daemon was down, or
  // interrupted half-way) and starts delivering events; those the kernel made while no
  // rauhad ran wait in the pinned ring buffer until then, so they reach their zone. Without a
  // pin directory events flow from Load and this does nothing.
  virtual void FinishAdoption() = 0;

  // Called on the consumer thread (or inside Drain) for each event, in ring-buffer order.
  // Set it before the first AttachZone.
  virtual void SetSink(std::function<void(EnforcementEvent)> sink) = 0;
  // Consumes everything the ring buffer holds now and returns after the sink has seen it: an
  // event produced before the call is delivered before it returns.
  virtual void Drain() = 0;
  virtual ZoneCounters Counters(uint64_t cgroup_id) const = 0;
  // Events lost across all zones since the maps were made (a Load that adopts them keeps it).
  virtual uint64_t TotalLost() const = 0;
};

}  // namespace rauha::bpf
