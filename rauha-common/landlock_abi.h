// The running kernel's Landlock ABI version, probed once (landlock_create_ruleset with
// LANDLOCK_CREATE_RULESET_VERSION) and cached. Shared by `rauha info`, rauhad's zone layers and
// the shim, so all three always agree.
#pragma once

namespace rauha {

// The ABI version, or 0 with `*error` (if not null) set to the probe's errno (ENOSYS: not
// built in; EOPNOTSUPP: built in but disabled at boot).
int LandlockAbi(int* error = nullptr);

}  // namespace rauha
