#include "rauhad/process_mounts.h"

#include <sys/stat.h>

#include "rauha-common/errors.h"
#include "rauha-common/path_open.h"
#include "rauha-common/strcat.h"

namespace rauha {
namespace {

bool IsUnder(std::string_view path, std::string_view dir) {
  return path == dir ||
         (path.starts_with(dir) && path.size() > dir.size() && path[dir.size()] == '/');
}

// Where a spec may bind: anywhere in the root but on "/" itself, /proc and /sys (the zone's
// own), and /dev other than /dev/shm (the zone's device list decides what is in /dev).
absl::Status CheckDestination(const std::string& field, const std::string& dest) {
  if (!IsNormalAbsolutePath(dest) || dest == "/") {
    return absl::InvalidArgumentError(
        StrCat(field, ".destination \"", dest,
               "\" must be an absolute path without '.', '..' or empty components, not \"/\""));
  }
  if (IsUnder(dest, "/proc") || IsUnder(dest, "/sys") ||
      (IsUnder(dest, "/dev") && dest != "/dev/shm")) {
    return absl::InvalidArgumentError(
        StrCat(field, ".destination ", dest,
               ": the zone makes its own /proc, /sys and /dev (only /dev/shm may be bound)"));
  }
  return absl::OkStatus();
}

constexpr char kTerminationLog[] = "/dev/termination-log";

// The source of a runtime mount, opened without following a symlink: what it is (the shim pins
// it by device and inode).
absl::StatusOr<struct stat> StatSource(const std::string& field,
                                       const rauha::process::v1::ProcessMount& m) {
  if (!IsNormalAbsolutePath(m.source())) {
    return absl::InvalidArgumentError(
        StrCat(field, ".source \"", m.source(), "\" must be an absolute path without '.' or '..'"));
  }
  auto fd = OpenNoSymlinks(m.source());
  if (!fd.ok()) return Annotate(fd.status(), StrCat(field, ".source"));
  struct stat st;
  if (::fstat(fd->get(), &st) < 0) return ErrnoStatus(errno, StrCat("fstat ", m.source()));
  return st;
}

// Kubelet's termination message file: a regular file of one link (a hard link to anything
// else would make that writable), opened without following a symlink and pinned.
absl::StatusOr<shim::Mount> TerminationLogMount(const std::string& field,
                                                const rauha::process::v1::ProcessMount& m) {
  if (m.destination() != kTerminationLog) {
    return absl::InvalidArgumentError(StrCat(field, ".destination \"", m.destination(),
                                             "\": termination_log binds only at ",
                                             kTerminationLog));
  }
  absl::StatusOr<struct stat> source = StatSource(field, m);
  if (!source.ok()) return source.status();
  const struct stat& st = *source;
  if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
    return absl::InvalidArgumentError(
        StrCat(field, ".source ", m.source(),
               " must be a regular file with one link to be the termination log (it is ",
               S_ISREG(st.st_mode) ? StrCat("a file with ", st.st_nlink, " links")
                                   : std::string("not a regular file"),
               ")"));
  }
  return shim::Mount{m.source(), m.destination(), m.readonly(), static_cast<uint64_t>(st.st_dev),
                     static_cast<uint64_t>(st.st_ino)};
}

absl::StatusOr<shim::Mount> RuntimeStateMount(const std::string& field,
                                              const rauha::process::v1::ProcessMount& m) {
  absl::StatusOr<struct stat> source = StatSource(field, m);
  if (!source.ok()) return source.status();
  const struct stat& st = *source;
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        StrCat(field, ".source ", m.source(), " is neither a regular file nor a directory"));
  }
  if (m.destination() == "/dev/shm" && !S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        StrCat(field, ".source ", m.source(), " must be a directory to be bound at /dev/shm"));
  }
  return shim::Mount{m.source(), m.destination(), m.readonly(), static_cast<uint64_t>(st.st_dev),
                     static_cast<uint64_t>(st.st_ino)};
}

}  // namespace

absl::StatusOr<std::vector<shim::Mount>> ProcessMounts(
    const ZoneView& zone, const rauha::process::v1::StartProcessRequest& req,
    const HostPathRules& rules) {
  std::vector<shim::Mount> out;
  if (!req.mounts().empty() && !req.join_process().empty()) {
    return absl::InvalidArgumentError(
        "mounts: an exec joins its process's root, which has its mounts already");
  }
  for (int i = 0; i < req.mounts_size(); ++i) {
    const auto& m = req.mounts(i);
    std::string field = StrCat("mounts[", i, "]");
    if (m.termination_log()) {
      RAUHA_ASSIGN_OR_RETURN(shim::Mount mount, TerminationLogMount(field, m));
      out.push_back(std::move(mount));
      continue;
    }
    RAUHA_RETURN_IF_ERROR(CheckDestination(field, m.destination()));
    if (m.runtime_state()) {
      RAUHA_ASSIGN_OR_RETURN(shim::Mount mount, RuntimeStateMount(field, m));
      out.push_back(std::move(mount));
      continue;
    }
    std::string source_field = StrCat(field, ".source");
    auto opened = zone.zone_type == policy::ZoneType::kPrivileged
                      ? OpenDirectoryForPrivilegedZone(source_field, m.source())
                      : OpenExposableDirectory(source_field, m.source(), rules);
    if (!opened.ok()) return opened.status();
    out.push_back(
        {opened->path, m.destination(), m.readonly(), opened->identity.dev, opened->identity.ino});
  }
  return out;
}

}  // namespace rauha
