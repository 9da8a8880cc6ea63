// User namespaces and idmapped mounts: the pieces a zone's "root inside, nobody on the host"
// needs. A user namespace exists only while something refers to it; these functions make one
// in a short-lived child (the only way the kernel creates one), write its maps from outside
// (the caller, root of the host's namespace, may write any map) and keep an fd to it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rauha-common/fd.h"

namespace rauha {

// Every zone's user namespace maps this many ids (0..65535, what every distribution's
// packages use) for users and groups alike.
inline constexpr uint32_t kZoneIdCount = 65536;

// One line of /proc/<pid>/uid_map: ids [inside, inside + count) are [outside, outside + count)
// in the parent (host) namespace.
struct IdMapping {
  uint32_t inside = 0;
  uint32_t outside = 0;
  uint32_t count = 0;
};

// "0 100000000 65536\n" lines, as the kernel wants them.
std::string FormatIdMap(const std::vector<IdMapping>& map);

// Fds of namespaces made together; `user` owns the others (each is empty when not asked for).
struct ZoneNamespaces {
  UniqueFd user;
  UniqueFd ipc;
  UniqueFd uts;
  UniqueFd net;
};

// A new user namespace with `uid_map` and `gid_map`, plus (in the same clone, so they are
// owned by it) the namespaces in `extra_flags` (CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET).
// The caller must be able to write both maps (root of the host's user namespace). Safe to call
// from a multi-threaded process: the child only blocks on a pipe and exits.
absl::StatusOr<ZoneNamespaces> CreateUserNamespace(const std::vector<IdMapping>& uid_map,
                                                   const std::vector<IdMapping>& gid_map,
                                                   int extra_flags = 0);

// A detached copy of the mount tree at `path` (open_tree OPEN_TREE_CLONE, recursive) with
// MOUNT_ATTR_IDMAP set to `userns_fd` plus `attr_set` (MOUNT_ATTR_RDONLY, ...): files the disk
// says belong to id N appear as the id N of that namespace maps to. Attach it with
// move_mount. Fails (the errno of mount_setattr) where the filesystem (or one below `path`)
// does not support idmapped mounts.
absl::StatusOr<UniqueFd> IdmappedTree(int dirfd, const std::string& path, int userns_fd,
                                      uint64_t attr_set);

// Whether zones can run in their own user namespace here: a user namespace can be made and
// a read-only idmapped clone of `probe_dir` (the host view's /usr) can be made from it.
// `detail` says what works or what failed, for `rauha info` and unavailable_controls.
bool ProbeZoneUserNamespaces(const std::string& probe_dir, std::string* detail);

// "uid/gid 0-65535 -> host 100000000-100065535".
std::string DescribeZoneMapping(uint32_t host_first);

// The uid_map of the user namespace `userns_fd`, as the kernel shows it to the host (read from
// /proc/self/uid_map of a short-lived child that joined it).
absl::StatusOr<std::string> ReadUidMapOf(int userns_fd);

}  // namespace rauha
