#include "rauhad/controls.h"

#include <algorithm>

#include "rauha-common/strcat.h"

namespace rauha {
namespace {

using policy::NetworkMode;

bool HasCapability(const policy::Policy& p, std::string_view cap) {
  return std::find(p.capabilities.allowed.begin(), p.capabilities.allowed.end(), cap) !=
         p.capabilities.allowed.end();
}

// Builds one row: the first available layer of `candidates` is primary, the rest are "also".
struct Candidate {
  bool available;
  const char* layer;
};
ControlLayer Row(std::string control, std::initializer_list<Candidate> candidates,
                 std::string detail) {
  ControlLayer row{std::move(control), "", {}, std::move(detail)};
  for (const auto& c : candidates) {
    if (!c.available) continue;
    if (row.layer.empty()) {
      row.layer = c.layer;
    } else {
      row.also.push_back(c.layer);
    }
  }
  return row;
}

std::vector<ControlLayer> Map(const policy::Policy& p, const HostLayers& h, bool everything) {
  const bool landlock = h.landlock_abi > 0;
  const bool scoping = h.landlock_abi >= 6;
  const bool host_net = p.network.mode == NetworkMode::kHost;
  const bool bridged = p.network.mode == NetworkMode::kBridged;
  std::vector<ControlLayer> rows;

  rows.push_back(Row("filesystem.write",
                     {{h.lsm, "lsm"}, {landlock, "landlock"}, {true, "namespace"}},
                     "writes only beneath [filesystem].writable_paths (lsm/file_open, Landlock "
                     "write rights, read-only mounts)"));
  if (everything || !p.exec.allowed.empty()) {
    rows.push_back(Row("exec.allowed", {{h.lsm, "lsm"}, {landlock, "landlock"}},
                       "programs run only from [exec].allowed (lsm/bprm_check_security; Landlock "
                       "execute rights, the dynamic loader included)"));
  }
  if (everything || !p.exec.denied.empty()) {
    rows.push_back(Row("exec.denied", {{h.lsm, "lsm"}},
                       "programs beneath [exec].denied never run (lsm/bprm_check_security)"));
  }
  rows.push_back(Row("process.signal", {{h.lsm, "lsm"}, {true, "namespace"}, {scoping, "landlock"}},
                     "no signal to a process outside the zone (lsm/task_kill; a pid namespace per "
                     "task; Landlock signal scoping)"));
  rows.push_back(Row("process.ptrace",
                     {{h.lsm, "lsm"}, {true, "namespace"}, {landlock, "landlock"}},
                     "no ptrace of a process outside the zone (lsm/ptrace_access_check; a pid "
                     "namespace per task; Landlock)"));
  rows.push_back(Row("mount", {{h.lsm, "lsm"}, {h.seccomp, "seccomp"}},
                     "no mount, move_mount, pivot_root (lsm/sb_mount, lsm/move_mount; seccomp)"));
  rows.push_back(
      Row("namespaces", {{h.seccomp, "seccomp"}, {h.lsm, "lsm"}},
          "no unshare, setns or clone into new namespaces (seccomp; lsm/userns_create)"));
  rows.push_back(Row("cgroup.escape", {{h.lsm, "lsm"}, {true, "namespace"}},
                     "no write to cgroupfs (lsm/file_open; no cgroupfs in the task's root)"));
  rows.push_back(
      Row("bpf", {{h.lsm, "lsm"}, {h.seccomp, "seccomp"}}, "no bpf() (lsm/bpf; seccomp)"));
  rows.push_back(Row("perf_event_open", {{h.lsm, "lsm"}, {h.seccomp, "seccomp"}},
                     "no perf_event_open (lsm/perf_event_open; seccomp)"));
  rows.push_back(Row("kernel_modules", {{h.lsm, "lsm"}, {h.seccomp, "seccomp"}},
                     "no module loading (lsm/kernel_read_file, kernel_load_data; seccomp)"));
  rows.push_back(Row("capabilities", {{h.lsm, "lsm"}, {true, "capabilities"}},
                     StrCat("only ", p.capabilities.allowed.size(),
                            " capabilities of [capabilities].allowed (lsm/capable; the others "
                            "dropped from every set)")));
  rows.push_back(Row("devices", {{h.cgroup_bpf, "cgroup-bpf"}, {true, "namespace"}},
                     "only [devices].allowed (cgroup/dev; a minimal /dev)"));
  rows.push_back(Row("sysctl.write", {{h.cgroup_bpf, "cgroup-bpf"}, {true, "namespace"}},
                     "no sysctl writes (cgroup/sysctl; /proc/sys read-only)"));
  if (everything || !host_net) {
    rows.push_back(Row(
        "network.egress",
        {{bridged && h.nftables, "nftables"},
         {!bridged, "namespace"},
         {h.cgroup_bpf, "cgroup-bpf"},
         {h.lsm, "lsm"}},
        bridged ? "only [network].allowed_egress and allowed zones (nftables; cgroup/connect4/6, "
                  "sendmsg4/6; lsm/socket_connect)"
                : "isolated: no interface but lo (network namespace; cgroup/connect4/6, "
                  "sendmsg4/6; lsm/socket_connect)"));
  }
  if (everything || !host_net) {
    rows.push_back(Row("network.bind", {{h.cgroup_bpf, "cgroup-bpf"}, {true, "namespace"}},
                       "binds only loopback, the wildcard or the zone's own address, never one of "
                       "the host or another zone (cgroup/bind4/6; the zone's own network "
                       "namespace, which no traffic for other addresses reaches)"));
  }
  if (everything || !HasCapability(p, "CAP_NET_RAW")) {
    rows.push_back(Row("network.raw_sockets",
                       {{h.cgroup_bpf, "cgroup-bpf"}, {true, "capabilities"}},
                       "no raw or packet sockets without CAP_NET_RAW (cgroup/sock_create; "
                       "CAP_NET_RAW dropped)"));
  }
  if (everything || !p.syscalls.deny.empty()) {
    rows.push_back(Row("syscalls.deny", {{h.seccomp, "seccomp"}},
                       StrCat(p.syscalls.deny.size(), " syscalls of [syscalls].deny (seccomp)")));
  }
  return rows;
}

}  // namespace

std::vector<ControlLayer> MapControls(const policy::Policy& policy, const HostLayers& host) {
  return Map(policy, host, false);
}

std::vector<ControlLayer> HostControls(const HostLayers& host) {
  policy::Policy all = policy::DefaultPolicy();
  all.network.mode = NetworkMode::kBridged;
  return Map(all, host, true);
}

std::vector<std::string> EnforcementGaps(const policy::Policy& policy, const HostLayers& host) {
  std::vector<std::string> gaps;
  for (const auto& row : MapControls(policy, host)) {
    if (!row.layer.empty()) continue;
    std::string why;
    if (row.control.starts_with("exec.")) {
      why = StrCat("needs the eBPF LSM programs, which do not load here",
                   host.lsm_detail.empty() ? "" : StrCat(" (", host.lsm_detail, ")"));
    } else {
      why = "no layer available on this host";
    }
    gaps.push_back(StrCat(row.control, ": ", why));
  }
  return gaps;
}

}  // namespace rauha
