// rauha-shim's command line. rauhad starts the shim (after its own double fork and setsid):
//   rauha-shim --zone-id ID --zone-name NAME --socket PATH --state-dir DIR
//              --network isolated|host [--netns PATH] [--hostname NAME] [--userns HOST_FIRST]
//              [--ready-fd N] [--log PATH]
// A hand-written parser: the shim must stay small in memory.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace rauha::shim {

struct Options {
  std::string zone_id;
  std::string zone_name;
  std::string socket_path;
  std::string state_dir;
  bool isolated_network = true;
  // With --network isolated: join this existing network namespace (a Kubernetes pod's, made
  // by CNI) instead of making one. Empty: a new one.
  std::string netns_path;
  // The zone's UTS hostname (a pod's); empty: derived from the zone's name (ZoneHostname).
  std::string hostname;
  // The zone's own user namespace maps ids 0..65535 to host ids from here (0: none, the
  // zone keeps the host's ids).
  uint32_t userns_first = 0;
  int ready_fd = -1;  // -1: none
  std::string log_path;
};

// Every flag takes a value ("--flag value" or "--flag=value"); unknown flags are errors.
absl::StatusOr<Options> ParseOptions(int argc, char** argv);

// Best effort: the --ready-fd value even when the rest of the command line is invalid, so a
// start-up error can still be reported there. -1 when absent or not a number.
int FindReadyFd(int argc, char** argv);

}  // namespace rauha::shim
