// Runs one command in a zone and returns its SandboxResult: the RunSandbox contract. The task
// outlives a rauhad restart (its shim holds it); WaitTask collects it afterwards.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "rauha-common/shim_protocol.h"
#include "rauha/v1/sandbox.pb.h"
#include "rauhad/audit/recorder.h"
#include "rauhad/call_gate.h"
#include "rauhad/config.h"
#include "rauhad/event_bus.h"
#include "rauhad/host_path.h"
#include "rauhad/image/image_config.h"
#include "rauhad/image/image_store.h"
#include "rauhad/image/layer_cache.h"
#include "rauhad/secrets/secret_store.h"
#include "rauhad/store/store.h"
#include "rauhad/zone_manager.h"

namespace rauha {

class WarmPool;
class ShimTaskStream;

// The task of a streaming Run (RunSandboxStream) once it runs.
struct StartedTask {
  std::string task_id;
  std::string zone_id;
  std::string zone_name;
  std::string shim_socket;  // for its stdin, resize and signals (ShimClient)
  int64_t pid = 0;
};

// What a streaming Run adds: the task's terminal or stdin pipe, and the task live. The
// callbacks run on Run's thread, in order: on_started once, then output and events as they
// come (a callback that blocks holds the task's output back, never drops it).
struct TaskStream {
  bool tty = false;
  bool stdin_pipe = false;  // (a terminal is the task's stdin already)
  uint32_t rows = 0;
  uint32_t cols = 0;
  std::function<void(const StartedTask&)> on_started;
  std::function<void(bool is_stderr, std::string_view data)> on_output;
  // Denials as they happen: the shim's (seccomp) and the kernel's (cgroup-bpf, nftables);
  // the result holds every event anyway.
  std::function<void(const rauha::sandbox::v1::EnforcementEventSummary&)> on_event;
};

// What a probe task (VerifyIsolation by trying) saw: each probe's outcome and every
// enforcement event it caused.
struct ProbeOutcome {
  std::vector<shim::ProbeResult> probes;
  std::vector<EnforcementEvent> events;
};

// What every process in `zone` gets from its policy (cgroups, writable paths, devices,
// capabilities, rlimits, seccomp, Landlock, exec rules) and rauhad's environment defaults; the
// caller sets the command and what is its own (containers, execs).
shim::TaskSpec ZoneTaskSpec(const ZoneView& zone, const std::string& task_id);

class TaskRunner {
 public:
  // `images` and `layers` may be null: requests naming an image are then refused.
  TaskRunner(DaemonConfig config, store::Store* store, ZoneManager* zones, EventBus* events,
             image::ImageStore* images = nullptr, image::LayerCache* layers = nullptr);
  ~TaskRunner();

  // Blocks until the task ends. When `cancelled` turns true (the client went away) the task
  // is killed and its temporary zone removed, and the call returns Cancelled. `on_recorded`
  // (optional) gets the task's id once the task runs and is recorded: from then on it
  // survives a rauhad restart, and Wait collects it.
  // With `stream` (RunSandboxStream), the task runs with its terminal or stdin pipe and is
  // followed live through the stream's callbacks; its result is the same.
  absl::StatusOr<rauha::sandbox::v1::SandboxResult> Run(
      const rauha::sandbox::v1::RunSandboxRequest& request, const std::function<bool()>& cancelled,
      const std::function<void(const std::string& task_id)>& on_recorded = nullptr,
      const TaskStream* stream = nullptr);
  // The result of a task started earlier; blocks while it runs. NotFound once collected.
  absl::StatusOr<rauha::sandbox::v1::SandboxResult> Wait(const std::string& task_id,
                                                         const std::function<bool()>& cancelled);
  std::vector<rauha::sandbox::v1::TaskInfo> List(const std::string& zone_name);
  // Runs the shim's built-in probes in the zone, confined like any task (FailedPrecondition
  // when the zone cannot take a task, e.g. paused).
  absl::StatusOr<ProbeOutcome> Probe(const std::string& zone_name,
                                     const std::function<bool()>& cancelled = nullptr);

  // Task starts and ends (with each result's receipt) go to the audit log (null: not recorded).
  void set_recorder(audit::Recorder* recorder) { recorder_ = recorder; }

  // After ZoneManager::Recover: picks up tasks that were running when rauhad stopped.
  void Recover();
  // Joins collector threads (call after zones are stopped).
  void Stop();
  // Run sets up its zone only with a slot of `gate` (CreateZone's gate), so that sandbox calls
  // cannot take more memory and CPU than zone calls can. Null (the default): no gate.
  void set_zone_gate(CallGate* gate) { zone_gate_ = gate; }
  // A call for a temporary zone takes a pooled one when `pool` has one ready for its policy,
  // and hands it back for deletion after its task (null, the default: no pool).
  void set_pool(WarmPool* pool) { pool_ = pool; }
  // Tasks of zones with [secrets] get them through these (task_secrets.h).
  void set_secrets(secrets::SecretStore* store, egress::EgressProxy* proxy) {
    secret_store_ = store;
    proxy_ = proxy;
  }

  // The request's image made ready: resolved, its layers unpacked (top first), its config
  // applied to `spec` (command, env, workdir, user). Containers use it too.
  struct PreparedImage {
    std::string manifest_digest;
    std::vector<std::string> layer_digests;
    std::vector<std::string> layer_dirs;  // top first
    image::ImageConfig config;
    image::UserIds user;
    // Taken before the layers are unpacked and held until the task is done: an image removed
    // meanwhile keeps its layers until then (image rm collects only unleased ones).
    std::unique_ptr<image::ImageStore::Lease> lease;
  };
  absl::StatusOr<PreparedImage> PrepareImage(const std::string& reference);

 private:
  // The request's repo_path, checked by the rules of a zone of `type` (host_path.h).
  absl::StatusOr<HostPath> OpenRepoPath(const std::string& path, policy::ZoneType type) const;
  struct Task {
    std::string id;
    std::string zone_id;
    std::string zone_name;
    std::vector<std::string> command;
    int64_t pid = 0;
    uint64_t timeout_ms = 0;  // for the result's words; the shim enforces them
    uint64_t kill_after_ms = 0;
    std::string started_at;
    int64_t started_at_ns = 0;  // -1: unknown (a recovered record that does not parse)
    uint64_t output_limit = 0;  // bytes kept per stream
    bool remove_zone = false;
    bool pooled = false;  // its zone came from the warm pool and goes back to it for deletion
    // Run's: the pooled zone's name is put here instead of going back to the pool at once, so
    // that its deletion starts after the call's audit flush (null: at once).
    std::string* retire_later = nullptr;
    int wait_timeout_ms = -1;  // bound of the wait for its end (its timeout + grace)
    // A streaming Run's (null otherwise, and for recovered tasks); valid while Run runs.
    const TaskStream* stream = nullptr;
    ShimTaskStream* shim_stream = nullptr;
    bool done = false;
    rauha::sandbox::v1::SandboxResult result;
  };

  // Run inside the call's audit batch.
  absl::StatusOr<rauha::sandbox::v1::SandboxResult> RunBatched(
      const rauha::sandbox::v1::RunSandboxRequest& request, const std::function<bool()>& cancelled,
      const std::function<void(const std::string& task_id)>& on_recorded, const TaskStream* stream,
      std::string* retire_later);
  // Waits for the shim's result and turns it into a SandboxResult; finishes the zone side.
  rauha::sandbox::v1::SandboxResult Collect(Task& task, const ZoneView& zone, uint64_t oom_before,
                                            const std::function<bool()>& cancelled,
                                            bool* was_cancelled);
  void Finish(const std::shared_ptr<Task>& task);
  // Records the task's end in the audit log and puts the record in the result as its receipt.
  void Seal(const ZoneView& zone, rauha::sandbox::v1::SandboxResult& result);

  DaemonConfig config_;
  store::Store* store_;
  ZoneManager* zones_;
  EventBus* events_;
  audit::Recorder* recorder_ = nullptr;
  image::ImageStore* images_;
  image::LayerCache* layers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::shared_ptr<Task>> tasks_;
  std::vector<std::thread> collectors_;
  CallGate* zone_gate_ = nullptr;
  WarmPool* pool_ = nullptr;
  secrets::SecretStore* secret_store_ = nullptr;
  egress::EgressProxy* proxy_ = nullptr;
};

}  // namespace rauha
