// Which kernel layer enforces each control a policy states, on this host, as probed at
// start-up: the one table behind `rauha info`, `zone show`, VerifyIsolation and admission.
//
// Where the eBPF LSM programs load they are the primary layer for what they hook; elsewhere
// the fallbacks take over (cgroup-bpf, Landlock, seccomp, namespaces, dropped capabilities).
// A control nothing here enforces has layer "" and, unless the policy's admission mode is
// "audit", keeps the zone from being created.
#pragma once

#include <string>
#include <vector>

#include "rauha-common/policy/policy.h"

namespace rauha {

// What rauhad found it can use on this host.
struct HostLayers {
  bool lsm = false;         // eBPF LSM programs loaded
  bool cgroup_bpf = false;  // the enforcer's cgroup programs loaded
  int landlock_abi = 0;
  bool seccomp = true;
  bool nftables = false;  // bridged networking configured
  std::string lsm_detail;
  bool landlock_events = false;  // Landlock denials reach the ring buffer (kprobe observer)
  std::string landlock_events_detail;
  // Zones get their own user namespace (probed: user namespaces and idmapped mounts work, and
  // --userns-range is not off); the detail says what was found.
  bool userns = false;
  std::string userns_detail = "not probed";
};

struct ControlLayer {
  std::string control;            // "filesystem.write", "network.egress", "exec.denied", ...
  std::string layer;              // primary layer: "lsm", "cgroup-bpf", "landlock", "seccomp",
                                  // "nftables", "namespace", "capabilities", "cgroup"; "" = none
  std::vector<std::string> also;  // further layers enforcing it too
  std::string detail;
};

// The controls `policy` states, each with the layer that enforces it here.
std::vector<ControlLayer> MapControls(const policy::Policy& policy, const HostLayers& host);

// Every control rauha knows, as a policy that states all of them would get here (for
// `rauha info`).
std::vector<ControlLayer> HostControls(const HostLayers& host);

// The controls of `policy` no layer enforces here, as "exec.denied: needs the eBPF LSM
// programs (BPF_PROG_LOAD lsm/...: Operation not permitted)".
std::vector<std::string> EnforcementGaps(const policy::Policy& policy, const HostLayers& host);

}  // namespace rauha
