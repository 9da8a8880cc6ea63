// The shim binary's actions, as containerd 1.6 runs them (cwd = the task's bundle):
//   start:  prints the pod's shim address ("unix:///run/containerd/s/<hash>") and nothing
//           else, after starting that shim if the pod (io.kubernetes.cri.sandbox-id, else the
//           task) has none answering yet; writes the address to <bundle>/address too.
//   delete: the task's shim is gone: unmounts <bundle>/rootfs, removes the zone if the task
//           owned it, prints a serialized DeleteResponse (exit 137, now). Idempotent.
//   serve:  the shim: ttrpc on the listening socket `start` passed as fd 3, until Shutdown.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "containerd-shim-rauha-v2/options.h"

namespace rauha::cshim {

// The socket of a pod's shim: a hash of containerd's address, the namespace and the pod, so
// that two containerd instances or namespaces never share a shim.
std::string ShimSocketPath(const std::string& containerd_address, const std::string& ns,
                           const std::string& group_id);

absl::Status StartAction(const Options& options);
absl::Status DeleteAction(const Options& options);
absl::Status ServeAction(const Options& options);

}  // namespace rauha::cshim
