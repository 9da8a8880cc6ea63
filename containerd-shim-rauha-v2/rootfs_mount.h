// The rootfs containerd passes in CreateTaskRequest.rootfs (its snapshotter's mounts, e.g. one
// overlay with lowerdir/upperdir/workdir), mounted at <bundle>/rootfs as runc's shim does,
// and unmounted again at Delete and by the `delete` action.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "github.com/containerd/containerd/api/types/mount.pb.h"

namespace rauha::cshim {

// Mounts each of `mounts` in turn on `target`; on an error, unmounts what it mounted.
absl::Status MountRootfs(const google::protobuf::RepeatedPtrField<containerd::types::Mount>& mounts,
                         const std::string& target);
// Detaches every mount stacked on `target`; OK when nothing is mounted there.
absl::Status UnmountRootfs(const std::string& target);

}  // namespace rauha::cshim
