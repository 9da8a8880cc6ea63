// The pieces of a task root built from an image: an overlay of the image's layers with a
// private upper directory, and mounts and files placed inside it without following the
// image's symlinks out of it. The image's content is untrusted: every path inside it is
// resolved with openat2(RESOLVE_IN_ROOT) from the overlay's root fd, and mounts go onto the
// resolved fd (new mount API), so a symlink such as /etc -> /host/etc or /workspace -> /
// lands inside the image, never on the host.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rauha-common/fd.h"

namespace rauha::shim {

// Mounts overlayfs on `target`: `layers` (top first) read-only below a writable `upper` and
// its `work` dir (both empty, on the same filesystem), nosuid and nodev. `volatile_upper`:
// with overlayfs's "volatile" (no sync of the upper, also not at the unmount) where the kernel
// has it (TaskSpec::image_upper_volatile).
absl::Status MountImageOverlay(const std::vector<std::string>& layers, const std::string& upper,
                               const std::string& work, const std::string& target,
                               bool volatile_upper = false);

// What the shim creates in an image root belongs to `owner` (a host id, uid and gid alike):
// in a zone with a user namespace its root's host id, so that the zone's root owns it as it
// owns the image's root-owned files; 0 (the shim's own) otherwise.

// Makes /proc, /dev, /tmp and /etc of the root real directories (an image's symlink or file
// there is replaced in the upper layer), so the shim's own mounts and files there never
// follow anything of the image's.
absl::Status PrepareImageTopDirs(int root_fd, uint32_t owner = 0);

// Opens `task_path` inside the root (O_PATH), creating missing directories (mode 0755) and,
// if `is_dir` is false, the final file.
absl::StatusOr<UniqueFd> OpenImagePath(int root_fd, std::string_view task_path, bool is_dir,
                                       uint32_t owner = 0);

// Replaces /etc/<name> of the root with a fresh file holding `content`.
absl::Status WriteImageEtcFile(int root_fd, const char* name, std::string_view content,
                               uint32_t owner = 0);

// The directories holding `layers` (rauhad's layer cache holds them all in one), each once in
// the order of first use, and for each layer the index of its directory there and its name in
// it ("/<name>"; "" for a layer that is a directory of its own: "/" or a relative name).
struct LayerParents {
  std::vector<std::string> dirs;
  std::vector<std::pair<size_t, std::string>> layers;
};
LayerParents LayerParentsOf(const std::vector<std::string>& layers);

// Mounts the directories holding `layers` (top first) idmapped through `userns_fd`
// (open_tree OPEN_TREE_CLONE + mount_setattr MOUNT_ATTR_IDMAP, read-only; one mount per
// distinct parent directory) at <dir>/0, <dir>/1, ... (`dir` exists, on a tmpfs of the task's
// mount namespace) and returns the layers' paths in them, for MountImageOverlay: the layers'
// files then show as the ids of the zone (disk id N is the zone's id N), with no copy or
// chown of any layer.
absl::StatusOr<std::vector<std::string>> IdmappedLayers(const std::vector<std::string>& layers,
                                                        int userns_fd, const std::string& dir);

// A fresh tmpfs (`options` such as "mode=1777,size=25%") on the object `target_fd` is.
absl::Status MountTmpfsOn(int target_fd, std::string_view options, std::string_view what);
// A recursive bind of the host's `source` onto `target_fd`, nosuid, nodev and, if asked,
// read-only (set on the detached copy before it is attached).
absl::Status BindOnto(const std::string& source, int target_fd, bool readonly,
                      std::string_view what);
// Attaches the detached mount `mnt_fd` (open_tree, fsmount) onto the object `target_fd` is.
absl::Status AttachOnto(int mnt_fd, int target_fd, std::string_view what);

}  // namespace rauha::shim
