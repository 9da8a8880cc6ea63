// The messages rauhad and rauha-shim exchange over frame.h framing.
//
// Request:  {"id": <uint64>, "method": "<name>", "params": {...}}
// Response: {"id": <same>, "ok": true, "result": {...}}
//        or {"id": <same>, "ok": false, "error": {"code": "<code>", "message": "..."}}
// where <code> is an absl status code name in snake case ("invalid_argument", "not_found",
// "failed_precondition", "internal", ...). One connection may carry many requests; the shim
// answers each on the connection it came from, possibly out of order ("wait" blocks).
//
// Methods:
//   hello    {}                          -> ShimHello
//   start    TaskSpec                    -> {"task_id", "pid"}   (pid in the shim's pid ns)
//   wait     {"task_id"}                 -> TaskResult           (answers once the task ended)
//            and, before the response, unsolicited event frames on the same connection:
//            {"event": EnforcementEvent, "task_id": "<id>"}  (no "id"; one per denial, as it
//            happens; best effort: dropped while the connection's unsent output exceeds 1 MiB.
//            The TaskResult's enforcement_events are complete up to kMaxTaskEvents.)
//   kill     {"task_id", "signal"}       -> {}                    (whole task: its pid namespace)
//   list     {}                          -> {"tasks": [TaskStatus...]}
//   forget   {"task_id"}                 -> {}                    (drop a finished task's result)
//   shutdown {}                          -> {}                    (kill every task, then exit)
//   stdin    {"task_id", "data_base64", "eof"} -> {}              (TaskSpec.stdin_pipe / tty)
//   resize   {"task_id", "rows", "cols"} -> {}                    (TaskSpec.tty)
//   prepare  {"cgroup_v2", "cgroup_v1": [...], "seccomp_deny"?: [...],
//             "root"?: {"writable_paths"?, "devices"?, "zone_address"?}} -> {"pid"}
//            (warm pool: a task process made ahead in those cgroups; the next "start" in them
//            uses it. rauha-shim/prepared_task.h. With "seccomp_deny", the filter a task with
//            that TaskSpec.seccomp_deny gets is compiled now, not at its start. With "root"
//            (TaskSpec's fields of those names), the process builds a task's root for them
//            now, and a start whose root is that one gets only its mounts attached:
//            rauha-shim/root_ahead.h)
//
// A "wait" with "stream": true also gets the task's output as it is read, as unsolicited
// frames {"output": "<base64>", "stream": "stdout"|"stderr", "task_id"} before the response
// (dropped, like event frames, while the connection's unsent output exceeds its backlog).
//
// A "start" whose params also hold "stream": true makes its connection a streamer of the task
// from its first byte (before any output is read), to be followed by "wait" with "stream" on
// the same connection. Such a streamer is paced: its output frames are never dropped; while
// more than the backlog is unsent to it the shim stops reading the task's output, so the
// workload blocks on its full pipe (or terminal) until the connection drains or closes.
// A "wait" with "stream" and "paced": true makes its connection such a paced streamer from
// then on (what was read before comes first with "replay", up to the kept output).
//
// The shim keeps finished tasks' results until "forget", so rauhad can collect them after
// it restarts.
//
// A TaskSpec with "probe": true runs no command: its workload process, confined exactly as a
// real one up to the exec, runs the shim's built-in probes (rauha-shim/probe.h) and writes
// one JSON array of ProbeResult to stdout, then exits 0.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "rauha-common/enforcement_event.h"

namespace rauha::shim {

inline constexpr uint64_t kDefaultOutputLimit = 1u << 20;  // bytes kept per stream
// The kept head of a task's stdout or stderr, which the shim also writes to this file of
// TaskSpec.output_spool_dir as the task produces it: rauhad reads it when the shim dies before
// reporting. The shim removes it with the task (forget, or its own clean exit).
inline std::string TaskOutputSpoolPath(const std::string& spool_dir, const std::string& task_id,
                                       bool is_stderr) {
  return spool_dir + "/" + task_id + (is_stderr ? ".stderr" : ".stdout");
}
// Enforcement events kept in one TaskResult; the rest are only counted.
inline constexpr size_t kMaxTaskEvents = 4096;

struct Mount {
  std::string source;  // host path
  std::string target;  // path inside the task's root
  bool readonly = false;
  // Identity (st_dev, st_ino) rauhad checked the source by; when set, the shim opens the source
  // without following symlinks and mounts it only if it is still that object. 0/0: not pinned.
  uint64_t source_dev = 0;
  uint64_t source_ino = 0;
};

struct Rlimit {
  std::string resource;  // "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CORE", ...
  uint64_t soft = 0;
  uint64_t hard = 0;
};

// Everything the shim needs to start one workload process.
struct TaskSpec {
  std::string task_id;
  std::vector<std::string> argv;            // argv[0] is looked up in PATH inside the root
  std::vector<std::string> env;             // "K=V"
  std::string workdir = "/";                // inside the task's root
  std::string cgroup_v2;                    // v2 dir, joined with CLONE_INTO_CGROUP ("" none)
  std::vector<std::string> cgroup_v1;       // v1 dirs, joined via cgroup.procs before exec
  std::vector<Mount> mounts;                // e.g. the repo at /workspace
  std::vector<std::string> writable_paths;  // fresh tmpfs at each; everything else read-only
  std::vector<std::string> devices;         // "/dev/null", ... (bound from the host)
  std::vector<std::string> capabilities;    // "CAP_*" kept; every other one dropped
  std::vector<Rlimit> rlimits;
  bool no_new_privs = true;
  // seccomp: the shim's default deny list plus these syscall names (policy [syscalls].deny);
  // false installs no filter. Landlock: writes only beneath the task's writable paths, no
  // signals or abstract unix sockets out of the task. Both apply to the workload only.
  bool seccomp = true;
  std::vector<std::string> seccomp_deny;
  bool landlock = true;
  // 0: none. At the timeout every process of the task gets SIGTERM (result timed_out), and
  // SIGKILL kill_after_ms later if the task has not ended (0: SIGKILL at once).
  uint64_t timeout_ms = 0;
  uint64_t kill_after_ms = 0;
  uint64_t output_limit = kDefaultOutputLimit;
  // Host directory that receives the complete output as files "stdout" and "stderr" ("": none).
  std::string output_dir;
  // Host directory (rauhad's, outside the zone's run dir, which goes with a dead shim) where
  // the kept output is spooled (TaskOutputSpoolPath; "": not spooled).
  std::string output_spool_dir;
  std::string stdin_data;  // the workload's stdin ("": /dev/null); on the wire "stdin_base64"
  // Run the workload as this uid and gid, supplementary groups cleared (-1: stay root). A
  // non-zero uid loses every capability (the kernel's rule for setuid away from root).
  int64_t uid = -1;
  int64_t gid = -1;
  std::string zone_address;  // bridged zones: IPv4 literal named after the zone in /etc/hosts
  // Run the built-in probes instead of argv (which may then be empty); see above.
  bool probe = false;
  // Probes not to attempt, because the zone's policy allows what they try (rauhad decides):
  // the egress probe of a host-network zone, whose packet would leave the machine.
  std::vector<std::string> probe_skip;
  // Landlock: programs may be executed only beneath these paths (inside the task's root); empty:
  // anywhere. The dynamic loader stays executable. Needs Landlock (refused without it).
  std::vector<std::string> exec_allowed;
  // An image's unpacked layer directories (host paths, top layer first): the task's root is
  // an overlay of them with a private upper directory that vanishes with the task. Empty: the
  // read-only view of the host's system directories.
  std::vector<std::string> image_layers;
  // A root filesystem already mounted on the host (containerd's <bundle>/rootfs): the task runs
  // on it, writable, with a fresh /proc, /dev and /tmp; "" builds the default read-only view.
  std::string rootfs;
  // Host paths (containerd's FIFOs) the workload's stdin, stdout and stderr are opened from,
  // instead of the captured pipes ("" keeps that stream's default). Output sent there is not
  // in the TaskResult.
  std::string stdin_path;
  std::string stdout_path;
  std::string stderr_path;
  // With image_layers: a host directory holding the overlay's "upper" and "work" directories
  // (made if missing), kept after the task (a container's writable layer). "": a private
  // upper on the task's tmpfs that vanishes with it.
  std::string image_upper;
  // With image_upper: the overlay never syncs the upper to disk (overlayfs "volatile", 5.10+;
  // ignored where the kernel lacks it): for an upper thrown away after the task, whose unmount
  // as the last process exits would otherwise be a syncfs of the file system holding it, waited
  // for before the exit is seen (eval/bench/README.md). A crash leaves such an upper
  // unmountable. rauhad's containers removed at their exit have no image_upper at all (a
  // private upper on the task's tmpfs), so it sets this for none today.
  bool image_upper_volatile = false;
  // A host file that receives the output as lines "<RFC 3339 nano> <stdout|stderr> <F|P>
  // <text>" (the CRI log format; P: a partial line), written by the shim whoever listens, and
  // rotated to "<log_path>.1" when it passes log_max_bytes (0: never).
  std::string log_path;
  uint64_t log_max_bytes = 0;
  // stdin is a pipe the shim holds open ("stdin" requests write to it) instead of stdin_data.
  bool stdin_pipe = false;
  // stdin, stdout and stderr are a new terminal (the workload its session's controlling
  // terminal); output comes as "stdout"; "resize" sets its size.
  bool tty = false;
  uint32_t tty_rows = 0;
  uint32_t tty_cols = 0;
  // Run inside the mount and pid namespaces of this running task of the zone (an exec into a
  // container) instead of a new root: image_layers, mounts and writable paths do not apply.
  std::string join_task;
  // stdin_path names a terminal the caller holds the master of (containerd's TTY processes):
  // the workload makes it its controlling terminal, as with `tty`.
  bool stdin_is_terminal = false;
};

// What became of one task.
struct TaskResult {
  std::string task_id;
  int64_t pid = 0;
  std::optional<int> exit_code;  // set when it exited
  std::optional<int> signal;     // set when a signal ended it
  bool timed_out = false;
  bool killed_after_grace = false;  // timed out and still there kill_after_ms after SIGTERM
  bool killed = false;              // ended by a "kill" request or shutdown
  std::string start_error;          // non-empty: it never ran ("exec foo: No such file...")
  // Raw bytes (on the wire as base64, "stdout_base64"; an older shim's "stdout" is read too).
  std::string stdout_data;
  std::string stderr_data;
  bool stdout_truncated = false;
  bool stderr_truncated = false;
  int64_t started_at_ns = 0;  // CLOCK_REALTIME
  int64_t finished_at_ns = 0;
  uint64_t cpu_user_us = 0;  // rusage of the task and its reaped descendants
  uint64_t cpu_system_us = 0;
  uint64_t max_rss_kb = 0;
  std::vector<std::string> warnings;  // e.g. a policy device the host does not have
  std::vector<std::string> layers;    // kernel layers applied, "seccomp: 52 syscalls denied"
  // Denials the shim saw (seccomp user notifications), in order; complete, since the shim
  // answers each before the syscall returns, up to kMaxTaskEvents; the rest are counted here.
  std::vector<EnforcementEvent> enforcement_events;
  uint64_t enforcement_events_lost = 0;
};

// One probe of a probe task: an action a confined workload must not be able to do.
struct ProbeResult {
  std::string name;        // "mount", "network.egress", ...
  bool refused = false;    // the kernel refused it (or the object was not reachable)
  std::string errno_name;  // "EPERM", ... ("" when it succeeded); JSON key "errno"
  std::string detail;      // "mount(tmpfs, /tmp/.rauha-probe) failed: Operation not permitted"
  bool skipped = false;    // not attempted (TaskSpec.probe_skip)
};

struct TaskStatus {
  std::string task_id;
  int64_t pid = 0;
  bool running = true;
  int64_t started_at_ns = 0;
};

struct ShimHello {
  std::string zone_id;
  int64_t pid = 0;
  std::string version;
  std::vector<TaskStatus> tasks;
};

nlohmann::json ToJson(const TaskSpec& spec);
nlohmann::json ToJson(const TaskResult& result);
nlohmann::json ToJson(const TaskStatus& status);
nlohmann::json ToJson(const ShimHello& hello);
nlohmann::json ToJson(const ProbeResult& probe);

// Strict: wrong types and missing required fields are InvalidArgument naming the field.
absl::StatusOr<TaskSpec> TaskSpecFromJson(const nlohmann::json& j);
absl::StatusOr<TaskResult> TaskResultFromJson(const nlohmann::json& j);
absl::StatusOr<TaskStatus> TaskStatusFromJson(const nlohmann::json& j);
absl::StatusOr<ShimHello> ShimHelloFromJson(const nlohmann::json& j);
// A probe task's stdout: one JSON array of ProbeResult.
absl::StatusOr<std::vector<ProbeResult>> ProbeResultsFromJson(std::string_view text);

// The unsolicited frame a "wait" connection gets for each denial in its task.
nlohmann::json MakeEventFrame(std::string_view task_id, const EnforcementEvent& event);
// True for such a frame (it has "event" and no "id").
bool IsEventFrame(const nlohmann::json& frame);

nlohmann::json MakeRequest(uint64_t id, std::string_view method, nlohmann::json params);
nlohmann::json MakeOkResponse(uint64_t id, nlohmann::json result);
nlohmann::json MakeErrorResponse(uint64_t id, const absl::Status& status);
// The result of a response, or its error as a Status with the original code.
absl::StatusOr<nlohmann::json> ParseResponse(const nlohmann::json& response);

}  // namespace rauha::shim
