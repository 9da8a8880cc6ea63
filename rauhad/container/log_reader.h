// Reading a container's log (rauha-common/container_log.h) for ContainerLogs: the rotated file
// and then the current one, pieces of a long line joined again, the last `tail` lines, and
// with `follow` the lines as the shim writes them (across rotations) until the container has
// stopped and everything is read.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"

namespace rauha::container {

struct LogLine {
  bool is_stderr = false;
  std::string text;
  std::string timestamp;  // of the line's first piece
};

// `dir` holds container.log (and container.log.1). `running` says whether more may come;
// `emit` returning false (the client went away) or `cancelled` ends the read.
absl::Status ReadContainerLog(const std::string& dir, uint32_t tail, bool follow,
                              const std::function<bool()>& running,
                              const std::function<bool()>& cancelled,
                              const std::function<bool(const LogLine&)>& emit);

}  // namespace rauha::container
