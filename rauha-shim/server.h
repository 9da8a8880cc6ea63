// The shim's single-threaded event loop: one epoll over the control socket, client
// connections (frame.h framing, shim_protocol.h messages), the signalfd (SIGTERM/SIGINT mean
// "shutdown"), and each task's pidfd, stdout/stderr pipes and seccomp listener (each denial is
// answered EPERM, kept in the task's result and sent live to its "wait" connections);
// timeouts come from the epoll wait. Requests are answered on the connection they came on; "wait"
// is answered when the task has ended. Results stay until "forget", so a reconnecting rauhad can
// collect them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "nlohmann/json.hpp"
#include "rauha-common/fd.h"
#include "rauha-common/frame.h"
#include "rauha-common/shim_protocol.h"
#include "rauha-shim/options.h"
#include "rauha-shim/prepared_task.h"
#include "rauha-shim/seccomp_notify.h"
#include "rauha-shim/task_plan.h"

namespace rauha::shim {

class Server {
 public:
  // `listener` is a listening non-blocking socket; `signals` a signalfd for SIGTERM, SIGINT
  // and SIGCHLD (blocked by the caller); `userns` the zone's user namespace or empty (zone.h).
  Server(const Options& options, UniqueFd listener, UniqueFd signals, UniqueFd userns = {});
  ~Server();

  // Runs until "shutdown" or SIGTERM/SIGINT, every task then killed and reaped (bounded).
  // Returns the process exit code.
  int Run();

 private:
  struct Conn;
  struct Task;

  void Accept();
  void OnConnReadable(uint64_t serial);
  void Flush(Conn& c);
  void CloseConn(uint64_t serial);
  void OnSignal();
  void HandleRequest(uint64_t conn, const nlohmann::json& request);
  void Reply(uint64_t conn, uint64_t id, const absl::StatusOr<nlohmann::json>& result);

  absl::StatusOr<nlohmann::json> Start(const nlohmann::json& params);
  // A task process made ahead in the given cgroups (prepared_task.h), for the next "start".
  absl::StatusOr<nlohmann::json> Prepare(const nlohmann::json& params);
  absl::StatusOr<nlohmann::json> Kill(const nlohmann::json& params);
  absl::StatusOr<nlohmann::json> Forget(const nlohmann::json& params);
  // Input for a task's stdin pipe or terminal, written as it can take it.
  absl::StatusOr<nlohmann::json> Stdin(const nlohmann::json& params);
  absl::StatusOr<nlohmann::json> Resize(const nlohmann::json& params);
  void FlushStdin(Task& t);
  // One output frame to each "wait" connection that asked for the output live.
  void SendOutput(Task& t, bool is_stderr, std::string_view data);
  // Pacing of "start" with "stream" (Task::paced): whether one of its paced streamers is
  // behind, stopping / restarting the reading of its output, and restarting every paused task
  // whose streamers caught up.
  bool PacedStreamerBehind(const Task& t) const;
  void PauseOutput(Task& t, bool pause);
  void ResumePacedOutput();
  nlohmann::json Hello() const;
  nlohmann::json List() const;
  absl::StatusOr<Task*> FindTask(const nlohmann::json& params) const;

  void OnTaskExit(Task& t);
  void OnTaskOutput(Task& t, bool is_stderr);
  void WriteOutputFile(Task& t, UniqueFd& file, bool is_stderr, std::string_view data);
  void FinishTask(Task& t);
  void OnNotification(Task& t, uint32_t events);
  void RecordDenial(Task& t, const SeccompDenial& denial);
  void CloseListener(Task& t);
  void CheckDeadlines();
  int NextTimeoutMs() const;
  void BeginShutdown(uint64_t conn, uint64_t id);
  bool ShutdownComplete();

  // The user namespace of an idmapped mount showing files of host owner `owner_*` as the
  // task's user `task_*` (made once per pair, kept for the zone's life).
  absl::StatusOr<int> IdmapFor(uid_t owner_uid, gid_t owner_gid, uid_t task_uid, gid_t task_gid);

  void Watch(int fd, uint64_t tag, uint32_t events);
  void Unwatch(int fd);

  Options options_;
  ZoneContext zone_;
  UniqueFd listener_;
  UniqueFd signals_;
  UniqueFd userns_;
  std::map<std::tuple<uid_t, gid_t, uid_t, gid_t>, UniqueFd> idmaps_;
  UniqueFd epoll_;
  uint64_t next_serial_ = 1;
  std::map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::map<std::string, std::unique_ptr<Task>> tasks_;
  std::map<uint64_t, Task*> tasks_by_serial_;
  std::optional<PreparedTask> prepared_;
  int paused_tasks_ = 0;  // tasks with output_paused
  bool shutting_down_ = false;
  int64_t shutdown_deadline_ms_ = 0;
  std::vector<std::pair<uint64_t, uint64_t>> shutdown_replies_;  // (conn, request id)
};

}  // namespace rauha::shim
