#include "rauhad/host_path.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include "rauha-common/errors.h"
#include "rauha-common/names.h"
#include "rauha-common/strcat.h"

namespace rauha {
namespace {

// A zone never sees these, nor anything inside them, nor a directory holding one.
const std::vector<std::string_view> kSystemDirs = {
    "/proc",      "/sys",         "/dev",      "/etc",         "/boot",    "/efi",
    "/usr",       "/bin",         "/sbin",     "/lib",         "/lib32",   "/lib64",
    "/libx32",    "/run",         "/var/run",  "/var/lock",    "/var/lib", "/var/log",
    "/var/cache", "/var/spool",   "/var/mail", "/var/backups", "/snap",    "/lost+found",
    "/root/.ssh", "/root/.gnupg",
};

// Directories that hold other people's files: exposing one whole is never what a caller
// means, while a project directory beneath one is the normal case.
constexpr std::string_view kTooBroad[] = {"/home",  "/tmp", "/var/tmp", "/mnt",
                                          "/media", "/srv", "/opt",     "/var"};

bool IsUnder(std::string_view path, std::string_view dir) {
  if (dir == "/") return true;
  return path.size() > dir.size() && path.starts_with(dir) && path[dir.size()] == '/';
}

std::optional<FileIdentity> StatIdentity(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileIdentity{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

// "/a/b/c" -> "/", "/a", "/a/b" (the strict ancestors).
std::vector<std::string> AncestorsOf(std::string_view path) {
  std::vector<std::string> out = {"/"};
  for (size_t pos = path.find('/', 1); pos != std::string_view::npos;
       pos = path.find('/', pos + 1)) {
    out.emplace_back(path.substr(0, pos));
  }
  if (path == "/") out.clear();
  return out;
}

struct Protected {
  std::string path;
  bool inside_refused;  // false: only its ancestors are refused (rauhad's socket file)
  std::string what;     // "the host system directory /etc", "rauhad's socket ..."
};

std::vector<Protected> ProtectedPaths(const HostPathRules& rules) {
  std::vector<Protected> out;
  for (auto dir : kSystemDirs) {
    out.push_back({std::string(dir), true, StrCat("the host system directory ", dir)});
  }
  for (const auto& p : rules.daemon_paths) {
    struct stat st;
    bool dir = ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    out.push_back({p, dir, StrCat("rauhad's ", dir ? "directory " : "socket ", p)});
  }
  return out;
}

absl::Status Refused(std::string_view field, std::string_view path, std::string_view why,
                     const HostPathRules& rules) {
  return absl::PermissionDeniedError(
      StrCat(field, " ", path, " is refused: ", why, ". ", rules.advice));
}

// Walks from the opened directory up to the root of its mount namespace (".." crosses mount
// points the way the kernel does), comparing each directory with the protected ones by
// identity: a bind mount of /etc elsewhere is still /etc.
absl::Status CheckNotInside(std::string_view field, const HostPath& opened,
                            const std::vector<Protected>& protected_paths,
                            const HostPathRules& rules) {
  std::vector<std::pair<FileIdentity, const Protected*>> inside;
  for (const auto& p : protected_paths) {
    if (!p.inside_refused) continue;
    if (auto id = StatIdentity(p.path)) inside.emplace_back(*id, &p);
  }
  UniqueFd dir(::fcntl(opened.fd.get(), F_DUPFD_CLOEXEC, 0));
  if (!dir) return ErrnoStatus(errno, StrCat("dup ", opened.path));
  for (int depth = 0; depth < PATH_MAX / 2; ++depth) {
    RAUHA_ASSIGN_OR_RETURN(FileIdentity id, IdentityOf(dir.get(), opened.path));
    for (const auto& [pid, p] : inside) {
      if (id == pid) {
        return Refused(field, opened.path,
                       depth == 0 ? StrCat("it is ", p->what) : StrCat("it is inside ", p->what),
                       rules);
      }
    }
    UniqueFd parent(::openat(dir.get(), "..", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!parent) return ErrnoStatus(errno, StrCat("open the parent of ", opened.path));
    RAUHA_ASSIGN_OR_RETURN(FileIdentity parent_id, IdentityOf(parent.get(), opened.path));
    if (parent_id == id) return absl::OkStatus();  // the root
    dir = std::move(parent);
  }
  return absl::OkStatus();
}

absl::Status CheckNotAncestor(std::string_view field, const HostPath& opened,
                              const std::vector<Protected>& protected_paths,
                              const HostPathRules& rules) {
  if (opened.path == "/") return Refused(field, opened.path, "it is the host's root", rules);
  for (const auto& p : protected_paths) {
    for (const auto& ancestor : AncestorsOf(p.path)) {
      auto id = StatIdentity(ancestor);
      if (ancestor == opened.path || (id && *id == opened.identity)) {
        return Refused(field, opened.path, StrCat("it holds ", p.what), rules);
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckNotTooBroad(std::string_view field, const HostPath& opened,
                              const HostPathRules& rules) {
  for (auto broad : kTooBroad) {
    auto id = StatIdentity(std::string(broad));
    if (opened.path == broad || (id && *id == opened.identity)) {
      return Refused(field, opened.path,
                     StrCat("it is ", broad, " itself, which holds other users' files"), rules);
    }
  }
  return absl::OkStatus();
}

absl::Status CheckBeneathRoots(std::string_view field, const HostPath& opened,
                               const std::vector<std::string>& roots) {
  if (roots.empty()) return absl::OkStatus();
  for (const auto& root : roots) {
    if (opened.path == root || IsUnder(opened.path, root)) return absl::OkStatus();
  }
  std::string list;
  for (const auto& root : roots) list += (list.empty() ? "" : ", ") + root;
  return absl::PermissionDeniedError(
      StrCat(field, " ", opened.path, " is outside the directories this rauhad exposes to zones (",
             "--repo-root ", list, "); put the repository beneath one of them"));
}

absl::StatusOr<HostPath> OpenDirectory(std::string_view field, std::string_view path, UniqueFd fd) {
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(errno, StrCat("fstat ", path));
  if (!S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        StrCat(field, " ", path, " is not a directory; name the repository's directory"));
  }
  HostPath out;
  out.path = std::string(path);
  out.identity = {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
  out.fd = std::move(fd);
  return out;
}

}  // namespace

const std::vector<std::string_view>& ProtectedSystemDirectories() { return kSystemDirs; }

absl::StatusOr<HostPath> OpenExposableDirectory(std::string_view field, std::string_view path,
                                                const HostPathRules& rules) {
  RAUHA_RETURN_IF_ERROR(RefuseControlCharacters(field, path));
  if (!IsNormalAbsolutePath(path)) {
    return absl::InvalidArgumentError(
        StrCat(field, " \"", path,
               "\" must be an absolute path without '.', '..' or empty components "
               "(rauha sandbox resolves --repo-path for you)"));
  }
  auto fd = OpenNoSymlinks(path);
  if (!fd.ok()) {
    if (absl::IsInvalidArgument(fd.status())) {
      return absl::InvalidArgumentError(StrCat(field, " ", fd.status().message()));
    }
    return Annotate(fd.status(), StrCat(field, ": check the path"));
  }
  RAUHA_ASSIGN_OR_RETURN(HostPath opened, OpenDirectory(field, path, *std::move(fd)));
  std::vector<Protected> protected_paths = ProtectedPaths(rules);
  RAUHA_RETURN_IF_ERROR(CheckNotAncestor(field, opened, protected_paths, rules));
  RAUHA_RETURN_IF_ERROR(CheckNotInside(field, opened, protected_paths, rules));
  RAUHA_RETURN_IF_ERROR(CheckNotTooBroad(field, opened, rules));
  RAUHA_RETURN_IF_ERROR(CheckBeneathRoots(field, opened, rules.roots));
  return opened;
}

absl::StatusOr<HostPath> OpenDirectoryForPrivilegedZone(std::string_view field,
                                                        std::string_view path) {
  RAUHA_RETURN_IF_ERROR(RefuseControlCharacters(field, path));
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(StrCat(field, " \"", path, "\" must be an absolute path"));
  }
  std::string p(path);
  UniqueFd fd(::open(p.c_str(), O_PATH | O_CLOEXEC));
  if (!fd) return Annotate(ErrnoStatus(errno, StrCat(field, " ", path)), "check the path");
  char real[PATH_MAX];
  std::string link = StrCat("/proc/self/fd/", fd.get());
  ssize_t n = ::readlink(link.c_str(), real, sizeof(real) - 1);
  if (n <= 0) return ErrnoStatus(errno, StrCat("readlink ", link));
  return OpenDirectory(field, std::string_view(real, static_cast<size_t>(n)), std::move(fd));
}

}  // namespace rauha
