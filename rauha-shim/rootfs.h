// The task's root filesystem, built in the task's own mount namespace (runs in the child,
// before any workload code): a tmpfs holding read-only views of the host's system
// directories, a curated /etc, fresh /proc (masked like runc), a minimal /dev, a private /tmp,
// the writable paths and the mounts of the TaskSpec; then pivot_root into it.
//
// Nothing propagates back: "/" is made recursively private first, and every tmpfs vanishes
// with the mount namespace when the task's last process exits.
#pragma once

#include "absl/status/status.h"
#include "rauha-shim/task_plan.h"

namespace rauha::shim {

// On success the calling process's root and working directory are the new root. Error
// messages name the step and the path as the task would see it ("bind /usr read-only: ...").
absl::Status BuildRootAndPivot(const TaskPlan& plan);

}  // namespace rauha::shim
