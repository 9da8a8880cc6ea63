// containerd-shim-rauha-v2: containerd's runtime v2 shim for Rauha (runtime
// io.containerd.rauha.v2). `start` prints the address of the pod's shim (starting it when the
// pod has none yet), `delete` cleans up after a task whose shim is gone, `serve` is the
// daemonized shim itself. See /work/shared/CONTAINERD.md-style facts in the README.
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "containerd-shim-rauha-v2/bootstrap.h"
#include "containerd-shim-rauha-v2/options.h"

int main(int argc, char** argv) {
  using namespace rauha::cshim;
  // One malloc arena: the shim's threads (ttrpc calls, gRPC's, relays) are mostly idle, and a
  // per-thread arena each costs a pod's shim its own dirty pages.
  ::mallopt(M_ARENA_MAX, 1);
  std::vector<std::string> args(argv + 1, argv + argc);
  auto options = ParseOptions(args);
  if (!options.ok()) {
    std::fprintf(stderr, "containerd-shim-rauha-v2: %s\n",
                 std::string(options.status().message()).c_str());
    return 2;
  }
  absl::Status status;
  if (options->action == "start") {
    status = StartAction(*options);
  } else if (options->action == "delete") {
    status = DeleteAction(*options);
  } else {
    status = ServeAction(*options);
  }
  if (!status.ok()) {
    std::fprintf(stderr, "containerd-shim-rauha-v2 %s: %s\n", options->action.c_str(),
                 std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
