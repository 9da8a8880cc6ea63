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

// The same in two parts, for a root built before its task is known (a prepared task process,
// prepared_task.h). BuildRootAhead, in the process's new mount namespace, does all of
// BuildRootAndPivot but `base.mounts` (it must have none, and no image) and the root's
// read-only seal: the calling process's root is then the task's, still writable. When the
// task comes, FinishRootAhead attaches each of its plan.mounts from `mount_trees[i]` (a
// detached mount tree the shim made: MountTreeFor, root_ahead.h), then seals "/". `plan`
// must be one the root serves (RootAheadServes).
//
// For a task on an image (ImageRootAheadServes), FinishRootAhead instead mounts the image's
// overlay (its lower layers from `layer_trees`, LayerTreesFor; a private upper on the root
// built ahead's tmpfs), moves the /proc, /dev and /tmp built ahead onto it, makes its /etc
// files, writable paths and mounts as BuildRootAndPivot would, pivots into it (dropping the
// rest of the root built ahead) and seals it. `userns_fd`: the zone's user namespace, or -1
// (the ids of what it creates).
absl::Status BuildRootAhead(const TaskPlan& base, int userns_fd);
absl::Status FinishRootAhead(const TaskPlan& plan, const std::vector<int>& mount_trees,
                             const std::vector<int>& layer_trees = {}, int userns_fd = -1);

}  // namespace rauha::shim
