// Validation of a TaskSpec into a TaskPlan: everything the child process needs, checked in
// the shim (so a bad spec is an "invalid_argument" reply, not a half-built task) and resolved
// to kernel numbers (capabilities, rlimits) and normalised paths.
#pragma once

#include <sys/resource.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "rauha-common/path_open.h"
#include "rauha-common/shim_protocol.h"
#include "rauha-shim/seccomp.h"

namespace rauha::shim {

// What the zone gives every task.
struct ZoneContext {
  std::string state_dir;
  std::string hostname;
  bool isolated_network = true;
  int userns_fd = -1;         // the zone's user namespace (zone.h), or -1: host ids
  uint32_t userns_first = 0;  // the host id of the zone's uid/gid 0
};

// Kubelet's termination message file in a container's root (a bind of a regular host file).
inline constexpr char kTerminationLogTarget[] = "/dev/termination-log";

struct PlannedMount {
  std::string source;  // host path
  std::string target;  // normalised path inside the task's root
  bool readonly = false;
  bool is_dir = true;
  bool create = true;  // false: the target already exists (under a read-only system dir)
  // Set when rauhad checked the source: mount only this object (see shim::Mount).
  std::optional<FileIdentity> pinned;
  // In a zone with a user namespace: the source's owner (as the host sees it), shown inside as
  // the task's own user through an idmapped mount whose user namespace is `idmap_fd` (owned by
  // the shim; -1 until Server::Start fills it).
  uid_t owner_uid = 0;
  gid_t owner_gid = 0;
  int idmap_fd = -1;
};

struct TaskPlan {
  std::string task_id;
  std::vector<std::string> argv;        // empty for a probe task
  bool probe = false;                   // run probe.h's probes instead of exec
  std::vector<std::string> probe_skip;  // probes not to attempt
  std::vector<std::string> env;
  std::string workdir;
  std::string cgroup_v2;
  std::vector<std::string> cgroup_v1;
  // The zone's state dir: the task's tmpfs (its root and scratch) is mounted on it in the
  // task's own mount namespace, covering it there and nowhere else (no directory per task).
  std::string rootfs_dir;
  std::string hostname;
  bool isolated_network = true;
  std::string zone_address;               // bridged zones: /etc/hosts names the hostname with it
  bool root_writable = false;             // "/" among the writable paths
  std::vector<std::string> overlay_dirs;  // host system dirs shown through a discarded overlay
  std::vector<std::string> scratch_dirs;  // empty tmpfs at each
  std::vector<std::string> tmp_dirs;      // created inside the task's /tmp
  std::vector<PlannedMount> mounts;       // parents before children
  std::vector<std::string> devices;       // present on the host, bound in
  std::vector<int> capabilities;          // kept; every other one is dropped
  std::vector<std::pair<int, rlimit>> rlimits;
  bool no_new_privs = true;
  std::shared_ptr<const SeccompProgram> seccomp;  // null: no filter
  int landlock_abi = 0;                           // 0: Landlock not applied
  std::vector<std::string> exec_allowed;          // normalised; empty: exec anywhere
  uint64_t timeout_ms = 0;
  uint64_t kill_after_ms = 0;
  uint64_t output_limit = kDefaultOutputLimit;
  std::string output_dir;     // normalised host path, or "" (TaskSpec.output_dir)
  std::string stdin_data;     // "": /dev/null
  int userns_fd = -1;         // the zone's user namespace: joined last, before capabilities
  uint32_t userns_first = 0;  // host id of the zone's uid/gid 0 (tmpfs roots belong to it)
  bool switch_user = false;   // setgroups(0), setresgid(gid), setresuid(uid) in the workload
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<std::string> warnings;
  std::vector<std::string> layers;  // for TaskResult.layers
  // The image's layer directories, top first: "/" is an overlay of them (rootfs.h). The host's
  // system directories and /etc are then not shown.
  std::vector<std::string> image_layers;
  // TaskSpec.rootfs, normalised: the task's root is a bind of this host directory (writable),
  // not the built view; "" otherwise.
  std::string image_root;
  // TaskSpec.*_path, normalised host paths the workload's stdio is opened from ("": default).
  std::string stdin_path;
  std::string stdout_path;
  std::string stderr_path;
  std::string image_upper;  // host dir of a kept upper layer (TaskSpec.image_upper), or ""
  bool image_upper_volatile = false;  // that upper is never synced (TaskSpec)
  std::string log_path;               // normalised host path, or "" (TaskSpec.log_path)
  uint64_t log_max_bytes = 0;
  bool stdin_pipe = false;
  bool tty = false;
  bool stdin_is_terminal = false;  // TaskSpec.stdin_is_terminal
  uint16_t tty_rows = 0;
  uint16_t tty_cols = 0;
  // An exec: the running task whose mount and pid namespaces the child joins (the server
  // fills join_pidfd, its init's pidfd, while the plan is used). No root is built.
  std::string join_task;
  int join_pidfd = -1;
};

// The host directories the task sees (read-only unless made writable): a symlink on the host
// (merged /usr) is recreated as the same symlink.
inline constexpr const char* kSystemDirs[] = {"/usr",   "/bin",   "/sbin",  "/lib",
                                              "/lib32", "/lib64", "/libx32"};

// InvalidArgument naming the field for anything the shim will not do.
absl::StatusOr<TaskPlan> PlanTask(const TaskSpec& spec, const ZoneContext& zone);

// "/a//b/./c/" -> "/a/b/c"; relative paths and ".." are InvalidArgument (`what` names the
// field in the message).
absl::StatusOr<std::string> NormalizePath(std::string_view path, std::string_view what);

}  // namespace rauha::shim
