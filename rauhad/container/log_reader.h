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

struct LogQuery {
  uint32_t tail = 0;      // the last N lines (of those within since/until); 0: all
  int64_t since_ns = -1;  // only lines at or after this time (Unix ns); -1: unbounded
  int64_t until_ns = -1;  // only lines before this time; -1: unbounded
  bool follow = false;
  // With follow: whether more may be written (the container runs), and a wait for the next
  // change (new output, a state change) with a bound in ms.
  std::function<bool()> more_may_come;
  std::function<void(int)> wait_for_change;
};

// `dir` holds container.log (and container.log.1). `emit` returning false (the client went
// away) or `cancelled` ends the read.
absl::Status ReadContainerLog(const std::string& dir, const LogQuery& query,
                              const std::function<bool()>& cancelled,
                              const std::function<bool(const LogLine&)>& emit);

}  // namespace rauha::container
