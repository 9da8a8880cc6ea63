// What a containerd test leaves mounted under its private directory when it dies mid-way (a
// failed ASSERT before `ctr task rm`, a shim SIGKILLed with a rootfs mounted): found in this
// process's mount table and unmounted, so that the directory can be removed without reaching
// through a mount, and the next test starts from a clean table.
#pragma once

#include <string>
#include <vector>

namespace rauha::testing {

// Mount points at or below `dir` (a directory, absolute, no trailing slash) in
// /proc/self/mountinfo, deepest first; a path mounted over several times appears that often.
// Only `dir` itself and paths below it: /tmp/rauha-ctr-abc does not cover /tmp/rauha-ctr-abcd.
std::vector<std::string> MountsUnder(const std::string& dir);

// Unmounts every mount at or below `dir`, deepest first (a parent is busy while a child is
// mounted on it). A mount still busy after a few tries (a process holds a file in it) is
// detached (MNT_DETACH) as a last resort: gone from the tree, freed when its last user goes.
// Returns what it could not remove, each with the error; empty when nothing is left.
std::vector<std::string> UnmountAllUnder(const std::string& dir);

}  // namespace rauha::testing
