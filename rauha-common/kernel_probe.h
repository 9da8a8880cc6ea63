// What the running kernel offers Rauha, found by trying (never by version numbers).
// Used by `rauha info` and by rauhad at start-up.
#pragma once

#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "rauha-common/cgroup_layout.h"

namespace rauha {

struct KernelFeature {
  std::string name;    // "namespace.net", "seccomp", "landlock", "bpf_lsm", "nftables", ...
  bool available = false;
  std::string detail;  // "ABI 7", "BPF_PROG_LOAD: Operation not permitted", ...
};

struct KernelInfo {
  std::string kernel_release;  // uname -r
  CgroupLayout cgroups;
  std::vector<KernelFeature> features;
};

// Probes namespaces (unshare in a short-lived child), seccomp (filter mode), Landlock ABI
// (landlock_create_ruleset version query), BPF LSM (libbpf_probe_bpf_prog_type), cgroup-bpf,
// nftables (netlink socket for NFNL_SUBSYS_NFTABLES), overlayfs (/proc/filesystems).
KernelInfo ProbeKernel();

nlohmann::json ToJson(const KernelInfo& info);

}  // namespace rauha
