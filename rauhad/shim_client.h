// rauhad's side of a zone's rauha-shim: starting it (detached, so it outlives rauhad) and
// calling it over its unix socket with frame.h framing. One connection per call: a call that
// blocks ("wait") never holds up another, and a rauhad restart needs no session state.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "rauha-common/enforcement_event.h"
#include "rauha-common/fd.h"
#include "rauha-common/shim_protocol.h"

namespace rauha {

struct ShimLaunch {
  std::string shim_path;
  std::string zone_id;
  std::string zone_name;
  std::string socket_path;
  std::string state_dir;
  std::string network;     // "isolated" | "host"
  std::string netns_path;  // isolated: join this network namespace instead of making one
  std::string hostname;    // the zone's UTS hostname ("": derived from the zone's name)
  std::string log_path;
  uint32_t userns_first = 0;  // the zone's user namespace maps 0..65535 to host ids from here
  int timeout_ms = 5000;
};

// Starts a shim in its own session (so neither a rauhad crash nor a signal to rauhad's process
// group takes it down) and waits until it reports ready. Returns the shim's pid. A shim that
// fails reports why, and that becomes the error. rauhad ignores SIGCHLD, so the kernel reaps
// shims that exit while it runs; after a rauhad crash they are reparented like any orphan.
absl::StatusOr<pid_t> SpawnShim(const ShimLaunch& launch);

// Something other than the shim that a waiting call serves on its thread: when `fd` (an
// eventfd) is readable, it is read and `on_wake` runs (rauhad's own events for the task).
struct ShimWake {
  int fd = -1;
  std::function<void()> on_wake;
};

class ShimClient {
 public:
  explicit ShimClient(std::string socket_path) : socket_path_(std::move(socket_path)) {}

  // One request/response. `timeout_ms` < 0 waits for ever; `cancelled`, polled every 100 ms
  // while waiting, abandons the call (Cancelled) when it returns true. Unsolicited event
  // frames that arrive before the response (shim_protocol.h) go to `on_event` (skipped when
  // it is null; one that does not parse is skipped too).
  absl::StatusOr<nlohmann::json> Call(
      std::string_view method, nlohmann::json params, int timeout_ms = 10000,
      const std::function<bool()>& cancelled = nullptr,
      const std::function<void(const EnforcementEvent&)>& on_event = nullptr,
      const std::function<void(const nlohmann::json&)>& on_frame = nullptr) const;

  // A shim that is alive answers hello at once; `timeout_ms` tells a hung one (stopped,
  // deadlocked) apart.
  absl::StatusOr<shim::ShimHello> Hello(int timeout_ms = 3000) const;
  // Every call made for a request is bounded by that request's own deadline: `cancelled` (the
  // gRPC call's end: its deadline or the client going away) and `timeout_ms` (what is left of
  // the task's timeout), so a hung shim costs a caller no more than it asked to wait.
  absl::StatusOr<int64_t> Start(const shim::TaskSpec& spec,
                                const std::function<bool()>& cancelled = nullptr,
                                int timeout_ms = 30000) const;
  // The task's result once it ended. `on_event` gets each of the task's denials live, as the
  // shim answers it, on the calling thread; the result's enforcement_events hold them all
  // again (up to shim::kMaxTaskEvents), so a caller that only needs the complete list can
  // ignore the live ones. `timeout_ms` < 0: no bound but `cancelled`.
  absl::StatusOr<shim::TaskResult> Wait(
      const std::string& task_id, const std::function<bool()>& cancelled = nullptr,
      const std::function<void(const EnforcementEvent&)>& on_event = nullptr,
      int timeout_ms = -1) const;
  // Wait that also gets the task's output as the shim reads it: first what the shim kept of it
  // so far (up to the task's output_limit per stream), then everything as it comes;
  // `on_output` (is_stderr, bytes) runs on the calling thread. No bound but `cancelled`.
  // `paced`: from now on a caller that reads slowly holds the task back (the shim stops
  // reading its output) instead of missing output; a shim that predates it ignores it.
  absl::StatusOr<shim::TaskResult> WaitStreaming(
      const std::string& task_id, const std::function<void(bool, std::string_view)>& on_output,
      const std::function<bool()>& cancelled = nullptr, bool paced = false) const;
  // Input for a task started with stdin_pipe or tty; `eof` closes a pipe after it.
  absl::Status Stdin(const std::string& task_id, std::string_view data, bool eof,
                     int timeout_ms = 10000) const;
  absl::Status Resize(const std::string& task_id, uint32_t rows, uint32_t cols) const;
  absl::Status Kill(const std::string& task_id, int signal, int timeout_ms = 10000) const;
  absl::Status Forget(const std::string& task_id) const;
  // The shim kills its tasks, waits for them (up to 5 s) and exits.
  absl::Status Shutdown(int timeout_ms = 15000) const;
  // What of a zone's policy shapes its tasks' roots (TaskSpec's fields of the same names).
  struct PreparedRoot {
    std::vector<std::string> writable_paths;
    std::vector<std::string> devices;
    std::string zone_address;
  };
  // A task process made ahead in these cgroups for the zone's next task (warm pool; the
  // shim's "prepare"): the task then skips the v1 cgroup joins, and the compilation of its
  // seccomp filter for `seccomp_deny` (its TaskSpec.seccomp_deny); with `root`, the building
  // of its root but for the request's mounts (rauha-shim/root_ahead.h). Returns its pid.
  absl::StatusOr<int64_t> Prepare(const std::string& cgroup_v2,
                                  const std::vector<std::string>& cgroup_v1,
                                  const std::vector<std::string>& seccomp_deny,
                                  const PreparedRoot* root = nullptr, int timeout_ms = 15000) const;

  const std::string& socket_path() const { return socket_path_; }

 private:
  std::string socket_path_;
};

// A task started and waited for on one connection of its own: the "wait" request is sent
// with the "start" (one write; the shim takes a connection's requests in order), so the task's
// result, and its denials as they happen, come on that connection with no second connect or
// round trip. With `stream` ("start" with "stream", shim_protocol.h) its output comes too, from
// its first byte, none of it dropped, and a caller that reads slowly slows the task down (the
// shim stops reading its pipes) instead of losing output.
class ShimTaskStream {
 public:
  explicit ShimTaskStream(std::string socket_path, bool stream = true)
      : socket_path_(std::move(socket_path)), stream_(stream) {}

  // As ShimClient::Start. `after_send` runs once the request is on its way, before the reply
  // is awaited: the caller's own work there overlaps the shim's.
  absl::StatusOr<int64_t> Start(const shim::TaskSpec& spec,
                                const std::function<bool()>& cancelled = nullptr,
                                int timeout_ms = 30000,
                                const std::function<void()>& after_send = nullptr);
  // The task's output (is_stderr, bytes) as the shim reads it and its live denials, on the
  // calling thread, then its result. `timeout_ms` < 0: no bound but `cancelled`.
  absl::StatusOr<shim::TaskResult> Wait(
      const std::string& task_id, const std::function<void(bool, std::string_view)>& on_output,
      const std::function<void(const EnforcementEvent&)>& on_event,
      const std::function<bool()>& cancelled, int timeout_ms = -1, const ShimWake* wake = nullptr);
  // Gives up the stream: the shim stops pacing the task by it (a task whose output nobody
  // reads any more would otherwise wait for this connection).
  void Close() { conn_.reset(); }

 private:
  std::string socket_path_;
  bool stream_;
  UniqueFd conn_;
  uint64_t wait_id_ = 0;  // the request id of the wait sent with the start
};

}  // namespace rauha
