#include "rauhad/output_dir.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/strcat.h"
#include "rauhad/host_path.h"

namespace rauha {
namespace {

constexpr const char* kSystemDirs[] = {
    "/etc", "/usr",  "/boot", "/proc",  "/sys",   "/dev",    "/run",       "/var/lib",
    "/bin", "/sbin", "/lib",  "/lib32", "/lib64", "/libx32", "/var/spool", "/var/cache"};

bool IsUnder(std::string_view path, std::string_view dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.remove_suffix(1);
  return path == dir ||
         (path.starts_with(dir) && path.size() > dir.size() && path[dir.size()] == '/');
}

// "/a//b/./c/" -> "/a/b/c"; false when a component is "..".
bool Normalize(std::string_view path, std::string* out) {
  out->clear();
  size_t pos = 0;
  while (pos < path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") return false;
    *out += '/';
    *out += part;
  }
  if (out->empty()) out->push_back('/');
  return true;
}

}  // namespace

absl::Status CheckOutputDir(const std::string& dir, const DaemonConfig& config) {
  auto refuse = [&](std::string_view why) {
    return absl::InvalidArgumentError(StrCat("output_dir \"", dir, "\" ", why));
  };
  if (dir.empty() || dir[0] != '/') return refuse("must be an absolute path on rauhad's host");
  if (dir.find('\0') != std::string::npos) return refuse("holds a NUL byte");
  std::string path;
  if (!Normalize(dir, &path)) return refuse("must not contain \"..\"");
  if (path == "/") return refuse("is the root directory; name a directory of your own");
  for (const char* system : kSystemDirs) {
    if (IsUnder(path, system)) {
      return refuse(StrCat("is under ", system,
                           ", where a root-owned file named stdout or stderr could mean "
                           "something to the host; name a directory of your own"));
    }
  }
  for (const std::string* own : {&config.run_dir, &config.state_dir}) {
    if (!own->empty() && IsUnder(path, *own)) {
      return refuse(StrCat("is under rauhad's own directory ", *own));
    }
  }
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  UniqueFd fd(static_cast<int>(::syscall(SYS_openat2, AT_FDCWD, path.c_str(), &how, sizeof(how))));
  if (!fd) {
    int err = errno;
    if (err == ELOOP) return refuse("is or passes through a symlink; name the real directory");
    if (err == ENOENT) {
      return absl::NotFoundError(
          StrCat("output_dir \"", dir, "\" does not exist on rauhad's host; create it first"));
    }
    if (err == ENOTDIR) return refuse("is not a directory");
    return ErrnoStatus(err, StrCat("output_dir ", dir));
  }
  // Then the rules of every host path a request names (host_path.h), checked on what was
  // opened: a bind mount of /etc or of rauhad's state dir elsewhere is still that directory.
  // (--repo-root narrows the repositories zones see, not where output goes.)
  HostPathRules rules{{},
                      config.DaemonPaths(),
                      "The shim writes root-owned files named stdout and stderr there with "
                      "content the task chose; name a directory of your own"};
  auto opened = OpenExposableDirectory("output_dir", path, rules);
  if (!opened.ok()) return opened.status();
  return absl::OkStatus();
}

}  // namespace rauha
