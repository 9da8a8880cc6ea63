#include "rauha-shim/image_root.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "rauha-common/errors.h"
#include "rauha-common/open_in_root.h"
#include "rauha-common/strcat.h"
#include "rauha-common/userns.h"

namespace rauha::shim {
namespace {

absl::Status Errno(std::string_view what) { return ErrnoStatus(errno, what); }

// Gives `name` (in `dir_fd`; "" with AT_EMPTY_PATH: dir_fd itself) to `owner`; 0 leaves it.
absl::Status Own(int dir_fd, const char* name, uint32_t owner, std::string_view what) {
  if (owner == 0) return absl::OkStatus();
  int flags = AT_SYMLINK_NOFOLLOW | (*name == '\0' ? AT_EMPTY_PATH : 0);
  if (::fchownat(dir_fd, name, owner, owner, flags) < 0) {
    return Errno(StrCat("chown ", what, " to the zone's root (host id ", owner, ")"));
  }
  return absl::OkStatus();
}

// Attaches the detached mount `mnt_fd` onto the object `target_fd` refers to.
absl::Status Attach(int mnt_fd, int target_fd, std::string_view what) {
  if (::move_mount(mnt_fd, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) <
      0) {
    return Errno(StrCat(what, ": move_mount"));
  }
  return absl::OkStatus();
}

absl::Status LegacyOverlay(const std::vector<std::string>& layers, const std::string& upper,
                           const std::string& work, const std::string& target,
                           bool volatile_upper) {
  std::string data = "lowerdir=";
  for (size_t i = 0; i < layers.size(); ++i) data += (i ? ":" : "") + layers[i];
  data += StrCat(",upperdir=", upper, ",workdir=", work);
  if (data.size() >= 4096 - sizeof(",volatile")) {
    return absl::FailedPreconditionError(
        StrCat("mount the image's overlay: ", layers.size(),
               " layers do not fit overlayfs's option page on this kernel (no lowerdir+)"));
  }
  if (volatile_upper && ::mount("rauha-image", target.c_str(), "overlay", MS_NOSUID | MS_NODEV,
                                (data + ",volatile").c_str()) == 0) {
    return absl::OkStatus();
  }
  // No "volatile" before 5.10: the upper is synced, which costs time only.
  if (::mount("rauha-image", target.c_str(), "overlay", MS_NOSUID | MS_NODEV, data.c_str()) < 0) {
    return Errno("mount the image's overlay");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status MountImageOverlay(const std::vector<std::string>& layers, const std::string& upper,
                               const std::string& work, const std::string& target,
                               bool volatile_upper) {
  if (layers.empty()) return absl::InvalidArgumentError("an image root needs at least one layer");
  UniqueFd fs(::fsopen("overlay", FSOPEN_CLOEXEC));
  if (!fs) return Errno("fsopen overlay");
  // "lowerdir+" (Linux 6.8) takes one layer per call: no option-page limit on layer count.
  if (::fsconfig(fs.get(), FSCONFIG_SET_STRING, "lowerdir+", layers[0].c_str(), 0) < 0) {
    if (errno == EINVAL) return LegacyOverlay(layers, upper, work, target, volatile_upper);
    return Errno(StrCat("overlay lowerdir+ ", layers[0]));
  }
  for (size_t i = 1; i < layers.size(); ++i) {
    if (::fsconfig(fs.get(), FSCONFIG_SET_STRING, "lowerdir+", layers[i].c_str(), 0) < 0) {
      return Errno(StrCat("overlay lowerdir+ ", layers[i]));
    }
  }
  if (::fsconfig(fs.get(), FSCONFIG_SET_STRING, "upperdir", upper.c_str(), 0) < 0 ||
      ::fsconfig(fs.get(), FSCONFIG_SET_STRING, "workdir", work.c_str(), 0) < 0 ||
      ::fsconfig(fs.get(), FSCONFIG_SET_STRING, "source", "rauha-image", 0) < 0) {
    return Errno("overlay upperdir/workdir");
  }
  // No "volatile" before 5.10 (EINVAL): the upper is synced, which costs time only.
  if (volatile_upper && ::fsconfig(fs.get(), FSCONFIG_SET_FLAG, "volatile", nullptr, 0) < 0 &&
      errno != EINVAL) {
    return Errno("overlay volatile");
  }
  if (::fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0) {
    return Errno("create the image's overlay");
  }
  UniqueFd mnt(::fsmount(fs.get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV));
  if (!mnt) return Errno("fsmount the image's overlay");
  if (::move_mount(mnt.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0) {
    return Errno(StrCat("attach the image's overlay at ", target));
  }
  return absl::OkStatus();
}

absl::Status PrepareImageTopDirs(int root_fd, uint32_t owner) {
  for (const char* name : {"proc", "dev", "tmp", "etc"}) {
    struct stat st;
    if (::fstatat(root_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      if (S_ISDIR(st.st_mode)) continue;
      if (::unlinkat(root_fd, name, 0) < 0) return Errno(StrCat("replace the image's /", name));
    } else if (errno != ENOENT) {
      return Errno(StrCat("stat the image's /", name));
    }
    if (::mkdirat(root_fd, name, 0755) < 0) return Errno(StrCat("mkdir /", name));
    RAUHA_RETURN_IF_ERROR(Own(root_fd, name, owner, StrCat("/", name)));
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> OpenImagePath(int root_fd, std::string_view task_path, bool is_dir,
                                       uint32_t owner) {
  UniqueFd cur(OpenInRoot(root_fd, "/", O_PATH | O_DIRECTORY, true));
  if (!cur) return Errno("open the image root");
  std::string prefix;
  size_t pos = 0;
  while (pos < task_path.size()) {
    size_t end = task_path.find('/', pos);
    if (end == std::string_view::npos) end = task_path.size();
    std::string part(task_path.substr(pos, end - pos));
    pos = end + 1;
    if (part.empty()) continue;
    prefix += "/" + part;
    bool last = pos > task_path.size();
    bool want_dir = !last || is_dir;
    UniqueFd next(OpenInRoot(root_fd, prefix.c_str(), O_PATH | (want_dir ? O_DIRECTORY : 0), true));
    if (!next && errno == ENOENT) {
      // Created relative to the resolved parent: never through a symlink of the image.
      if (want_dir) {
        if (::mkdirat(cur.get(), part.c_str(), 0755) < 0) {
          if (errno != EEXIST) return Errno(StrCat("mkdir ", prefix));
        } else {
          RAUHA_RETURN_IF_ERROR(Own(cur.get(), part.c_str(), owner, prefix));
        }
      } else {
        UniqueFd created(
            ::openat(cur.get(), part.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
        if (!created) return Errno(StrCat("create ", prefix));
        RAUHA_RETURN_IF_ERROR(Own(created.get(), "", owner, prefix));
      }
      next.reset(OpenInRoot(root_fd, prefix.c_str(), O_PATH | (want_dir ? O_DIRECTORY : 0), true));
    }
    if (!next) return Errno(StrCat("open ", prefix, " in the image"));
    cur = std::move(next);
  }
  return cur;
}

absl::Status WriteImageEtcFile(int root_fd, const char* name, std::string_view content,
                               uint32_t owner) {
  UniqueFd etc(::openat(root_fd, "etc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!etc) return Errno("open the image's /etc");
  if (::unlinkat(etc.get(), name, 0) < 0 && errno != ENOENT) {
    return Errno(StrCat("replace /etc/", name));
  }
  UniqueFd fd(
      ::openat(etc.get(), name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!fd) return Errno(StrCat("create /etc/", name));
  RAUHA_RETURN_IF_ERROR(Own(fd.get(), "", owner, StrCat("/etc/", name)));
  while (!content.empty()) {
    ssize_t n = ::write(fd.get(), content.data(), content.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Errno(StrCat("write /etc/", name));
    content.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status MountTmpfsOn(int target_fd, std::string_view options, std::string_view what) {
  UniqueFd fs(::fsopen("tmpfs", FSOPEN_CLOEXEC));
  if (!fs) return Errno(StrCat(what, ": fsopen tmpfs"));
  size_t pos = 0;
  while (pos < options.size()) {
    size_t end = options.find(',', pos);
    if (end == std::string_view::npos) end = options.size();
    std::string opt(options.substr(pos, end - pos));
    pos = end + 1;
    size_t eq = opt.find('=');
    std::string key = opt.substr(0, eq), value = eq == std::string::npos ? "" : opt.substr(eq + 1);
    if (::fsconfig(fs.get(), FSCONFIG_SET_STRING, key.c_str(), value.c_str(), 0) < 0) {
      return Errno(StrCat(what, ": tmpfs option ", opt));
    }
  }
  if (::fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0) {
    return Errno(StrCat(what, ": create tmpfs"));
  }
  UniqueFd mnt(::fsmount(fs.get(), FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV));
  if (!mnt) return Errno(StrCat(what, ": fsmount"));
  return Attach(mnt.get(), target_fd, what);
}

absl::Status BindOnto(const std::string& source, int target_fd, bool readonly,
                      std::string_view what) {
  UniqueFd tree(
      ::open_tree(AT_FDCWD, source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
  if (!tree) return Errno(StrCat(what, ": open_tree"));
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (readonly ? MOUNT_ATTR_RDONLY : 0);
  if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
    return Errno(StrCat(what, ": mount_setattr"));
  }
  return Attach(tree.get(), target_fd, what);
}

}  // namespace rauha::shim

namespace rauha::shim {

absl::Status AttachOnto(int mnt_fd, int target_fd, std::string_view what) {
  return Attach(mnt_fd, target_fd, what);
}

LayerParents LayerParentsOf(const std::vector<std::string>& layers) {
  LayerParents out;
  out.layers.reserve(layers.size());
  for (const std::string& layer : layers) {
    size_t slash = layer.rfind('/');
    std::string parent = slash == 0 || slash == std::string::npos ? layer : layer.substr(0, slash);
    std::string leaf = parent == layer ? "" : layer.substr(slash);
    auto it = std::find(out.dirs.begin(), out.dirs.end(), parent);
    if (it == out.dirs.end()) it = out.dirs.insert(out.dirs.end(), parent);
    out.layers.emplace_back(static_cast<size_t>(it - out.dirs.begin()), std::move(leaf));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> IdmappedLayers(const std::vector<std::string>& layers,
                                                        int userns_fd, const std::string& dir) {
  // One idmapped mount per directory holding layers (rauhad's layer cache holds them all),
  // not one per layer: each mount costs ~70 us to make and to tear down. overlayfs keeps a
  // private clone rooted at each lower layer, so the rest of that directory is not reachable
  // through the task's root.
  LayerParents parents = LayerParentsOf(layers);
  for (size_t i = 0; i < parents.dirs.size(); ++i) {
    const std::string& parent = parents.dirs[i];
    std::string at = StrCat(dir, "/", i);
    if (::mkdir(at.c_str(), 0700) < 0) return Errno(StrCat("mkdir ", at));
    auto tree = IdmappedTree(AT_FDCWD, parent, userns_fd,
                             MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
    if (!tree.ok()) {
      return Annotate(tree.status(),
                      StrCat("idmap the image layers in ", parent,
                             " (their filesystem must support idmapped mounts; or run the "
                             "zone with [zone] userns = false)"));
    }
    if (::move_mount(tree->get(), "", AT_FDCWD, at.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0) {
      return Errno(StrCat("attach the idmapped image layers of ", parent, " at ", at));
    }
  }
  std::vector<std::string> out;
  out.reserve(layers.size());
  for (const auto& [index, leaf] : parents.layers) out.push_back(StrCat(dir, "/", index, leaf));
  return out;
}

}  // namespace rauha::shim
