// The bind mounts of a containerd process (rauha.process.v1 ProcessMount) as the shim's mounts:
// each source opened without following a symlink and pinned by identity, so the shim mounts
// that very object.
//
// Two kinds (the caller, containerd-shim-rauha-v2, says which):
//   - runtime_state: containerd's own files for this pod (CRI's /etc/hosts, /etc/hostname,
//     /etc/resolv.conf, the pod's /dev/shm): a regular file or a directory, as the spec binds it;
//   - any other host path (a Kubernetes hostPath volume): it must pass the zone's host-path
//     rules, exactly as a sandbox's repo_path does (host_path.h); a privileged zone is exempt.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "rauha-common/shim_protocol.h"
#include "rauha/v1/process.pb.h"
#include "rauhad/host_path.h"
#include "rauhad/zone_manager.h"

namespace rauha {

// InvalidArgument naming mounts[i] for a bad destination or source type, NotFound for a missing
// source, PermissionDenied for a host path the zone's rules refuse.
absl::StatusOr<std::vector<shim::Mount>> ProcessMounts(
    const ZoneView& zone, const rauha::process::v1::StartProcessRequest& req,
    const HostPathRules& rules);

}  // namespace rauha
