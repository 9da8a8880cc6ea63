// Where one rauhad keeps its BPF objects in bpffs, so that a zone's programs outlive the daemon
// that attached them: a BPF link lives as long as an fd or a pin refers to it, and a kill -9
// closes every fd. Layout below an instance's directory:
//
//   maps-<object hash>/NAME  the maps the programs share (zone map, counters, ring buffer, .bss);
//                            the hash names the BPF object, so a new object never reads maps
//                            laid out by an old one
//   progs/NAME               the programs in use
//   global/NAME              links of the global programs (LSM hooks, Landlock observer)
//   zones/<cgroup id>/NAME   one zone's cgroup links
//
// The directory is the instance's own: rauhad removes it when it stops and no zone is left.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace rauha::bpf {

// Where bpffs is mounted on systems that mount it (systemd does; rauhad mounts it when
// nothing is mounted there).
inline constexpr char kBpffsMount[] = "/sys/fs/bpf";

// The default instance directory for a rauhad with this state directory:
// /sys/fs/bpf/rauha/<state dir, '/' as '-'>-<hash of the canonical path>. bpffs refuses '.' in
// names, so only [A-Za-z0-9_-] are kept; the hash keeps two state dirs that spell alike apart.
std::string DefaultPinDir(const std::string& state_dir);

// Creates `dir` (mode 0700, with its parents) on a bpf filesystem. When `dir` is below
// /sys/fs/bpf and no bpffs is mounted there, mounts one first (under a lock, so two daemons
// starting together do not stack two mounts, each hiding the other's pins).
// FailedPrecondition when `dir` ends up on another filesystem.
absl::Status PrepareBpffsDir(const std::string& dir);

// Entry names in `dir` (no "." or ".."); empty when it does not exist.
std::vector<std::string> ListPins(const std::string& dir);

// Unlinks every pin below `dir` and removes the directories. The pinned objects go when their
// last reference (an fd, another pin, a link's program) does. OK when `dir` does not exist.
absl::Status RemovePinTree(const std::string& dir);

// Removes an instance's directory as RemovePinTree does, and the default parent
// (/sys/fs/bpf/rauha) when no other instance uses it.
void RemoveInstanceDir(const std::string& dir);

}  // namespace rauha::bpf
