// Which of an OCI bundle's mounts a pod's container gets, and on what terms.
//
// The zone gives every task its own /proc, /sys, /dev (with /dev/pts, /dev/mqueue, /dev/shm):
// the spec's mounts of those are the zone's already and are not applied. Other mounts that are
// not binds (containerd's default /run tmpfs) are not applied either (logged).
//
// A bind whose source is containerd's own state for this pod is applied as the spec says (ro
// where it says so): beneath <containerd root or state>/io.containerd.grpc.v1.cri/ in
// sandboxes/<this pod's sandbox id>/ or containers/<this container's id>/, where CRI writes
// the pod's /etc/hosts, /etc/hostname, /etc/resolv.conf and mounts its /dev/shm. The shim
// knows containerd's dirs from the bundle containerd gave it, not from the spec: the state dir
// is the bundle's <state>/io.containerd.runtime.v2.task/<ns>/<id>, the root dir what the
// bundle's `work` link names (<root>/io.containerd.runtime.v2.task/<ns>/<id>). rauhad opens the
// source without following any symlink and mounts only the object it checked.
//
// Any other bind (a hostPath volume) is a host path: rauhad applies the zone's host-path rules
// (a directory, not a system or broad directory, beneath --repo-root if set; privileged zones
// exempt). A bind at /dev/termination-log is kubelet's termination message file (a regular
// file of its own): applied as that, so the container's termination message reaches it; rauhad
// checks it is a regular file with one link.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "containerd-shim-rauha-v2/bundle.h"

namespace rauha::cshim {

struct ContainerdDirs {
  std::string root;   // "" when the bundle does not say (no `work` link)
  std::string state;  // "" when the bundle is not beneath one
};

// From the bundle directory containerd made (see above).
ContainerdDirs ContainerdDirsOf(const std::string& bundle_dir);

struct SpecMount {
  std::string source;
  std::string destination;
  bool readonly = false;
  bool runtime_state = false;    // containerd's own state for this pod
  bool termination_log = false;  // kubelet's file at /dev/termination-log
};

struct SpecMountPlan {
  std::vector<SpecMount> mounts;
  std::vector<std::string> skipped;  // "<destination> (<why>)", for the shim's log
};

// InvalidArgument naming the mount for a relative or unnormalised path.
absl::StatusOr<SpecMountPlan> PlanSpecMounts(const std::vector<BundleMount>& mounts,
                                             const ContainerdDirs& dirs,
                                             const std::string& sandbox_id,
                                             const std::string& container_id);

}  // namespace rauha::cshim
