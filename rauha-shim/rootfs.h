// The task's root filesystem, built in the task's own mount namespace (runs in the child,
// before any workload code): a tmpfs holding read-only views of the host's system
// directories, a curated /etc, fresh /proc (masked like runc), a minimal /dev, a private /tmp,
// the writable paths and the mounts of the TaskSpec; then pivot_root into it.
//
// Nothing propagates back: "/" is made recursively private first, and every tmpfs vanishes
// with the mount namespace when the task's last process exits.
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "rauha-shim/task_plan.h"

namespace rauha::shim {

// On success the calling process's root and working directory are the new root. Error
// messages name the step and the path as the task would see it ("bind /usr read-only: ...").
//
// With the zone's user namespace (`userns_fd` >= 0) the host's directories are idmapped
// through it, so what the host's root owns appears owned by the zone's root (read-only all
// the same), and the tmpfs the shim makes belong to the zone's root; plan.mounts[i] is
// idmapped through `mount_idmap[i]` (its owner shown as the task's user).
absl::Status BuildRootAndPivot(const TaskPlan& plan, int userns_fd = -1,
                               const std::vector<int>& mount_idmap = {});

}  // namespace rauha::shim
