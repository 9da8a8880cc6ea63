// A task's root built before the task is known (the warm pool's prepared task process,
// prepared_task.h): what of a root depends on the zone and its policy only is built while the
// zone waits in the pool (rootfs.h, BuildRootAhead); what the request brings, its mounts (the
// repository at /workspace), is attached when it starts, from detached mount trees the shim
// makes at that moment in the host's mount namespace. So a mount made on the host after the
// zone was pooled is what the task's /workspace shows, as if the root had been built then.
//
// A task whose root would differ in anything else (another policy's writable paths or
// devices, an image, a container's root, a writable path a mount covers) does not fit:
// RootAheadServes is false and the prepared process builds that task's root the ordinary way.
// The host's system directories and /etc in a root built ahead are those of the moment the
// pool made the zone.
#pragma once

#include "absl/status/statusor.h"
#include "rauha-common/fd.h"
#include "rauha-shim/task_plan.h"

namespace rauha::shim {

// Whether the root built ahead for `built` (a plan with no mounts) serves `plan` once
// plan.mounts are attached: every field the root builder reads, but the mounts, is the same.
bool RootAheadServes(const TaskPlan& built, const TaskPlan& plan);

// A detached copy (open_tree, recursive) of mount `m`'s source with the flags the task gets
// (nosuid, nodev, read-only if asked; idmapped through m.idmap_fd if set), private (nothing
// propagates between it and the host's tree). A pinned source is opened as rauhad checked it
// and, idmapped, must still have the owner its idmap was made for. To be called in the host's
// mount namespace, when the task starts.
absl::StatusOr<UniqueFd> MountTreeFor(const PlannedMount& m);

}  // namespace rauha::shim
