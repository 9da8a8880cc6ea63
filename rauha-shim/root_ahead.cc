#include "rauha-shim/root_ahead.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "rauha-common/errors.h"
#include "rauha-common/path_open.h"
#include "rauha-common/strcat.h"
#include "rauha-shim/image_root.h"

namespace rauha::shim {

bool RootAheadServes(const TaskPlan& built, const TaskPlan& plan) {
  // The fields RootBuilder's Setup, SystemDirs, Etc, Proc, Dev, Tmp and WritablePaths read
  // (rootfs.cc); a field added there must be added here.
  return plan.join_task.empty() && plan.image_layers.empty() && plan.image_root.empty() &&
         built.image_layers.empty() && built.image_root.empty() && built.mounts.empty() &&
         plan.rootfs_dir == built.rootfs_dir && plan.hostname == built.hostname &&
         plan.isolated_network == built.isolated_network &&
         plan.zone_address == built.zone_address && plan.root_writable == built.root_writable &&
         plan.overlay_dirs == built.overlay_dirs && plan.scratch_dirs == built.scratch_dirs &&
         plan.tmp_dirs == built.tmp_dirs && plan.devices == built.devices &&
         (plan.userns_fd >= 0) == (built.userns_fd >= 0) && plan.userns_first == built.userns_first;
}

bool ImageRootAheadServes(const TaskPlan& built, const TaskPlan& plan) {
  // The root built ahead gives the image's root its /proc (Proc reads nothing of the plan),
  // /dev (Dev: devices, the termination log's mount point, the user namespace's ids) and /tmp
  // (Tmp: tmp_dirs, the ids); the rest is made from `plan` at the call. On the host's network
  // Etc copies the host's /etc/resolv.conf, which the root built ahead no longer shows.
  bool into_dev = std::any_of(plan.mounts.begin(), plan.mounts.end(), [](const PlannedMount& m) {
    return m.target == kTerminationLogTarget || m.target.starts_with("/dev/");
  });
  return plan.join_task.empty() && !plan.image_layers.empty() && plan.image_root.empty() &&
         plan.image_upper.empty() && !into_dev && plan.isolated_network &&
         built.image_layers.empty() && built.image_root.empty() && built.mounts.empty() &&
         plan.rootfs_dir == built.rootfs_dir && plan.tmp_dirs == built.tmp_dirs &&
         plan.devices == built.devices && (plan.userns_fd >= 0) == (built.userns_fd >= 0) &&
         plan.userns_first == built.userns_first;
}

absl::StatusOr<std::vector<UniqueFd>> LayerTreesFor(const TaskPlan& plan) {
  std::vector<UniqueFd> trees;
  for (const std::string& dir : LayerParentsOf(plan.image_layers).dirs) {
    UniqueFd tree(static_cast<int>(
        ::syscall(SYS_open_tree, AT_FDCWD, dir.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
    if (!tree) return ErrnoStatus(errno, StrCat("open_tree the image layers in ", dir));
    mount_attr attr{};
    attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    if (plan.userns_fd >= 0) {
      attr.attr_set |= MOUNT_ATTR_IDMAP;
      attr.userns_fd = static_cast<uint64_t>(plan.userns_fd);
    }
    // A clone of a shared host mount would be its peer (MountTreeFor).
    attr.propagation = MS_PRIVATE;
    if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0) {
      return ErrnoStatus(errno, StrCat("mount_setattr on the image layers in ", dir,
                                       plan.userns_fd >= 0 ? " (idmapped)" : ""));
    }
    trees.push_back(std::move(tree));
  }
  return trees;
}

absl::StatusOr<UniqueFd> MountTreeFor(const PlannedMount& m) {
  const std::string what = StrCat("bind ", m.source, " at ", m.target);
  UniqueFd source;
  if (m.pinned) {
    RAUHA_ASSIGN_OR_RETURN(source, OpenPinned(m.source, *m.pinned));
    if (m.idmap_fd >= 0) {
      // The idmap was made for the owner the shim saw; the pinned object must still have it.
      struct stat st;
      if (::fstat(source.get(), &st) < 0) return ErrnoStatus(errno, StrCat("stat ", m.source));
      if (st.st_uid != m.owner_uid || st.st_gid != m.owner_gid) {
        return absl::FailedPreconditionError(
            StrCat(m.source, " changed owner while the task started; start it again"));
      }
    }
  }
  unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE;
  UniqueFd tree(
      static_cast<int>(source ? ::syscall(SYS_open_tree, source.get(), "", flags | AT_EMPTY_PATH)
                              : ::syscall(SYS_open_tree, AT_FDCWD, m.source.c_str(), flags)));
  if (!tree) return ErrnoStatus(errno, StrCat(what, ": open_tree"));
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (m.readonly ? MOUNT_ATTR_RDONLY : 0);
  if (m.idmap_fd >= 0) {
    attr.attr_set |= MOUNT_ATTR_IDMAP;
    attr.userns_fd = static_cast<uint64_t>(m.idmap_fd);
  }
  // A clone of a shared host mount would be its peer: mounts would propagate both ways.
  attr.propagation = MS_PRIVATE;
  if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
    return ErrnoStatus(errno, StrCat(what, ": mount_setattr"));
  }
  return tree;
}

}  // namespace rauha::shim
