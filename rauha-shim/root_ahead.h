// A task's root built before the task is known (the warm pool's prepared task process,
// prepared_task.h): what of a root depends on the zone and its policy only is built while the
// zone waits in the pool (rootfs.h, BuildRootAhead); what the request brings, its mounts (the
// repository at /workspace), is attached when it starts, from detached mount trees the shim
// makes at that moment in the host's mount namespace. So a mount made on the host after the
// zone was pooled is what the task's /workspace shows, as if the root had been built then.
//
// A task on an image with a private upper (a container removed at its exit: `run --rm`) is
// served too (ImageRootAheadServes): its root is the image's overlay, mounted at the call
// over read-only trees of the layers' directories the shim makes then (LayerTreesFor); the
// /proc, /dev and /tmp built ahead are moved onto it, its /etc files, writable paths and
// mounts are made as for any image root, and the process pivots into it, which drops the rest
// of the root built ahead. So the call no longer copies the host's mount table, mounts
// /proc, /dev and /tmp, or drops the host's root.
//
// A task whose root would differ in anything else (another policy's writable paths or
// devices, a kept upper, a container's root, a writable path a mount covers) does not fit:
// the prepared process builds that task's root the ordinary way.
// The host's system directories and /etc in a root built ahead are those of the moment the
// pool made the zone.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "rauha-common/fd.h"
#include "rauha-shim/task_plan.h"

namespace rauha::shim {

// Whether the root built ahead for `built` (a plan with no mounts) serves `plan` once
// plan.mounts are attached: every field the root builder reads, but the mounts, is the same.
bool RootAheadServes(const TaskPlan& built, const TaskPlan& plan);

// Whether the root built ahead for `built` serves `plan`, a task on an image
// (plan.image_layers) with a private upper (no image_upper), as described above: the
// fields Proc, Dev and Tmp (rootfs.cc) read are the same, and no mount of the task goes into
// /dev.
bool ImageRootAheadServes(const TaskPlan& built, const TaskPlan& plan);

// A detached, read-only, private copy of each directory holding plan.image_layers
// (LayerParentsOf(plan.image_layers).dirs, in that order), idmapped through plan.userns_fd
// if the zone has a user namespace (its files then show as the zone's ids, as IdmappedLayers
// makes them). To be called in the host's mount namespace, when the task starts.
absl::StatusOr<std::vector<UniqueFd>> LayerTreesFor(const TaskPlan& plan);

// A detached copy (open_tree, recursive) of mount `m`'s source with the flags the task gets
// (nosuid, nodev, read-only if asked; idmapped through m.idmap_fd if set), private (nothing
// propagates between it and the host's tree). A pinned source is opened as rauhad checked it
// and, idmapped, must still have the owner its idmap was made for. To be called in the host's
// mount namespace, when the task starts.
absl::StatusOr<UniqueFd> MountTreeFor(const PlannedMount& m);

}  // namespace rauha::shim
