// Pinned BPF objects a restarted rauhad takes over (see pin_dir.h for the layout): links it
// adopts instead of attaching duplicates, maps it reuses, and how a pinned link goes away.
#pragma once

#include <bpf/libbpf.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace rauha::bpf {

// The cgroup link pinned at `path`, adopted: when it is a link of cgroup `cgroup_id` with
// `prog`'s attach type, it is switched to `prog` in one BPF_LINK_UPDATE (the cgroup is never
// without a program) and returned with its pin path set. nullptr when nothing is pinned there.
// A pin that does not fit (another cgroup or hook, not a link) is detached and removed, and
// nullptr returned: the caller attaches afresh.
absl::StatusOr<bpf_link*> AdoptCgroupLink(const std::string& path, bpf_program* prog,
                                          uint64_t cgroup_id);

// The global link (LSM hook, kprobe) pinned at `path` when it runs a program named like
// `prog`, returned as it is (it keeps its program: the caller adopts it only when that
// program reads the same maps). nullptr when nothing usable is pinned there (a misfit is
// removed).
absl::StatusOr<bpf_link*> AdoptGlobalLink(const std::string& path, bpf_program* prog);

// Ends a link now: detaches it where the kernel can (cgroup links, at once; without that, the
// link would go only when bpffs frees the pin's inode, after an RCU grace period), removes its
// pin and closes it.
void RemoveLink(bpf_link* link);

// Opens the link pinned at `path` and removes it as RemoveLink does. OK when nothing is there.
void RemovePinnedLink(const std::string& path);

// Whether the map pinned at `path` can stand in for `map` (opened, not loaded): same type,
// key and value size, entries and flags. A pin that cannot is unlinked (programs still using
// it keep it alive until they are replaced), so libbpf creates and pins a new map there.
bool PinnedMapReusable(bpf_map* map, const std::string& path);

// Pins the program the link `link_fd` runs at `path`, replacing what is pinned there.
absl::Status PinProgramOfLink(int link_fd, const std::string& path);
// Pins `prog_fd` at `path`, replacing what is pinned there.
absl::Status PinProgram(int prog_fd, const std::string& path);

}  // namespace rauha::bpf
