#include "rauha-shim/rootfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <string>
#include <string_view>

#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/path_open.h"
#include "rauha-common/strcat.h"
#include "rauha-common/userns.h"
#include "rauha-shim/child.h"
#include "rauha-shim/image_root.h"

namespace rauha::shim {
namespace {

// /etc entries a workload may need to run programs (users, libraries, TLS roots, time zone,
// name service configuration). Secrets (shadow, gshadow, ssh*, sudoers, machine-id) are not
// here, and neither is anything else.
constexpr std::string_view kEtcAllowed[] = {
    "passwd",      "group",           "nsswitch.conf",
    "ld.so.cache", "ld.so.conf",      "ld.so.conf.d",
    "localtime",   "timezone",        "alternatives",
    "ssl",         "ca-certificates", "ca-certificates.conf",
    "os-release",  "debian_version",  "profile",
    "profile.d",   "bash.bashrc",     "inputrc",
    "mime.types",  "protocols",       "services",
    "host.conf",   "gai.conf",        "locale.alias",
    "perl",        "magic",           "magic.mime",
    "login.defs",  "shells",
};

bool EtcAllowed(std::string_view name) {
  if (name.starts_with("python3")) return true;
  return std::find(std::begin(kEtcAllowed), std::end(kEtcAllowed), name) != std::end(kEtcAllowed);
}

absl::Status Errno(std::string_view what) { return ErrnoStatus(errno, what); }

class RootBuilder {
 public:
  // `pivoted`: the calling process's root is already the task's (FinishRootAhead), so task
  // paths are used as they are.
  RootBuilder(const TaskPlan& plan, int userns_fd, const std::vector<int>& mount_idmap,
              bool pivoted = false)
      : plan_(plan),
        base_(plan.rootfs_dir),
        root_(pivoted ? std::string() : StrCat(plan.rootfs_dir, "/root")),
        image_(!plan.image_layers.empty() || !plan.image_root.empty()),
        userns_fd_(userns_fd),
        mount_idmap_(mount_idmap) {}

  absl::Status Build() {
    RAUHA_RETURN_IF_ERROR(BuildBase());
    RAUHA_RETURN_IF_ERROR(Mounts());
    MarkChildStep("root_tmp_mounts");
    if (image_) {
      // The image's WorkingDir may be missing; it is made in the task's upper layer.
      RAUHA_ASSIGN_OR_RETURN(UniqueFd workdir, OpenInImage(plan_.workdir, true));
      root_fd_.reset();
    }
    RAUHA_RETURN_IF_ERROR(Pivot());
    return Seal();
  }

  // Build without the mounts and the seal: what a prepared task process builds ahead.
  absl::Status BuildAhead() {
    if (image_ || !plan_.mounts.empty()) {
      return absl::InvalidArgumentError("a root built ahead has no image and no mounts");
    }
    RAUHA_RETURN_IF_ERROR(BuildBase());
    return Pivot();
  }

  // In a root BuildAhead made (the caller's root): plan_.mounts from `trees`, detached copies
  // of their sources with their final flags (MountTreeFor, root_ahead.h); then the seal.
  absl::Status FinishAhead(const std::vector<int>& trees, const std::vector<int>& layer_trees) {
    if (trees.size() != plan_.mounts.size()) {
      return absl::InternalError("the mounts' trees do not match the task's mounts");
    }
    if (image_) return FinishAheadOnImage(trees, layer_trees);
    for (size_t i = 0; i < plan_.mounts.size(); ++i) {
      const PlannedMount& m = plan_.mounts[i];
      RAUHA_RETURN_IF_ERROR(CreateTarget(m));
      RAUHA_RETURN_IF_ERROR(
          Attach(trees[i], In(m.target), StrCat("bind ", m.source, " at ", m.target)));
    }
    MarkChildStep("root_mounts");
    return Seal();
  }

 private:
  // FinishAhead for a task on an image with a private upper (ImageRootAheadServes): its root
  // is made in a directory of the root built ahead (the caller's, still writable), which it
  // then replaces.
  absl::Status FinishAheadOnImage(const std::vector<int>& trees,
                                  const std::vector<int>& layer_trees) {
    // Below the root built ahead: gone with it at the pivot (the overlay holds its own clones
    // of the layers' mounts and of the upper's tmpfs).
    const std::string stage = "/.rauha-image";
    LayerParents parents = LayerParentsOf(plan_.image_layers);
    if (layer_trees.size() != parents.dirs.size()) {
      return absl::InternalError("the layers' trees do not match the image's layer directories");
    }
    if (::mkdir(stage.c_str(), 0700) < 0) return Errno(StrCat("mkdir ", stage));
    for (size_t i = 0; i < layer_trees.size(); ++i) {
      std::string at = StrCat(stage, "/", i);
      if (::mkdir(at.c_str(), 0700) < 0) return Errno(StrCat("mkdir ", at));
      RAUHA_RETURN_IF_ERROR(
          Attach(layer_trees[i], at, StrCat("attach the image layers of ", parents.dirs[i])));
    }
    std::vector<std::string> lowers;
    for (const auto& [index, leaf] : parents.layers)
      lowers.push_back(StrCat(stage, "/", index, leaf));
    const std::string upper = stage + "/upper", work = stage + "/work";
    root_ = stage + "/root";
    for (const std::string& d : {upper, work, root_}) {
      if (::mkdir(d.c_str(), 0755) < 0) return Errno(StrCat("mkdir ", d));
    }
    // As Setup's: the overlay's "/" belongs to the zone's root, so that it may write there.
    if (userns_fd_ >= 0 && ::chown(upper.c_str(), plan_.userns_first, plan_.userns_first) < 0) {
      return Errno(StrCat("chown ", upper, " to the zone's root"));
    }
    RAUHA_RETURN_IF_ERROR(MountImageOverlay(lowers, upper, work, root_));
    root_fd_.reset(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root_fd_) return Errno(StrCat("open ", root_));
    RAUHA_RETURN_IF_ERROR(PrepareImageTopDirs(root_fd_.get(), Owner()));
    MarkChildStep("root_setup");
    // The root built ahead's /proc, /dev and /tmp, with what is mounted below them, are what
    // Proc, Dev and Tmp would make here (ImageRootAheadServes): moved onto the image's real
    // directories (PrepareImageTopDirs), never through anything of the image's.
    for (const char* dir : {"proc", "dev", "tmp"}) {
      UniqueFd at(::openat(root_fd_.get(), dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!at) return Errno(StrCat("open the image's /", dir));
      if (::syscall(SYS_move_mount, AT_FDCWD, StrCat("/", dir).c_str(), at.get(), "",
                    MOVE_MOUNT_T_EMPTY_PATH) < 0) {
        return Errno(StrCat("move /", dir, " onto the image's root"));
      }
    }
    MarkChildStep("root_moved");
    RAUHA_RETURN_IF_ERROR(Etc());
    MarkChildStep("root_etc");
    RAUHA_RETURN_IF_ERROR(WritablePaths());
    for (size_t i = 0; i < plan_.mounts.size(); ++i) {
      const PlannedMount& m = plan_.mounts[i];
      RAUHA_ASSIGN_OR_RETURN(UniqueFd at, OpenInImage(m.target, m.is_dir));
      RAUHA_RETURN_IF_ERROR(
          AttachOnto(trees[i], at.get(), StrCat("bind ", m.source, " at ", m.target)));
    }
    // The image's WorkingDir may be missing; it is made in the task's upper layer.
    RAUHA_ASSIGN_OR_RETURN(UniqueFd workdir, OpenInImage(plan_.workdir, true));
    root_fd_.reset();
    MarkChildStep("root_mounts");
    RAUHA_RETURN_IF_ERROR(Pivot());
    return Seal();
  }

  // Everything but plan_.mounts, in the new root's directory.
  absl::Status BuildBase() {
    RAUHA_RETURN_IF_ERROR(Setup());
    MarkChildStep("root_setup");
    RAUHA_RETURN_IF_ERROR(SystemDirs());
    MarkChildStep("root_system_dirs");
    RAUHA_RETURN_IF_ERROR(Etc());
    MarkChildStep("root_etc");
    RAUHA_RETURN_IF_ERROR(Proc());
    MarkChildStep("root_proc");
    RAUHA_RETURN_IF_ERROR(Dev());
    MarkChildStep("root_dev");
    RAUHA_RETURN_IF_ERROR(Tmp());
    return WritablePaths();
  }

  std::string In(std::string_view task_path) const { return StrCat(root_, task_path); }

  // A containerd root bound idmapped through the zone's namespace (not an image's overlay).
  bool IdmappedRoot() const { return userns_fd_ >= 0 && !plan_.image_root.empty(); }
  // The host id that owns what the shim creates in an image's overlay: the zone's root's, or
  // 0. (On an idmapped root it is created with that id instead: CreatingAs.)
  uint32_t Owner() const { return userns_fd_ >= 0 && !IdmappedRoot() ? plan_.userns_first : 0; }

  // While it lives, what this process creates is created by the zone's root's host id
  // (fsuid/fsgid) if the root is idmapped: the kernel refuses to create a file on an idmapped
  // mount for an id its namespace does not map (EOVERFLOW), which the host's root is. Through
  // the idmap it is stored as disk id 0. The kernel drops the file capabilities from the
  // effective set while fsuid is not 0 and raises them again after.
  class CreatingAs {
   public:
    explicit CreatingAs(uint32_t id) : id_(id) {
      if (id_ == 0) return;
      ::setfsgid(id_);
      ::setfsuid(id_);
    }
    ~CreatingAs() {
      if (id_ == 0) return;
      ::setfsuid(0);
      ::setfsgid(0);
    }
    CreatingAs(const CreatingAs&) = delete;
    CreatingAs& operator=(const CreatingAs&) = delete;

   private:
    uint32_t id_;
  };
  uint32_t CreatorId() const { return IdmappedRoot() ? plan_.userns_first : 0; }

  // OpenImagePath in the task's root, as whoever creates in it.
  absl::StatusOr<UniqueFd> OpenInImage(std::string_view task_path, bool is_dir) {
    CreatingAs as(CreatorId());
    return OpenImagePath(root_fd_.get(), task_path, is_dir, Owner());
  }

  // tmpfs options; in a zone with a user namespace its root directory belongs to the zone's
  // root (the options' ids are host ids).
  std::string TmpfsData(std::string_view options) const {
    if (userns_fd_ < 0) return std::string(options);
    return StrCat(options, ",uid=", plan_.userns_first, ",gid=", plan_.userns_first);
  }

  // Attaches a detached mount tree (open_tree) at `target`.
  absl::Status Attach(int tree, const std::string& target, std::string_view what) {
    if (::syscall(SYS_move_mount, tree, "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) <
        0) {
      return Errno(what);
    }
    return absl::OkStatus();
  }

  // A top-level directory of the root: with an image it may already be there (a real
  // directory: PrepareImageTopDirs).
  absl::Status MkdirTop(std::string_view task_path, mode_t mode) {
    if (::mkdir(In(task_path).c_str(), mode) < 0 && !(image_ && errno == EEXIST)) {
      return Errno(StrCat("mkdir ", task_path));
    }
    return absl::OkStatus();
  }

  // A read-only, idmapped (through the zone's user namespace) copy of host `source` at
  // `target`: files of host id N appear as the zone's id N.
  absl::Status BindIdmapped(const std::string& source, const std::string& target, bool readonly,
                            std::string_view what) {
    auto tree =
        IdmappedTree(AT_FDCWD, source, userns_fd_,
                     MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (readonly ? MOUNT_ATTR_RDONLY : 0));
    if (!tree.ok()) return Annotate(tree.status(), what);
    return Attach(tree->get(), target, what);
  }

  absl::Status Mount(const char* source, const std::string& target, const char* type,
                     unsigned long flags, const char* data, std::string_view what) {
    if (::mount(source, target.c_str(), type, flags, data) < 0) return Errno(what);
    return absl::OkStatus();
  }

  // Sets nosuid, nodev and, if asked, read-only on the mount at `path` (and, if `recursive`,
  // on every mount below it). Old kernels lack mount_setattr: a bind remount then keeps the
  // flags statvfs reports, since the kernel refuses to clear locked ones.
  absl::Status Restrict(const std::string& path, bool readonly, bool recursive,
                        std::string_view what) {
    mount_attr attr{};
    attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (readonly ? MOUNT_ATTR_RDONLY : 0);
    if (::mount_setattr(AT_FDCWD, path.c_str(), recursive ? AT_RECURSIVE : 0, &attr,
                        sizeof(attr)) == 0) {
      return absl::OkStatus();
    }
    if (errno != ENOSYS) return Errno(what);
    struct statvfs sv;
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | (readonly ? MS_RDONLY : 0);
    if (::statvfs(path.c_str(), &sv) == 0) {
      if (sv.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
      if (sv.f_flag & ST_NOATIME) flags |= MS_NOATIME;
      if (sv.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
      if (sv.f_flag & ST_RELATIME) flags |= MS_RELATIME;
    }
    return Mount("", path, nullptr, flags, nullptr, what);
  }

  absl::Status BindReadOnly(const std::string& host, const std::string& task_path, bool dir) {
    std::string target = In(task_path);
    if (dir) {
      if (::mkdir(target.c_str(), 0755) < 0 && errno != EEXIST) {
        return Errno(StrCat("mkdir ", task_path));
      }
    } else {
      RAUHA_RETURN_IF_ERROR(Touch(target, task_path));
    }
    if (userns_fd_ >= 0) {
      return BindIdmapped(host, target, true,
                          StrCat("bind ", host, " at ", task_path, " idmapped"));
    }
    RAUHA_RETURN_IF_ERROR(Mount(host.c_str(), target, nullptr, MS_BIND | MS_REC, nullptr,
                                StrCat("bind ", host, " at ", task_path)));
    return Restrict(target, true, true, StrCat("bind ", task_path, " read-only"));
  }

  absl::Status Touch(const std::string& path, std::string_view task_path) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd) return Errno(StrCat("create ", task_path));
    return absl::OkStatus();
  }

  // mkdir -p of a path inside the root. Every component must be a tmpfs the shim made (or a
  // mount of the spec): the planner never sends a path through a host system directory.
  absl::Status MkdirAll(std::string_view task_path, mode_t mode) {
    for (size_t pos = 1; pos <= task_path.size(); ++pos) {
      if (pos != task_path.size() && task_path[pos] != '/') continue;
      std::string sub = In(task_path.substr(0, pos));
      if (::mkdir(sub.c_str(), mode) < 0 && errno != EEXIST) {
        return Errno(StrCat("mkdir ", task_path.substr(0, pos)));
      }
    }
    return absl::OkStatus();
  }

  absl::Status WriteFile(std::string_view task_path, std::string_view content) {
    std::string path = In(task_path);
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd) return Errno(StrCat("create ", task_path));
    while (!content.empty()) {
      ssize_t n = ::write(fd.get(), content.data(), content.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Errno(StrCat("write ", task_path));
      content.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }

  absl::Status CopySymlink(const std::string& host, std::string_view task_path) {
    char target[PATH_MAX];
    ssize_t n = ::readlink(host.c_str(), target, sizeof(target) - 1);
    if (n < 0) return Errno(StrCat("readlink ", host));
    target[n] = '\0';
    if (::symlink(target, In(task_path).c_str()) < 0) return Errno(StrCat("symlink ", task_path));
    return absl::OkStatus();
  }

  // A view of a host directory whose writes land in a tmpfs and vanish with the task.
  absl::Status Overlay(const std::string& host_dir) {
    std::string scratch = StrCat(base_, "/scratch/", overlays_++);
    std::string upper = scratch + "/upper", work = scratch + "/work";
    for (const std::string& d : {scratch, upper, work}) {
      if (::mkdir(d.c_str(), 0755) < 0) return Errno(StrCat("mkdir ", d));
    }
    for (const std::string& p : {host_dir, upper}) {
      if (p.find_first_of(",:\\") != std::string::npos) {
        return absl::InvalidArgumentError(
            StrCat("overlay on ", host_dir, ": path ", p, " holds ',', ':' or '\\'"));
      }
    }
    std::string target = In(host_dir);
    if (::mkdir(target.c_str(), 0755) < 0 && errno != EEXIST) {
      return Errno(StrCat("mkdir ", host_dir));
    }
    std::string lower = host_dir;
    if (userns_fd_ >= 0) {
      // overlayfs takes idmapped lower layers (5.19+): the host's files keep showing as the
      // zone's root's, and copies up belong to the zone's ids.
      lower = scratch + "/lower";
      if (::mkdir(lower.c_str(), 0755) < 0) return Errno(StrCat("mkdir ", lower));
      RAUHA_RETURN_IF_ERROR(
          BindIdmapped(host_dir, lower, true, StrCat("idmapped lower layer of ", host_dir)));
      if (::chown(upper.c_str(), plan_.userns_first, plan_.userns_first) < 0) {
        return Errno(StrCat("chown ", upper));
      }
    }
    std::string data = StrCat("lowerdir=", lower, ",upperdir=", upper, ",workdir=", work);
    return Mount("overlay", target, "overlay", MS_NOSUID | MS_NODEV, data.c_str(),
                 StrCat("mount writable overlay on ", host_dir));
  }

  bool IsOverlay(std::string_view path) const {
    return std::find(plan_.overlay_dirs.begin(), plan_.overlay_dirs.end(), path) !=
           plan_.overlay_dirs.end();
  }

  absl::Status Setup() {
    // A shared "/" would propagate every mount below back to the host.
    RAUHA_RETURN_IF_ERROR(Mount("", "/", nullptr, MS_REC | MS_PRIVATE, nullptr,
                                "make / private (mount --make-rprivate)"));
    RAUHA_RETURN_IF_ERROR(Mount("rauha-scratch", base_, "tmpfs", MS_NOSUID | MS_NODEV,
                                "mode=0700,size=25%", StrCat("mount tmpfs on ", base_)));
    for (const std::string& d : {root_, StrCat(base_, "/scratch")}) {
      if (::mkdir(d.c_str(), 0700) < 0) return Errno(StrCat("mkdir ", d));
    }
    if (!plan_.image_root.empty()) {
      // A container's root that containerd mounted (its snapshot): writes stay in the
      // container's own layer, as with runc. From here on it is treated as an image's root.
      // In the zone's user namespace it is bound idmapped (task_plan.cc checked that it can
      // be): its root-owned files are the zone root's, and what the zone's root writes there
      // is stored as disk id 0, as a container runtime without user namespaces would.
      if (IdmappedRoot()) {
        std::string what = StrCat("bind the container root ", plan_.image_root, " idmapped");
        auto tree = IdmappedTree(AT_FDCWD, plan_.image_root, userns_fd_, 0);
        if (!tree.ok()) return Annotate(tree.status(), what);
        RAUHA_RETURN_IF_ERROR(Attach(tree->get(), root_, what));
      } else {
        RAUHA_RETURN_IF_ERROR(Mount(plan_.image_root.c_str(), root_, nullptr, MS_BIND | MS_REC,
                                    nullptr, StrCat("bind the container root ", plan_.image_root)));
      }
      root_fd_.reset(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      if (!root_fd_) return Errno(StrCat("open ", root_));
      CreatingAs as(CreatorId());
      return PrepareImageTopDirs(root_fd_.get());
    }
    if (image_) {
      // The task's writes to the image land on this tmpfs and vanish with the mount namespace,
      // unless it keeps an upper layer of its own on the host (a container's).
      const bool kept = !plan_.image_upper.empty();
      std::string upper_base = kept ? plan_.image_upper : base_;
      std::string upper = StrCat(upper_base, kept ? "/upper" : "/image-upper");
      std::string work = StrCat(upper_base, kept ? "/work" : "/image-work");
      if (kept && ::mkdir(upper_base.c_str(), 0700) < 0 && errno != EEXIST) {
        return Errno(StrCat("mkdir ", upper_base));
      }
      for (const std::string& d : {upper, work}) {
        if (::mkdir(d.c_str(), 0755) < 0 && !(kept && errno == EEXIST)) {
          return Errno(StrCat("mkdir ", d));
        }
      }
      std::vector<std::string> lowers = plan_.image_layers;
      if (userns_fd_ >= 0) {
        // overlayfs over idmapped lower layers (5.19+, probed by rauhad): the layers' files
        // show as the zone's ids (disk id N is the zone's id N), with no chown copy of any
        // layer. The upper layer is not idmapped: what the task writes is stored with host
        // ids (the zone's root's is userns_first), and its root directory, which is the
        // overlay's "/", belongs to the zone's root so that the zone's root may write there.
        std::string lower_dir = StrCat(base_, "/image-lower");
        if (::mkdir(lower_dir.c_str(), 0700) < 0) return Errno(StrCat("mkdir ", lower_dir));
        RAUHA_ASSIGN_OR_RETURN(lowers, IdmappedLayers(plan_.image_layers, userns_fd_, lower_dir));
        if (::chown(upper.c_str(), plan_.userns_first, plan_.userns_first) < 0) {
          return Errno(StrCat("chown ", upper, " to the zone's root"));
        }
      }
      RAUHA_RETURN_IF_ERROR(
          MountImageOverlay(lowers, upper, work, root_, kept && plan_.image_upper_volatile));
      root_fd_.reset(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      if (!root_fd_) return Errno(StrCat("open ", root_));
      return PrepareImageTopDirs(root_fd_.get(), Owner());
    }
    // pivot_root needs the new root to be a mount point of its own.
    return Mount("rauha-root", root_, "tmpfs", MS_NOSUID | MS_NODEV,
                 TmpfsData("mode=0755,size=25%").c_str(), StrCat("mount tmpfs on ", root_));
  }

  absl::Status SystemDirs() {
    if (image_) return absl::OkStatus();  // the image has its own
    for (const char* dir : kSystemDirs) {
      struct stat st;
      if (::lstat(dir, &st) < 0) continue;
      if (S_ISLNK(st.st_mode)) {
        RAUHA_RETURN_IF_ERROR(CopySymlink(dir, dir));
      } else if (S_ISDIR(st.st_mode)) {
        if (plan_.root_writable || IsOverlay(dir)) {
          RAUHA_RETURN_IF_ERROR(Overlay(dir));
        } else {
          RAUHA_RETURN_IF_ERROR(BindReadOnly(dir, dir, true));
        }
      }
    }
    for (const auto& dir : plan_.overlay_dirs) {
      if (std::find(std::begin(kSystemDirs), std::end(kSystemDirs), dir) != std::end(kSystemDirs)) {
        continue;
      }
      RAUHA_RETURN_IF_ERROR(Overlay(dir));
    }
    return absl::OkStatus();
  }

  // /etc/ssl/private holds host keys: the directory is rebuilt without it.
  absl::Status EtcDirWithout(const std::string& view, std::string_view task_path,
                             std::string_view skip) {
    if (::mkdir(In(task_path).c_str(), 0755) < 0) return Errno(StrCat("mkdir ", task_path));
    DIR* dir = ::opendir(view.c_str());
    if (dir == nullptr) return Errno(StrCat("opendir ", task_path));
    absl::Status status;
    while (dirent* e = ::readdir(dir)) {
      std::string_view name = e->d_name;
      if (name == "." || name == ".." || name == skip) continue;
      status = EtcEntry(StrCat(view, "/", name), StrCat(task_path, "/", name));
      if (!status.ok()) break;
    }
    ::closedir(dir);
    return status;
  }

  // `view` is the entry in the read-only view of the host's /etc (HostEtc).
  absl::Status EtcEntry(const std::string& view, const std::string& task_path) {
    struct stat st;
    if (::lstat(view.c_str(), &st) < 0) return absl::OkStatus();
    if (S_ISLNK(st.st_mode)) return CopySymlink(view, task_path);
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) return absl::OkStatus();
    std::string target = In(task_path);
    if (S_ISDIR(st.st_mode)) {
      if (::mkdir(target.c_str(), 0755) < 0) return Errno(StrCat("mkdir ", task_path));
    } else {
      RAUHA_RETURN_IF_ERROR(Touch(target, task_path));
    }
    // A bind of the view keeps its flags (read-only, nosuid, nodev) and its idmap.
    return Mount(view.c_str(), target, nullptr, MS_BIND | MS_REC, nullptr,
                 StrCat("bind ", task_path, " read-only"));
  }

  absl::Status EtcFile(const char* name, std::string_view content) {
    if (image_) {
      CreatingAs as(CreatorId());
      return WriteImageEtcFile(root_fd_.get(), name, content, Owner());
    }
    return WriteFile(StrCat("/etc/", name), content);
  }

  absl::Status Etc() {
    if (!image_) RAUHA_RETURN_IF_ERROR(HostEtc());
    RAUHA_RETURN_IF_ERROR(EtcFile("hostname", StrCat(plan_.hostname, "\n")));
    RAUHA_RETURN_IF_ERROR(
        EtcFile("hosts", StrCat("127.0.0.1\tlocalhost\n::1\tlocalhost\n",
                                plan_.zone_address.empty() ? "127.0.1.1" : plan_.zone_address, "\t",
                                plan_.hostname, "\n")));
    std::string resolv =
        plan_.zone_address.empty()
            ? "# rauha: this zone's network is isolated; there is no DNS\n"
            : "# rauha: bridged zone network; no resolver is configured (allow one in the "
              "zone's [network] allowed_egress)\n";
    if (!plan_.isolated_network) {
      // The host's network: its resolver configuration is what works here.
      resolv = "# rauha: host network\n";
      UniqueFd fd(::open("/etc/resolv.conf", O_RDONLY | O_CLOEXEC));
      char buf[4096];
      ssize_t n = fd ? ::read(fd.get(), buf, sizeof(buf)) : -1;
      if (n > 0) resolv.append(buf, static_cast<size_t>(n));
    }
    return EtcFile("resolv.conf", resolv);
  }

  // The allowed entries of the host's /etc, each bound from one read-only view of it (idmapped
  // in a zone with a user namespace) in the scratch tmpfs, outside the new root: it goes with
  // the host's root at the pivot. One mount call per entry instead of an idmapped tree's three
  // (open_tree, mount_setattr, move_mount): ~30 entries, ~0.1 ms less (eval/bench/README.md).
  absl::Status HostEtc() {
    if (::mkdir(In("/etc").c_str(), 0755) < 0) return Errno("mkdir /etc");
    const std::string view = StrCat(base_, "/scratch/etc");
    if (::mkdir(view.c_str(), 0700) < 0) return Errno(StrCat("mkdir ", view));
    if (userns_fd_ >= 0) {
      RAUHA_RETURN_IF_ERROR(BindIdmapped("/etc", view, true, "bind /etc idmapped"));
    } else {
      RAUHA_RETURN_IF_ERROR(Mount("/etc", view, nullptr, MS_BIND | MS_REC, nullptr, "bind /etc"));
      RAUHA_RETURN_IF_ERROR(Restrict(view, true, true, "bind /etc read-only"));
    }
    DIR* dir = ::opendir(view.c_str());
    if (dir == nullptr) return Errno("opendir /etc");
    absl::Status status;
    while (dirent* e = ::readdir(dir)) {
      std::string_view name = e->d_name;
      if (!EtcAllowed(name)) continue;
      std::string entry = StrCat(view, "/", name), task_path = StrCat("/etc/", name);
      status =
          name == "ssl" ? EtcDirWithout(entry, task_path, "private") : EtcEntry(entry, task_path);
      if (!status.ok()) break;
    }
    ::closedir(dir);
    return status;
  }

  absl::Status Proc() {
    std::string proc = In("/proc");
    RAUHA_RETURN_IF_ERROR(MkdirTop("/proc", 0555));
    // The child is PID 1 of a new pid namespace: this procfs shows only the task's processes.
    RAUHA_RETURN_IF_ERROR(Mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr,
                                "mount proc on /proc"));
    for (const char* masked : {"kcore", "keys", "timer_list", "sched_debug"}) {
      std::string p = StrCat(proc, "/", masked);
      if (::access(p.c_str(), F_OK) < 0) continue;
      RAUHA_RETURN_IF_ERROR(
          Mount("/dev/null", p, nullptr, MS_BIND, nullptr, StrCat("mask /proc/", masked)));
    }
    for (const char* ro : {"sys", "sysrq-trigger", "irq", "bus", "fs"}) {
      std::string p = StrCat(proc, "/", ro);
      if (::access(p.c_str(), F_OK) < 0) continue;
      RAUHA_RETURN_IF_ERROR(
          Mount(p.c_str(), p, nullptr, MS_BIND | MS_REC, nullptr, StrCat("bind /proc/", ro)));
      RAUHA_RETURN_IF_ERROR(Restrict(p, true, true, StrCat("make /proc/", ro, " read-only")));
    }
    for (const char* empty : {"acpi", "scsi"}) {
      std::string p = StrCat(proc, "/", empty);
      if (::access(p.c_str(), F_OK) < 0) continue;
      RAUHA_RETURN_IF_ERROR(Mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                  nullptr, StrCat("mask /proc/", empty)));
    }
    return absl::OkStatus();
  }

  absl::Status Dev() {
    std::string dev = In("/dev");
    RAUHA_RETURN_IF_ERROR(MkdirTop("/dev", 0755));
    RAUHA_RETURN_IF_ERROR(Mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k",
                                "mount tmpfs on /dev"));
    for (const auto& d : plan_.devices) {
      RAUHA_RETURN_IF_ERROR(MkdirAll(d.substr(0, d.rfind('/')), 0755));
      std::string target = In(d);
      RAUHA_RETURN_IF_ERROR(Touch(target, d));
      RAUHA_RETURN_IF_ERROR(
          Mount(d.c_str(), target, nullptr, MS_BIND, nullptr, StrCat("bind ", d)));
    }
    // The file a termination log is bound on: made now, before /dev turns read-only.
    for (const auto& m : plan_.mounts) {
      if (m.target == kTerminationLogTarget && !m.is_dir) {
        RAUHA_RETURN_IF_ERROR(Touch(In(m.target), m.target));
      }
    }
    std::string pts = In("/dev/pts");
    if (::mkdir(pts.c_str(), 0755) < 0) return Errno("mkdir /dev/pts");
    if (::mount("devpts", pts.c_str(), "devpts", MS_NOSUID | MS_NOEXEC,
                "newinstance,ptmxmode=0666,mode=0620,gid=5") < 0) {
      // gid=5 (tty) is a convention some hosts do not follow.
      RAUHA_RETURN_IF_ERROR(Mount("devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC,
                                  "newinstance,ptmxmode=0666,mode=0620",
                                  "mount devpts on /dev/pts"));
    }
    std::string shm = In("/dev/shm");
    if (::mkdir(shm.c_str(), 01777) < 0) return Errno("mkdir /dev/shm");
    RAUHA_RETURN_IF_ERROR(Mount("shm", shm, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                TmpfsData("mode=1777,size=64m").c_str(),
                                "mount tmpfs on /dev/shm"));
    constexpr std::pair<const char*, const char*> kLinks[] = {
        {"pts/ptmx", "/dev/ptmx"},          {"/proc/self/fd", "/dev/fd"},
        {"/proc/self/fd/0", "/dev/stdin"},  {"/proc/self/fd/1", "/dev/stdout"},
        {"/proc/self/fd/2", "/dev/stderr"},
    };
    for (const auto& [target, link] : kLinks) {
      if (::symlink(target, In(link).c_str()) < 0) return Errno(StrCat("symlink ", link));
    }
    // Nothing may be created in /dev later; the device binds, pts and shm are their own mounts.
    return Restrict(dev, true, false, "make /dev read-only");
  }

  absl::Status Tmp() {
    std::string tmp = In("/tmp");
    RAUHA_RETURN_IF_ERROR(MkdirTop("/tmp", 01777));
    RAUHA_RETURN_IF_ERROR(Mount("tmpfs", tmp, "tmpfs", MS_NOSUID | MS_NODEV,
                                TmpfsData("mode=1777,size=25%").c_str(), "mount tmpfs on /tmp"));
    for (const auto& d : plan_.tmp_dirs) RAUHA_RETURN_IF_ERROR(MkdirAll(d, 01777));
    return absl::OkStatus();
  }

  absl::Status WritablePaths() {
    for (const auto& d : plan_.scratch_dirs) {
      if (image_) {
        RAUHA_ASSIGN_OR_RETURN(UniqueFd at, OpenInImage(d, true));
        RAUHA_RETURN_IF_ERROR(
            MountTmpfsOn(at.get(), TmpfsData("mode=1777,size=25%"), StrCat("mount tmpfs on ", d)));
        continue;
      }
      RAUHA_RETURN_IF_ERROR(MkdirAll(d, 0755));
      RAUHA_RETURN_IF_ERROR(Mount("tmpfs", In(d), "tmpfs", MS_NOSUID | MS_NODEV,
                                  TmpfsData("mode=1777,size=25%").c_str(),
                                  StrCat("mount tmpfs on ", d)));
    }
    return absl::OkStatus();
  }

  // The mount point of `m`, unless it is one the host's system directory has (m.create false).
  absl::Status CreateTarget(const PlannedMount& m) {
    if (!m.create) return absl::OkStatus();
    std::string target = In(m.target);
    RAUHA_RETURN_IF_ERROR(MkdirAll(m.target.substr(0, m.target.rfind('/')), 0755));
    if (m.is_dir) {
      if (::mkdir(target.c_str(), 0755) < 0 && errno != EEXIST) {
        return Errno(StrCat("mkdir ", m.target));
      }
      return absl::OkStatus();
    }
    struct stat st;
    if (::lstat(target.c_str(), &st) < 0) return Touch(target, m.target);
    return absl::OkStatus();
  }

  absl::Status Mounts() {
    for (size_t i = 0; i < plan_.mounts.size(); ++i) {
      const PlannedMount& m = plan_.mounts[i];
      int idmap = i < mount_idmap_.size() ? mount_idmap_[i] : -1;
      if (image_) {
        RAUHA_ASSIGN_OR_RETURN(UniqueFd at, OpenInImage(m.target, m.is_dir));
        std::string what = StrCat("bind ", m.source, " at ", m.target);
        if (idmap >= 0) {
          // As on the host view: the source's owner shows as the task's user.
          RAUHA_ASSIGN_OR_RETURN(UniqueFd tree, IdmappedMountTree(m, idmap, what));
          RAUHA_RETURN_IF_ERROR(AttachOnto(tree.get(), at.get(), what));
        } else if (m.pinned) {
          // The very directory rauhad checked, through its fd's magic link.
          RAUHA_ASSIGN_OR_RETURN(UniqueFd source, OpenPinned(m.source, *m.pinned));
          RAUHA_RETURN_IF_ERROR(
              BindOnto(StrCat("/proc/self/fd/", source.get()), at.get(), m.readonly, what));
        } else {
          RAUHA_RETURN_IF_ERROR(BindOnto(m.source, at.get(), m.readonly, what));
        }
        continue;
      }
      std::string target = In(m.target);
      RAUHA_RETURN_IF_ERROR(CreateTarget(m));
      if (m.pinned) {
        RAUHA_RETURN_IF_ERROR(BindPinned(m, target, idmap));
      } else if (idmap >= 0) {
        auto tree = IdmappedTree(AT_FDCWD, m.source, idmap, 0);
        if (!tree.ok()) return Annotate(tree.status(), StrCat("bind ", m.source, " at ", m.target));
        RAUHA_RETURN_IF_ERROR(Attach(tree->get(), target, StrCat("bind ", m.source)));
      } else {
        RAUHA_RETURN_IF_ERROR(Mount(m.source.c_str(), target, nullptr, MS_BIND | MS_REC, nullptr,
                                    StrCat("bind ", m.source, " at ", m.target)));
      }
      RAUHA_RETURN_IF_ERROR(
          Restrict(target, m.readonly, true, StrCat("set mount flags on ", m.target)));
    }
    return absl::OkStatus();
  }

  // A detached copy of mount `m`'s source idmapped through `idmap` (nosuid, nodev, read-only if
  // asked): of the very object rauhad checked if it is pinned, which must still have the
  // owner the idmap was made for.
  absl::StatusOr<UniqueFd> IdmappedMountTree(const PlannedMount& m, int idmap,
                                             std::string_view what) {
    const uint64_t attrs =
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (m.readonly ? MOUNT_ATTR_RDONLY : 0);
    if (!m.pinned) {
      auto tree = IdmappedTree(AT_FDCWD, m.source, idmap, attrs);
      if (!tree.ok()) return Annotate(tree.status(), what);
      return tree;
    }
    RAUHA_ASSIGN_OR_RETURN(UniqueFd source, OpenPinned(m.source, *m.pinned));
    struct stat st;
    if (::fstat(source.get(), &st) < 0) return Errno(StrCat("stat ", m.source));
    if (st.st_uid != m.owner_uid || st.st_gid != m.owner_gid) {
      return absl::FailedPreconditionError(
          StrCat(m.source, " changed owner while the task started; start it again"));
    }
    auto tree = IdmappedTree(source.get(), "", idmap, attrs);
    if (!tree.ok()) {
      return Annotate(tree.status(),
                      StrCat(what,
                             " idmapped (the filesystem must support idmapped mounts; "
                             "or run the zone with [zone] userns = false)"));
    }
    return tree;
  }

  // Binds the very directory rauhad checked: opened without following symlinks, compared by
  // identity, and mounted from the fd (open_tree), so no path is resolved a second time.
  absl::Status BindPinned(const PlannedMount& m, const std::string& target, int idmap) {
    RAUHA_ASSIGN_OR_RETURN(UniqueFd source, OpenPinned(m.source, *m.pinned));
    std::string what = StrCat("bind ", m.source, " at ", m.target);
    if (idmap >= 0) {
      // The idmap was made for the owner the shim saw; the pinned object must still have it.
      struct stat st;
      if (::fstat(source.get(), &st) < 0) return Errno(StrCat("stat ", m.source));
      if (st.st_uid != m.owner_uid || st.st_gid != m.owner_gid) {
        return absl::FailedPreconditionError(
            StrCat(m.source, " changed owner while the task started; start it again"));
      }
      auto tree = IdmappedTree(source.get(), "", idmap, 0);
      if (!tree.ok()) {
        return Annotate(tree.status(),
                        StrCat(what,
                               " idmapped (the filesystem must support idmapped mounts; "
                               "or run the zone with [zone] userns = false)"));
      }
      return Attach(tree->get(), target, what);
    }
    UniqueFd tree(static_cast<int>(
        ::syscall(SYS_open_tree, source.get(), "",
                  OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE)));
    if (tree) {
      if (::syscall(SYS_move_mount, tree.get(), "", AT_FDCWD, target.c_str(),
                    MOVE_MOUNT_F_EMPTY_PATH) < 0) {
        return Errno(what);
      }
      return absl::OkStatus();
    }
    if (errno != ENOSYS) return Errno(what);
    // Before 5.2: the fd's magic link names the opened directory itself.
    std::string by_fd = StrCat("/proc/self/fd/", source.get());
    return Mount(by_fd.c_str(), target, nullptr, MS_BIND | MS_REC, nullptr, what);
  }

  absl::Status Pivot() {
    if (::chdir(root_.c_str()) < 0) return Errno(StrCat("chdir ", root_));
    // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves
    // only the new root, with no directory needed to hold the old one.
    if (::syscall(SYS_pivot_root, ".", ".") < 0) return Errno("pivot_root");
    MarkChildStep("root_pivot");
    if (::umount2(".", MNT_DETACH) < 0) return Errno("detach the host's root");
    MarkChildStep("root_detach_host");
    if (::chdir("/") < 0) return Errno("chdir /");
    return absl::OkStatus();
  }

  // Last: nothing can be created in the root itself any more (the mount points are made).
  absl::Status Seal() {
    if (plan_.root_writable) return absl::OkStatus();
    return Restrict("/", true, false, "make / read-only");
  }

  const TaskPlan& plan_;
  std::string base_;
  std::string root_;
  bool image_;
  UniqueFd root_fd_;  // with an image: the overlay's root, for in-root resolution
  int userns_fd_;
  const std::vector<int>& mount_idmap_;
  int overlays_ = 0;
};

}  // namespace

absl::Status BuildRootAndPivot(const TaskPlan& plan, int userns_fd,
                               const std::vector<int>& mount_idmap) {
  return RootBuilder(plan, userns_fd, mount_idmap).Build();
}

absl::Status BuildRootAhead(const TaskPlan& base, int userns_fd) {
  static const std::vector<int> kNoIdmaps;
  return RootBuilder(base, userns_fd, kNoIdmaps).BuildAhead();
}

absl::Status FinishRootAhead(const TaskPlan& plan, const std::vector<int>& mount_trees,
                             const std::vector<int>& layer_trees, int userns_fd) {
  // Without an image, only mount points and the seal: nothing there is owned through the user
  // namespace.
  static const std::vector<int> kNoIdmaps;
  const bool image = !plan.image_layers.empty();
  return RootBuilder(plan, image ? userns_fd : -1, kNoIdmaps, /*pivoted=*/true)
      .FinishAhead(mount_trees, layer_trees);
}

}  // namespace rauha::shim
