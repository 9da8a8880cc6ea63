// The shim task spec of a containerd process (rauha.process.v1): what the zone's policy gives
// every task (ZoneTaskSpec), with the process's own command, environment, stdio and the OCI
// spec's capabilities (within the policy's) and rlimits.
#pragma once

#include "absl/status/statusor.h"
#include "rauha-common/shim_protocol.h"
#include "rauha/v1/process.pb.h"
#include "rauhad/host_path.h"
#include "rauhad/zone_manager.h"

namespace rauha {

// InvalidArgument naming the field for an unknown rlimit or a bad mount (process_mounts.h;
// `rules` are the host-path rules for mounts that are not the runtime's own state), and for
// no_new_privileges = false.
absl::StatusOr<shim::TaskSpec> ProcessTaskSpec(const ZoneView& zone,
                                               const rauha::process::v1::StartProcessRequest& req,
                                               const HostPathRules& rules = {});

}  // namespace rauha
