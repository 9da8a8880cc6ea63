#include "rauha-common/lifecycle.h"

#include <array>

#include "rauha-common/strcat.h"

namespace rauha {
namespace {

constexpr std::array<std::string_view, 7> kNames = {"Creating", "Ready",   "Running",   "Paused",
                                                    "Stopping", "Stopped", "Destroying"};

}  // namespace

std::string_view ToString(ZoneState state) { return kNames[static_cast<size_t>(state)]; }

std::optional<ZoneState> ZoneStateFromString(std::string_view name) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name) return static_cast<ZoneState>(i);
  }
  return std::nullopt;
}

bool CanTransition(ZoneState from, ZoneState to) {
  using S = ZoneState;
  switch (from) {
    case S::kCreating:
      return to == S::kReady || to == S::kDestroying;
    case S::kReady:
      return to == S::kRunning || to == S::kPaused || to == S::kStopping || to == S::kStopped;
    case S::kRunning:
      return to == S::kReady || to == S::kPaused || to == S::kStopping || to == S::kStopped;
    case S::kPaused:
      return to == S::kReady || to == S::kRunning || to == S::kStopping || to == S::kStopped;
    case S::kStopping:
      return to == S::kStopped;
    case S::kStopped:
      return to == S::kDestroying;
    case S::kDestroying:
      return false;
  }
  return false;
}

absl::Status CheckTransition(ZoneState from, ZoneState to) {
  if (CanTransition(from, to)) return absl::OkStatus();
  return absl::FailedPreconditionError(
      StrCat("zone is ", ToString(from), " and cannot become ", ToString(to)));
}

}  // namespace rauha
