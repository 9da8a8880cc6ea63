#include "rauhad/linux/bpf/pin_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>

#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/strcat.h"

namespace rauha::bpf {
namespace {

bool OnBpffs(const std::string& path) {
  struct statfs sfs {};
  return ::statfs(path.c_str(), &sfs) == 0 && sfs.f_type == BPF_FS_MAGIC;
}

bool Below(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         path[dir.size()] == '/');
}

absl::Status EnsureBpffsMounted() {
  if (OnBpffs(kBpffsMount)) return absl::OkStatus();
  // The lock is on the directory under the mount point: every daemon opens that one before
  // the mount, and a daemon that opens it after sees bpffs and never gets here.
  UniqueFd dir(::open(kBpffsMount, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return ErrnoStatus(errno, StrCat("open ", kBpffsMount));
  if (::flock(dir.get(), LOCK_EX) != 0) return ErrnoStatus(errno, StrCat("flock ", kBpffsMount));
  if (OnBpffs(kBpffsMount)) return absl::OkStatus();
  if (::mount("bpf", kBpffsMount, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") != 0)
    return ErrnoStatus(errno, StrCat("mount -t bpf bpf ", kBpffsMount));
  std::fprintf(stderr, "rauhad: mounted bpffs at %s (nothing was mounted there)\n", kBpffsMount);
  return absl::OkStatus();
}

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

std::string DefaultPinDir(const std::string& state_dir) {
  std::error_code ec;
  std::string canonical =
      std::filesystem::weakly_canonical(state_dir, ec).lexically_normal().string();
  if (ec || canonical.empty()) canonical = state_dir;
  while (canonical.size() > 1 && canonical.back() == '/') canonical.pop_back();
  std::string name;
  for (char c : canonical) {
    if (name.empty() && c == '/') continue;
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-';
    name += plain ? c : (c == '/' ? '-' : '_');
  }
  if (name.size() > 96) name = name.substr(name.size() - 96);
  char hash[17];
  std::snprintf(hash, sizeof(hash), "%016llx", static_cast<unsigned long long>(Fnv1a(canonical)));
  return StrCat(kBpffsMount, "/rauha/", name, name.empty() ? "" : "-", std::string(hash, 8));
}

absl::Status PrepareBpffsDir(const std::string& dir) {
  if (dir.empty() || dir[0] != '/')
    return absl::InvalidArgumentError(StrCat("BPF pin directory \"", dir, "\" is not absolute"));
  std::string normal = std::filesystem::path(dir).lexically_normal().string();
  if (Below(normal, kBpffsMount)) RAUHA_RETURN_IF_ERROR(EnsureBpffsMounted());
  std::error_code ec;
  // Twice: another instance stopping may remove the shared default parent in between.
  for (int i = 0; i < 2; ++i) {
    std::filesystem::create_directories(normal, ec);
    if (!ec) break;
  }
  if (ec) return ErrnoStatus(ec.value(), StrCat("mkdir -p ", normal));
  if (!OnBpffs(normal))
    return absl::FailedPreconditionError(
        StrCat("BPF pin directory ", normal,
               " is not on a bpf filesystem (mount one: mount -t bpf bpf DIR)"));
  if (::chmod(normal.c_str(), 0700) != 0) return ErrnoStatus(errno, StrCat("chmod ", normal));
  return absl::OkStatus();
}

std::vector<std::string> ListPins(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
  }
  ::closedir(d);
  return out;
}

absl::Status RemovePinTree(const std::string& dir) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec && ec.value() != ENOENT) return ErrnoStatus(ec.value(), StrCat("removing pins in ", dir));
  return absl::OkStatus();
}

void RemoveInstanceDir(const std::string& dir) {
  (void)RemovePinTree(dir);
  // The default parent is shared by every instance: the last one out removes it (ENOTEMPTY
  // while another instance has its directory there).
  std::string parent = std::filesystem::path(dir).parent_path().string();
  if (parent == StrCat(kBpffsMount, "/rauha")) ::rmdir(parent.c_str());
}

}  // namespace rauha::bpf
