#include "containerd-shim-rauha-v2/rootfs_mount.h"

#include <errno.h>
#include <sys/mount.h>

#include <map>

#include "rauha-common/errors.h"

namespace rauha::cshim {
namespace {

// The flag words of mount(8) options containerd uses; everything else is filesystem data.
const std::map<std::string, std::pair<unsigned long, bool>>& FlagWords() {
  static const auto* words = new std::map<std::string, std::pair<unsigned long, bool>>{
      {"ro", {MS_RDONLY, true}},           {"rw", {MS_RDONLY, false}},
      {"nosuid", {MS_NOSUID, true}},       {"nodev", {MS_NODEV, true}},
      {"noexec", {MS_NOEXEC, true}},       {"bind", {MS_BIND, true}},
      {"rbind", {MS_BIND | MS_REC, true}}, {"relatime", {MS_RELATIME, true}},
      {"noatime", {MS_NOATIME, true}},     {"sync", {MS_SYNCHRONOUS, true}},
  };
  return *words;
}

}  // namespace

absl::Status MountRootfs(const google::protobuf::RepeatedPtrField<containerd::types::Mount>& mounts,
                         const std::string& target) {
  int done = 0;
  for (const auto& m : mounts) {
    unsigned long flags = 0;
    std::string data;
    for (const auto& opt : m.options()) {
      auto it = FlagWords().find(opt);
      if (it == FlagWords().end()) {
        data += (data.empty() ? "" : ",") + opt;
      } else if (it->second.second) {
        flags |= it->second.first;
      } else {
        flags &= ~it->second.first;
      }
    }
    std::string type = m.type() == "bind" ? "" : m.type();
    if (m.type() == "bind") flags |= MS_BIND;
    if (::mount(m.source().c_str(), target.c_str(), type.empty() ? nullptr : type.c_str(), flags,
                data.empty() ? nullptr : data.c_str()) != 0) {
      absl::Status err =
          ErrnoStatus(errno, "mount " + m.type() + " " + m.source() + " on " + target);
      for (; done > 0; done--) ::umount2(target.c_str(), MNT_DETACH);
      return err;
    }
    done++;
  }
  return absl::OkStatus();
}

absl::Status UnmountRootfs(const std::string& target) {
  while (::umount2(target.c_str(), MNT_DETACH) == 0) {
  }
  if (errno == EINVAL || errno == ENOENT) return absl::OkStatus();  // not (or no more) a mount
  return ErrnoStatus(errno, "umount " + target);
}

}  // namespace rauha::cshim
