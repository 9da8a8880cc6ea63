#include "rauhad/zones_tmpfs.h"

#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"

namespace rauha {
namespace {

constexpr char kSource[] = "rauha-zones";

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3') {
      out.push_back(
          static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Whether the topmost mount on `dir` is a tmpfs named kSource (ours).
bool OurTmpfsOn(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  bool ours = false;
  for (std::string line; std::getline(in, line);) {
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTS
    std::istringstream fields(line);
    std::string id, parent, dev, root, mount_point, word;
    fields >> id >> parent >> dev >> root >> mount_point;
    if (Unescape(mount_point) != dir) continue;
    while (fields >> word && word != "-") {
    }
    std::string fstype, source;
    fields >> fstype >> source;
    // Later lines are mounted over earlier ones: the last one for `dir` is what it shows.
    ours = fstype == "tmpfs" && source == kSource;
  }
  return ours;
}

}  // namespace

absl::StatusOr<ZonesTmpfs> ZonesTmpfs::Prepare(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus(errno, StrCat("mkdir ", dir));
  }
  struct statfs fs {};
  if (::statfs(dir.c_str(), &fs) != 0) return ErrnoStatus(errno, StrCat("statfs ", dir));
  if (fs.f_type == TMPFS_MAGIC) return ZonesTmpfs(dir, OurTmpfsOn(dir));
  if (::mount(kSource, dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700,size=25%") != 0) {
    return ErrnoStatus(errno, StrCat("mounting a tmpfs on ", dir));
  }
  ZonesTmpfs out(dir, true);
  // Nothing mounted below it (a task's namespace makes its own copy private) reaches a peer.
  if (::mount(nullptr, dir.c_str(), nullptr, MS_PRIVATE, nullptr) != 0) {
    return ErrnoStatus(errno, StrCat("making the tmpfs on ", dir, " private"));
  }
  return out;
}

ZonesTmpfs::~ZonesTmpfs() {
  if (!ours_) return;
  if (::umount2(dir_.c_str(), UMOUNT_NOFOLLOW) != 0 && errno != EINVAL && errno != ENOENT) {
    std::fprintf(stderr, "rauhad: leaving the zones' tmpfs on %s mounted: %s\n", dir_.c_str(),
                 std::strerror(errno));
  }
}

}  // namespace rauha
