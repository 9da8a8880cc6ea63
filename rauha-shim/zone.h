// The zone-wide half of the shim's start-up: the namespaces every task of the zone shares
// (ipc, uts and, for an isolated network, net) and the control socket rauhad talks to.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rauha-common/fd.h"

namespace rauha::shim {

// Moves the shim into new IPC and UTS namespaces (plus a new network namespace with `lo` up
// and net.ipv4.ping_group_range open to every group when `isolated_network`) and sets the hostname
// to `hostname` (cut to 64 bytes). Tasks started afterwards inherit all of them.
//
// With `netns_path` (isolated network only) the shim joins that existing network namespace
// instead of making one: a Kubernetes pod's, which CNI made and configured (eth0, routes).
// It stays owned by the host's user namespace, so even root of the zone's user namespace
// cannot reconfigure it.
//
// With `userns_first` != 0 the zone also gets its own user namespace (ids 0..65535 inside are
// host ids userns_first..+65535), which owns those IPC, UTS and network namespaces, so that
// capabilities a task holds inside it act on the zone's namespaces only. The shim itself stays
// in the host's user namespace (it joins the others with setns: it needs host root to build
// each task's root and join its cgroups); the returned fd is the zone's user namespace, which
// each task joins last (child.h). Without a user namespace the fd is empty.
absl::StatusOr<UniqueFd> EnterZoneNamespaces(const std::string& hostname, bool isolated_network,
                                             uint32_t userns_first = 0,
                                             const std::string& netns_path = "");

// Creates `dir` and its missing parents (the last one mode 0700) if it does not exist.
absl::Status EnsureStateDir(const std::string& dir);

// A listening, non-blocking, close-on-exec unix stream socket at `path` (mode 0600); a stale
// socket file left by a crashed shim is replaced.
absl::StatusOr<UniqueFd> ListenUnix(const std::string& path);

}  // namespace rauha::shim
