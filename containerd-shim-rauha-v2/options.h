// The command line containerd gives a runtime v2 shim: single-dash flags, then the action.
//   containerd-shim-rauha-v2 -namespace NS -address SOCK -publish-binary BIN -id ID
//                            [-bundle DIR] [-debug] start|delete
// `serve` is ours: the daemonized shim that `start` leaves behind (listening socket on fd 3).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rauha::cshim {

struct Options {
  std::string ns;              // -namespace
  std::string address;         // -address: containerd's gRPC socket
  std::string publish_binary;  // -publish-binary
  std::string id;              // -id: the task (container) id
  std::string bundle;          // -bundle (delete); else the working directory
  bool debug = false;
  std::string rauhad_socket;  // -rauhad-socket (ours), else $RAUHA_SOCKET, else the default
  std::string action;         // start, delete, serve
};

// InvalidArgument naming the flag for an unknown flag, a missing value or a missing action.
absl::StatusOr<Options> ParseOptions(const std::vector<std::string>& args);

// The flags that reproduce `options` (without the action), for re-executing the shim.
std::vector<std::string> ToArgs(const Options& options);

}  // namespace rauha::cshim
