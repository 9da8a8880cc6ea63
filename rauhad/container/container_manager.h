// Containers in zones (ContainerService): each runs as a task of its zone's shim, under the
// zone's policy like any task (ZoneTaskSpec), with its own mount and pid namespaces, on an
// overlay of its image's layers with an upper directory of its own that lasts until the
// container is deleted, and its output in a log the shim writes (rotated). The shim holds the
// process, so a container outlives a rauhad crash; Recover picks it up again. An exec is a
// task that joins the container's namespaces.
//
// Identifiers are the containers' UUIDs (ResolveId gives InvalidArgument for anything else,
// NotFound for an unknown one); names and prefixes are the CLI's business.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "rauha-common/shim_protocol.h"
#include "rauhad/audit/recorder.h"
#include "rauhad/config.h"
#include "rauhad/container/container.h"
#include "rauhad/container/output_hub.h"
#include "rauhad/container/removal_queue.h"
#include "rauhad/event_bus.h"
#include "rauhad/image/image_store.h"
#include "rauhad/pool/warm_pool.h"
#include "rauhad/shim_client.h"
#include "rauhad/store/store.h"
#include "rauhad/task_runner.h"
#include "rauhad/task_secrets.h"
#include "rauhad/zone_manager.h"

namespace rauha::container {

struct CreateRequest {
  std::string zone_name;  // "": a temporary zone of its own, deleted with the container
  std::string name;       // "": generated
  std::string image;
  std::vector<std::string> command;  // "": the image's Entrypoint + Cmd (args replace Cmd)
  std::map<std::string, std::string> env;
  std::string working_dir;
  bool tty = false;
  bool open_stdin = false;
  bool auto_remove = false;
};

// A container's view for responses: its record, with Paused when its zone is.
struct ContainerView {
  Container c;
  std::string state;
};

// An exec started in a running container: the shim that runs it and its task id; with
// ExecRequest::paced, the stream it was started on (wait for it there).
struct ExecHandle {
  std::string shim_socket;
  std::string task_id;
  std::shared_ptr<ShimTaskStream> stream;
};

// How a container ended (WaitContainer).
struct ExitRecord {
  int exit_code = 0;
  std::string finished_at;
  bool removed = false;  // auto-removed at its exit
};

// Wakes log followers when a container's output grows or its state changes: the shim appends
// to the log before it sends the same bytes to rauhad's watcher, so a follower woken by the
// watcher finds them in the file.
class ChangeSignal {
 public:
  void Bump();
  // Blocks until a Bump after the one `*seen` last recorded, or `wait_ms`; records it.
  void WaitPast(uint64_t* seen, int wait_ms);
  uint64_t Current();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t seq_ = 0;
};

class ContainerManager;

// A client following a container's log (ContainerLogs with follow). While it lives, an
// auto-removed container waits for it before its log goes (up to kFollowerGraceS).
class LogFollow {
 public:
  LogFollow(ContainerManager* manager, std::string id, std::shared_ptr<ChangeSignal> signal,
            bool wait_for_start);
  ~LogFollow();
  LogFollow(const LogFollow&) = delete;
  LogFollow& operator=(const LogFollow&) = delete;
  // Whether more may be written: it runs, or it is Created and the follow waits for its start.
  bool MoreMayCome();
  // Blocks until new output or a state change since the last call, or `wait_ms`.
  void WaitForChange(int wait_ms) { signal_->WaitPast(&seen_, wait_ms); }

 private:
  ContainerManager* manager_;
  std::string id_;
  std::shared_ptr<ChangeSignal> signal_;
  uint64_t seen_;
  bool wait_for_start_;
};

struct ExecRequest {
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  bool tty = false;
  bool stdin_pipe = false;
  uint32_t rows = 0, cols = 0;
  // Started on a stream of its own (ExecHandle::stream): all of its output from the first
  // byte, and a reader that falls behind holds the process back instead of losing output.
  bool paced = false;
};

class ContainerManager {
 public:
  ContainerManager(DaemonConfig config, store::Store* store, ZoneManager* zones, TaskRunner* runner,
                   image::ImageStore* images, EventBus* events);
  ~ContainerManager();
  // Container lifecycle records in the audit log (none when unset).
  void set_recorder(audit::Recorder* recorder) { recorder_ = recorder; }
  audit::Recorder* recorder() const { return recorder_; }
  // Containers of zones with [secrets] get them as sandbox tasks do (task_secrets.h): each
  // start gets placeholders of its own, valid until its process ends; its execs get the same.
  void set_secrets(secrets::SecretStore* store, egress::EgressProxy* proxy) {
    secret_store_ = store;
    proxy_ = proxy;
  }
  // A container without a zone takes one of the default policy from the warm pool when one
  // is ready (set up ahead, its task process prepared), and its zone is retired through the
  // pool (deleted off the request path). Null: zones are created and deleted in the call.
  void set_pool(WarmPool* pool) { pool_ = pool; }

  absl::StatusOr<ContainerView> Create(const CreateRequest& req);
  // Created or Stopped -> Running. Running: nothing to do.
  absl::Status Start(const std::string& id);
  // SIGTERM to the process, SIGKILL `timeout_s` later if it still runs (0: 10 s); returns
  // once it stopped. A container that is not running: nothing to do.
  absl::Status Stop(const std::string& id, uint32_t timeout_s);
  // Sends `signo` (1 to SIGRTMAX; InvalidArgument otherwise) to the container's process and
  // returns; FailedPrecondition when it is not running.
  absl::Status Kill(const std::string& id, int signo);
  // A running container needs `force` (it is SIGKILLed). Removes its upper layer, log and
  // record, and its temporary zone.
  absl::Status Delete(const std::string& id, bool force);
  absl::StatusOr<ContainerView> Get(const std::string& id);
  // "": every zone's. NotFound for a zone that does not exist.
  absl::StatusOr<std::vector<ContainerView>> List(const std::string& zone_name);
  // Blocks until the container is Stopped (a Created one: until it has run and stopped), or
  // `cancelled`. An auto-removed container is answered from memory for its last
  // kRemovedExitsKept removals.
  absl::StatusOr<ExitRecord> Wait(const std::string& id, const std::function<bool()>& cancelled);
  // The directory holding the container's log ("container.log", "container.log.1").
  absl::StatusOr<std::string> LogDir(const std::string& id);
  bool IsRunning(const std::string& id);
  // Registers a follower of the container's log (see LogFollow).
  absl::StatusOr<std::unique_ptr<LogFollow>> FollowLog(const std::string& id, bool wait_for_start);

  static constexpr size_t kRemovedExitsKept = 256;
  // How long an auto-removed container waits for its log's followers to finish reading.
  static constexpr int kFollowerGraceS = 30;

  // Its live output from now on (and through its next start while it is Created).
  // FailedPrecondition for a stopped container.
  absl::StatusOr<std::shared_ptr<OutputSubscription>> Attach(const std::string& id);
  void Detach(const std::string& id, const std::shared_ptr<OutputSubscription>& sub);
  // Input to the container's process (open_stdin) or terminal; `eof` closes a pipe. A
  // Resize of a container that is not running sets its terminal's size at the next start.
  absl::Status WriteStdin(const std::string& id, std::string_view data, bool eof);
  absl::Status Resize(const std::string& id, uint32_t rows, uint32_t cols);

  // Exec: a process that joins the running container's namespaces, as its user, in its
  // working directory, with its environment under `req.env`. The caller waits for it
  // (ShimClient) and forgets it afterwards (FinishExec).
  absl::StatusOr<ExecHandle> StartExec(const std::string& id, const ExecRequest& req);
  void FinishExec(const ExecHandle& exec);
  // StartExec + wait + FinishExec: ExecInContainer.
  absl::StatusOr<shim::TaskResult> RunExec(const std::string& id, const ExecRequest& req,
                                           const std::function<bool()>& cancelled);

  // After ZoneManager::Recover: containers that were running when rauhad stopped are watched
  // again (or marked stopped when their zone or shim is gone). Starts the removal of deleted
  // containers' directories (and of those a crash left half removed).
  void Recover();
  // rauhad stops: ends the watchers (the containers keep running in their shims), then
  // finishes removing deleted containers' directories.
  void Shutdown();
  // How many containers `zone_id` holds (ZoneInfo.container_count).
  uint32_t CountInZone(const std::string& zone_id);
  std::vector<std::string> IdsInZone(const std::string& zone_id);

 private:
  friend class LogFollow;
  struct Entry {
    Container c;
    std::unique_ptr<image::ImageStore::Lease> lease;
    OutputHub output;
    std::shared_ptr<ChangeSignal> changes = std::make_shared<ChangeSignal>();
    int log_followers = 0;
    bool removing = false;     // its files and zone are being removed; the entry goes last
    bool pooled_zone = false;  // its temporary zone came from the warm pool (this rauhad's)
    uint32_t start_rows = 0, start_cols = 0;  // a Resize before the start (0: the default)
    std::thread watcher;
    bool watching = false;
    // While it runs: its secrets' grant, and what the grant put in its environment (for execs).
    std::unique_ptr<TaskSecrets> secrets;
    std::map<std::string, std::string> secret_env;
  };

  // Validates the id: InvalidArgument for a non-UUID, NotFound for an unknown one. mu_ held.
  absl::StatusOr<Entry*> FindLocked(const std::string& id);
  std::string DirOf(const std::string& id) const;
  ContainerView ViewOf(const Container& c);
  absl::Status Persist(const Container& c);  // logs nothing; the caller decides
  // Watches the running container's process until it ends, then records its exit, its
  // output paced by the attached clients. `paced`: the stream it was started on; null after a
  // restart of rauhad (a paced wait of its own).
  void Watch(const std::string& id, const std::string& shim_socket,
             std::shared_ptr<ShimTaskStream> paced);
  // `persist`: false for a container removed right after (RemoveStopped deletes its record)
  // whose shim keeps the task's result: its record stays Running, and a rauhad that dies before
  // the removal leaves the next one to watch it again, collect the same exit and remove it.
  void RecordExit(const std::string& id, std::optional<int> exit_code, const std::string& why,
                  bool persist = true);
  // An auto_remove container has stopped: once its log's followers are done, it goes.
  void AutoRemove(const std::string& id);
  // Removes a container that is not running: record, files, temporary zone. Joins its
  // watcher unless called on it.
  // `how`: "delete", "force" or "auto_remove", for the audit record.
  absl::Status RemoveStopped(const std::string& id, const std::string& how);
  // Deletes a container's temporary zone: through the pool (off the request path) when there
  // is one.
  void RemoveZone(const std::string& zone_name, bool pooled);
  // The shim socket of the container's zone, if the zone is alive.
  absl::StatusOr<std::string> ShimSocketOf(const Container& c);

  DaemonConfig config_;
  store::Store* store_;
  ZoneManager* zones_;
  TaskRunner* runner_;
  image::ImageStore* images_;
  EventBus* events_;
  audit::Recorder* recorder_ = nullptr;
  secrets::SecretStore* secret_store_ = nullptr;
  egress::EgressProxy* proxy_ = nullptr;
  WarmPool* pool_ = nullptr;
  RemovalQueue removals_;
  std::mutex mu_;
  std::condition_variable cv_;  // a container's state changed
  std::map<std::string, std::unique_ptr<Entry>> entries_;
  std::deque<std::pair<std::string, ExitRecord>> removed_exits_;  // newest last
  std::vector<std::thread> reaped_;  // watchers that removed their own container
  std::atomic<bool> shutting_down_{false};
};

}  // namespace rauha::container
