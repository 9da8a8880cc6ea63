// Landlock for a task's workload (raw syscalls; the structures and rights of ABI 4 to 6 are
// defined here since Debian 12's headers stop earlier). Applied in the workload's process
// just before seccomp and execve; the task's init stays outside the domain.
//
// Filesystem: read and execute everywhere (the task's root is already a private read-only
// view); every write right only beneath the task's writable places: /tmp, its writable_paths,
// its writable mounts and /dev/shm; under /dev, writing to (and, ABI >= 5, ioctl on) the
// devices bound in, nothing else. Only the rights the running kernel's ABI knows are handled:
// a handled right no rule grants is denied everywhere. TCP (ABI >= 4) is not restricted here:
// loopback keeps working, and egress is nftables' and cgroup-bpf's job. Scoping (ABI >= 6):
// no signal and no abstract unix socket connection to a process outside the workload's own
// domain, which includes the task's init and everything on the host.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "rauha-common/landlock_abi.h"
#include "rauha-shim/task_plan.h"

namespace rauha::shim {

// "landlock: ABI 7, fs + scope" for TaskResult.layers.
std::string LandlockSummary(int abi);

// In the workload's process, after no_new_privs (or with CAP_SYS_ADMIN); plan.landlock_abi > 0.
absl::Status ApplyLandlock(const TaskPlan& plan);

}  // namespace rauha::shim
