// Zone lifecycle: Creating -> Ready -> Running <-> Paused -> Stopping -> Stopped -> Destroying.
// The state names are the strings clients see (API.md).
#pragma once

#include <optional>
#include <string_view>

#include "absl/status/status.h"

namespace rauha {

enum class ZoneState { kCreating, kReady, kRunning, kPaused, kStopping, kStopped, kDestroying };

std::string_view ToString(ZoneState state);
std::optional<ZoneState> ZoneStateFromString(std::string_view name);

// Whether a zone may move from `from` to `to`. Allowed:
//   Creating -> Ready | Destroying            (created, or creation failed)
//   Ready    -> Running | Paused | Stopping | Stopped
//   Running  -> Ready | Paused | Stopping | Stopped
//   Paused   -> Ready | Running | Stopping | Stopped
//   Stopping -> Stopped
//   Stopped  -> Destroying
// "-> Stopped" from a live state is how a zone whose shim died is marked.
bool CanTransition(ZoneState from, ZoneState to);

// FailedPrecondition naming both states when the move is not allowed.
absl::Status CheckTransition(ZoneState from, ZoneState to);

}  // namespace rauha
