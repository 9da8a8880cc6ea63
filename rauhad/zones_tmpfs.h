// The zones' run directories (<run-dir>/zones: each zone's directory, its shim's socket, a log
// when the shim writes one, output spools) on a tmpfs. Each zone makes and removes a directory
// and a socket there; on a disk file system every new inode is file-system work, and on this
// project's VM (ext4 without a journal) the inode allocator's walk over recently deleted inodes
// was ~6 % of a sandbox's CPU. A stock host's /run is a tmpfs already; a run dir elsewhere gets
// one of its own, mounted here.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace rauha {

class ZonesTmpfs {
 public:
  // Makes `dir` (0700). Unless its file system is a tmpfs already (a tmpfs run dir, or the
  // mount a rauhad that crashed left, whose shims still listen in it), mounts a private tmpfs
  // named "rauha-zones" on it: nosuid, nodev, mode 0700.
  static absl::StatusOr<ZonesTmpfs> Prepare(const std::string& dir);

  ZonesTmpfs(ZonesTmpfs&& other) noexcept : dir_(std::move(other.dir_)), ours_(other.ours_) {
    other.ours_ = false;
  }
  ZonesTmpfs& operator=(ZonesTmpfs&&) = delete;
  ZonesTmpfs(const ZonesTmpfs&) = delete;
  // Unmounts our tmpfs, without MNT_DETACH: while a shim still listens there (rauhad failed to
  // start over zones that live on) the kernel refuses (EBUSY) and the mount stays for the next
  // start, as the shims do.
  ~ZonesTmpfs();

  // True when the tmpfs is rauha's own (mounted now or by an earlier rauhad).
  bool ours() const { return ours_; }

 private:
  ZonesTmpfs(std::string dir, bool ours) : dir_(std::move(dir)), ours_(ours) {}
  std::string dir_;
  bool ours_ = false;
};

}  // namespace rauha
