#include "rauhad/container/container_manager.h"

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <iterator>

#include "rauha-common/errors.h"
#include "rauha-common/ids.h"
#include "rauha-common/names.h"
#include "rauha-common/remove_tree.h"
#include "rauha-common/span_trace.h"
#include "rauha-common/strcat.h"
#include "rauha-common/timeutil.h"
#include "rauha-common/utf8.h"
#include "rauhad/shim_client.h"

namespace rauha::container {
namespace {

constexpr uint32_t kDefaultStopTimeoutS = 10;
// After SIGKILL the shim reports the end at once; this bounds a hung one.
constexpr int kKillWaitMs = 10000;
// Output the shim keeps of a container's process for a stream that attaches a moment after
// the start (ShimClient::WaitStreaming replays it); the log has everything.
constexpr uint64_t kReplayBytes = 64u << 10;
constexpr const char kDefaultPath[] =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

bool IsHex(char ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !IsHex(s[i])) return false;
  }
  return true;
}

// Docker's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]*, here at most 128 bytes.
absl::Status ValidateContainerName(std::string_view name) {
  auto alnum = [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
  };
  bool ok = !name.empty() && name.size() <= 128 && alnum(name[0]);
  for (char ch : name) ok = ok && (alnum(ch) || ch == '_' || ch == '.' || ch == '-');
  if (!ok) {
    return absl::InvalidArgumentError(StrCat(
        "container name \"", ToValidUtf8(name),
        "\" is invalid: 1-128 characters of [a-zA-Z0-9_.-], starting with a letter or digit"));
  }
  return absl::OkStatus();
}

std::map<std::string, std::string> EnvMap(const std::vector<std::string>& env) {
  std::map<std::string, std::string> out;
  for (const auto& kv : env) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    out[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return out;
}

absl::Status ValidateEnv(const std::map<std::string, std::string>& env) {
  for (const auto& [k, v] : env) {
    if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos ||
        v.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          StrCat("env key \"", ToValidUtf8(k),
                 "\" is invalid: keys are non-empty and hold no '=' or NUL"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateCommand(const std::vector<std::string>& command) {
  for (const auto& arg : command) {
    if (arg.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError("command arguments cannot contain NUL bytes");
    }
  }
  return absl::OkStatus();
}

// What a finished process's result says, as a shell would: 128 + N for signal N, 127 when
// it never ran.
int ExitCodeOf(const shim::TaskResult& r) {
  if (!r.start_error.empty()) return 127;
  if (r.exit_code) return *r.exit_code;
  if (r.signal) return 128 + *r.signal;
  return 255;
}

// The spec every process of the container gets: the zone's policy, then the container's
// command, environment (the zone's RAUHA_* variables stay), directory and user.
shim::TaskSpec ProcessSpec(const ZoneView& zone, const std::string& task_id, const Container& c,
                           std::vector<std::string> argv,
                           const std::map<std::string, std::string>& extra_env) {
  shim::TaskSpec spec = ZoneTaskSpec(zone, task_id);
  std::map<std::string, std::string> env = EnvMap(spec.env);
  for (const auto& [k, v] : EnvMap(c.env)) {
    if (!k.starts_with("RAUHA_")) env[k] = v;
  }
  for (const auto& [k, v] : extra_env) env[k] = v;
  spec.env.clear();
  for (const auto& [k, v] : env) spec.env.push_back(StrCat(k, "=", v));
  spec.argv = std::move(argv);
  spec.workdir = c.workdir;
  spec.uid = c.uid;
  spec.gid = c.gid;
  spec.timeout_ms = 0;
  return spec;
}

}  // namespace

void ChangeSignal::Bump() {
  {
    std::lock_guard lock(mu_);
    ++seq_;
  }
  cv_.notify_all();
}

void ChangeSignal::WaitPast(uint64_t* seen, int wait_ms) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(wait_ms), [&] { return seq_ != *seen; });
  *seen = seq_;
}

uint64_t ChangeSignal::Current() {
  std::lock_guard lock(mu_);
  return seq_;
}

LogFollow::LogFollow(ContainerManager* manager, std::string id,
                     std::shared_ptr<ChangeSignal> signal, bool wait_for_start)
    : manager_(manager),
      id_(std::move(id)),
      signal_(std::move(signal)),
      seen_(signal_->Current()),
      wait_for_start_(wait_for_start) {}

LogFollow::~LogFollow() {
  std::lock_guard lock(manager_->mu_);
  auto it = manager_->entries_.find(id_);
  if (it != manager_->entries_.end()) --it->second->log_followers;
  manager_->cv_.notify_all();
}

bool LogFollow::MoreMayCome() {
  std::lock_guard lock(manager_->mu_);
  auto it = manager_->entries_.find(id_);
  if (it == manager_->entries_.end()) return false;
  const std::string& state = it->second->c.state;
  return state == kRunning || (wait_for_start_ && state == kCreated);
}

ContainerManager::ContainerManager(DaemonConfig config, store::Store* store, ZoneManager* zones,
                                   TaskRunner* runner, image::ImageStore* images, EventBus* events)
    : config_(std::move(config)),
      store_(store),
      zones_(zones),
      runner_(runner),
      images_(images),
      events_(events),
      removals_(StrCat(config_.state_dir, "/containers-removing")) {}

ContainerManager::~ContainerManager() { Shutdown(); }

std::string ContainerManager::DirOf(const std::string& id) const {
  return StrCat(config_.state_dir, "/containers/", id);
}

absl::StatusOr<ContainerManager::Entry*> ContainerManager::FindLocked(const std::string& id) {
  if (!IsUuid(id)) {
    return absl::InvalidArgumentError(
        StrCat("container_id \"", ToValidUtf8(id),
               "\" is not a container id (a UUID such as 1b4e28ba-2fa1-11d2-883f-0016d3cca427)"));
  }
  auto it = entries_.find(id);
  if (it == entries_.end()) return absl::NotFoundError(StrCat("no container ", id));
  return it->second.get();
}

ContainerView ContainerManager::ViewOf(const Container& c) {
  ContainerView v{c, c.state};
  if (c.state == kRunning) {
    auto zone = zones_->FindById(c.zone_id);
    if (zone && zone->state == ZoneState::kPaused) v.state = kPaused;
  }
  return v;
}

absl::Status ContainerManager::Persist(const Container& c) {
  return store_->PutContainer({c.id, c.name, c.zone_id, ToJson(c).dump()});
}

void ContainerManager::RemoveZone(const std::string& zone_name, bool pooled) {
  if (pool_) {
    pool_->Retire(zone_name, pooled);
    return;
  }
  auto st = zones_->Delete(zone_name, true);
  if (!st.ok() && !absl::IsNotFound(st)) {
    std::fprintf(stderr, "rauhad: removing zone %s of a container: %s\n", zone_name.c_str(),
                 ToStd(st.message()).c_str());
  }
}

absl::StatusOr<std::string> ContainerManager::ShimSocketOf(const Container& c) {
  auto zone = zones_->FindById(c.zone_id);
  if (!zone) {
    return absl::FailedPreconditionError(
        StrCat("the zone of container ", c.id, " (", c.zone_name, ") no longer exists"));
  }
  return zone->shim_socket;
}

absl::StatusOr<ContainerView> ContainerManager::Create(const CreateRequest& req) {
  SpanTrace trace("rauhad", "CreateContainer");
  // The records of this call (its temporary zone's creation, the container's) are made
  // durable by one fsync before it answers, not one each.
  audit::Recorder::Batch audit_batch(recorder_);
  if (req.image.empty()) {
    return absl::InvalidArgumentError("image is empty: name the image to run (rauha run IMAGE)");
  }
  RAUHA_RETURN_IF_ERROR(RefuseControlCharacters("image", req.image));
  if (!req.name.empty()) RAUHA_RETURN_IF_ERROR(ValidateContainerName(req.name));
  if (!req.zone_name.empty()) RAUHA_RETURN_IF_ERROR(ValidateZoneName(req.zone_name));
  RAUHA_RETURN_IF_ERROR(ValidateEnv(req.env));
  RAUHA_RETURN_IF_ERROR(ValidateCommand(req.command));
  RAUHA_RETURN_IF_ERROR(RefuseControlCharacters("working_dir", req.working_dir));
  if (!req.working_dir.empty() && req.working_dir[0] != '/') {
    return absl::InvalidArgumentError(StrCat("working_dir \"", req.working_dir,
                                             "\" must be an absolute path inside the container"));
  }
  Container c;
  c.id = NewUuid();
  c.name = req.name.empty() ? StrCat("ctr-", c.id.substr(0, 8)) : req.name;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, e] : entries_) {
      if (e->c.name == c.name) {
        return absl::AlreadyExistsError(StrCat("a container named \"", c.name, "\" exists (", id,
                                               "); remove it or pick another name"));
      }
    }
  }
  // The image first: a missing one changes nothing.
  RAUHA_ASSIGN_OR_RETURN(TaskRunner::PreparedImage image, runner_->PrepareImage(req.image));
  trace.Mark("image");
  c.image = req.image;
  c.image_digest = image.manifest_digest;
  c.layer_digests = image.layer_digests;
  c.layer_dirs = image.layer_dirs;
  // Docker's rule: given arguments replace Cmd, the Entrypoint stays.
  c.command = image.config.entrypoint;
  const auto& args = req.command.empty() ? image.config.cmd : req.command;
  c.command.insert(c.command.end(), args.begin(), args.end());
  if (c.command.empty() || c.command[0].empty()) {
    return absl::InvalidArgumentError(StrCat("image ", req.image,
                                             " has no Entrypoint or Cmd: give the command to run "
                                             "(rauha run IMAGE CMD...)"));
  }
  std::map<std::string, std::string> env = EnvMap({kDefaultPath});
  for (const auto& [k, v] : EnvMap(image.config.env)) env[k] = v;
  for (const auto& [k, v] : req.env) env[k] = v;
  for (const auto& [k, v] : env) c.env.push_back(StrCat(k, "=", v));
  c.workdir = !req.working_dir.empty() ? req.working_dir
              : !image.config.working_dir.empty() && image.config.working_dir[0] == '/'
                  ? image.config.working_dir
                  : "/";
  if (image.user.uid != 0 || image.user.gid != 0) {
    c.uid = image.user.uid;
    c.gid = image.user.gid;
  }
  c.exposed_ports = image.config.exposed_ports;
  c.tty = req.tty;
  c.open_stdin = req.open_stdin;
  c.auto_remove = req.auto_remove;
  c.created_at = NowRfc3339();

  bool pooled_zone = false;
  if (req.zone_name.empty()) {
    c.temporary_zone = true;
    // Not a "temporary" zone in the registry's sense (those go when rauhad starts without a
    // task in them): this one lasts as long as the container, stopped or not.
    std::optional<std::string> pooled;
    if (pool_) pooled = pool_->Claim("", /*keep=*/true);
    pooled_zone = pooled.has_value();
    std::optional<ZoneView> zone;
    if (pooled) {
      auto claimed = zones_->Get(*pooled);
      if (claimed.ok()) {
        zone = *std::move(claimed);
      } else {
        pool_->Retire(*pooled);  // gone meanwhile (its shim died): a zone of its own then
        pooled_zone = false;
      }
    }
    if (!zone) {
      RAUHA_ASSIGN_OR_RETURN(zone,
                             zones_->Create(StrCat("ctr-", c.id.substr(0, 8)), "", "", false));
    }
    c.zone_id = zone->id;
    c.zone_name = zone->name;
  } else {
    RAUHA_ASSIGN_OR_RETURN(ZoneView zone, zones_->Get(req.zone_name));
    c.zone_id = zone.id;
    c.zone_name = zone.name;
  }
  trace.Mark("zone");
  auto undo_zone = [&] {
    if (c.temporary_zone) RemoveZone(c.zone_name, pooled_zone);
  };
  if (::mkdir(StrCat(config_.state_dir, "/containers").c_str(), 0700) < 0 && errno != EEXIST) {
    undo_zone();
    return ErrnoStatus(errno, StrCat("mkdir ", config_.state_dir, "/containers"));
  }
  if (::mkdir(DirOf(c.id).c_str(), 0700) < 0) {
    undo_zone();
    return ErrnoStatus(errno, StrCat("mkdir ", DirOf(c.id)));
  }
  auto entry = std::make_unique<Entry>();
  entry->c = c;
  entry->pooled_zone = pooled_zone;
  // The lease PrepareImage took before unpacking, kept as long as the container exists.
  entry->lease = image.lease ? std::move(image.lease)
                             : std::make_unique<image::ImageStore::Lease>(images_, c.layer_digests);
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, e] : entries_) {
      if (e->c.name == c.name) {
        (void)RemoveTree(DirOf(c.id));
        undo_zone();
        return absl::AlreadyExistsError(StrCat("a container named \"", c.name, "\" exists"));
      }
    }
    if (auto st = Persist(c); !st.ok()) {
      (void)RemoveTree(DirOf(c.id));
      undo_zone();
      return Annotate(st, "recording the container");
    }
    entries_[c.id] = std::move(entry);
  }
  trace.Mark("persist");
  if (recorder_) {
    recorder_->ContainerCreated(c.zone_id, c.id, c.name, c.image_digest, c.command, c.auto_remove);
  }
  trace.Mark("recorded");
  events_->Publish(c.zone_name, "container.created", StrCat(c.id, " (", c.name, "): ", c.image));
  return ContainerView{c, c.state};
}

absl::Status ContainerManager::Start(const std::string& id) {
  SpanTrace trace("rauhad", "StartContainer");
  std::thread old_watcher;
  Container c;
  uint32_t start_rows = 0, start_cols = 0;
  {
    std::lock_guard lock(mu_);
    RAUHA_ASSIGN_OR_RETURN(Entry * e, FindLocked(id));
    if (e->c.state == kRunning) return absl::OkStatus();
    if (e->removing) {
      return absl::FailedPreconditionError(StrCat("container ", id, " is being removed"));
    }
    if (e->watching) {
      return absl::FailedPreconditionError(
          StrCat("container ", id, " is still being stopped; try again"));
    }
    old_watcher = std::move(e->watcher);
    c = e->c;
    start_rows = e->start_rows;
    start_cols = e->start_cols;
  }
  if (old_watcher.joinable()) old_watcher.join();
  for (const auto& dir : c.layer_dirs) {
    struct stat st;
    if (::stat(dir.c_str(), &st) < 0) {
      return absl::FailedPreconditionError(
          StrCat("a layer of container ", id, "'s image is gone (", dir,
                 "); pull the image again, or delete the container"));
    }
  }
  // The zone's Running record is signed and written while its shim starts the process (or
  // when this call fails before that), not under the registry's lock on the call's path.
  audit::Recorder::Hold running_record(recorder_);
  RAUHA_ASSIGN_OR_RETURN(ZoneView zone, zones_->BeginTask(c.zone_name));
  trace.Mark("begin_task");
  shim::TaskSpec spec = ProcessSpec(zone, TaskIdOf(c), c, c.command, {});
  spec.image_layers = c.layer_dirs;
  // A kept container's writable layer is a directory of its own in the state dir (started
  // again on it). One removed at its exit (--rm) is read by nobody after it: its upper is a
  // private one on the task's tmpfs, gone with its mount namespace, so nothing of it is written
  // to the state dir's disk, synced at the unmount or unlinked after; and a pooled zone's
  // prepared process can build its root on the one it built ahead (rauha-shim/root_ahead.h).
  if (!c.auto_remove) spec.image_upper = DirOf(id);
  spec.log_path = StrCat(DirOf(id), "/container.log");
  spec.log_max_bytes = config_.container_log_max_bytes;
  spec.tty = c.tty;
  spec.tty_rows = start_rows;
  spec.tty_cols = start_cols;
  spec.stdin_pipe = c.open_stdin && !c.tty;
  spec.output_limit = kReplayBytes;
  // Placeholders for the zone's secrets, the proxy's CA over the image's bundle (after the
  // layers are in the spec: the bundle is bound into the image's root).
  std::set<std::string> before_grant(spec.env.begin(), spec.env.end());
  auto granted = TaskSecrets::Grant(secret_store_, proxy_, zone, TaskIdOf(c), {}, spec);
  if (!granted.ok()) {
    zones_->EndTask(zone.id);
    return Annotate(granted.status(), StrCat("starting container ", id));
  }
  std::unique_ptr<TaskSecrets> secrets = *std::move(granted);
  std::map<std::string, std::string> secret_env;
  for (const auto& [k, v] : EnvMap(spec.env)) {
    if (!before_grant.count(StrCat(k, "=", v))) secret_env[k] = v;
  }
  trace.Mark("spec");
  // Started on the stream its watcher then reads: the attached clients pace the output.
  auto stream = std::make_shared<ShimTaskStream>(zone.shim_socket);
  auto pid = stream->Start(spec, nullptr, 30000, [&] { running_record.Release(); });
  running_record.Release();  // (when the request could not be sent)
  if (!pid.ok()) {
    zones_->EndTask(zone.id);
    return Annotate(pid.status(), StrCat("starting container ", id));
  }
  trace.Mark("shim_start");
  std::string started_at = NowRfc3339();
  // Recorded before anyone can see it running, so before its stop's record.
  if (recorder_) recorder_->ContainerStarted(c.zone_id, id, *pid);
  trace.Mark("recorded");
  {
    std::lock_guard lock(mu_);
    RAUHA_ASSIGN_OR_RETURN(Entry * e, FindLocked(id));
    e->c.state = kRunning;
    e->c.pid = *pid;
    e->c.exit_code.reset();
    e->c.started_at = started_at;
    e->c.finished_at.clear();
    e->watching = true;
    e->secrets = std::move(secrets);
    e->secret_env = std::move(secret_env);
    if (auto st = Persist(e->c); !st.ok()) {
      std::fprintf(stderr, "rauhad: container %s: %s\n", id.c_str(), ToStd(st.message()).c_str());
    }
    e->watcher =
        std::thread([this, id, socket = zone.shim_socket, stream] { Watch(id, socket, stream); });
    e->changes->Bump();
    cv_.notify_all();
  }
  events_->Publish(c.zone_name, "container.started", StrCat(id, " (", c.name, ")"));
  // The process may already have failed to exec; the watcher collects it, and the caller
  // hears why now (the container is then Stopped with 127, as docker does).
  return absl::OkStatus();
}

void ContainerManager::Watch(const std::string& id, const std::string& shim_socket,
                             std::shared_ptr<ShimTaskStream> paced) {
  OutputHub* hub = nullptr;
  std::shared_ptr<ChangeSignal> changes;
  std::string zone_id;
  bool auto_remove = false;
  bool temporary_zone = false;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    hub = &it->second->output;
    changes = it->second->changes;
    zone_id = it->second->c.zone_id;
    auto_remove = it->second->c.auto_remove;
    temporary_zone = it->second->c.temporary_zone;
  }
  ShimClient shim(shim_socket);
  auto stopping = [this] { return shutting_down_.load(); };
  auto on_output = [&](bool is_stderr, std::string_view data) {
    hub->Publish(is_stderr, data, stopping);  // waits while an attached client is behind
    changes->Bump();  // the shim wrote the log before it sent us these bytes
  };
  // Started by an earlier rauhad: this wait paces it from now on.
  auto result = paced ? paced->Wait(id, on_output, nullptr, stopping)
                      : shim.WaitStreaming(id, on_output, stopping, /*paced=*/true);
  if (paced) paced->Close();  // the task no longer waits for this connection
  if (!result.ok() && shutting_down_) {
    // rauhad stops, the container does not: the next rauhad watches it again.
    std::lock_guard lock(mu_);
    if (auto it = entries_.find(id); it != entries_.end()) it->second->watching = false;
    zones_->EndTask(zone_id);
    return;
  }
  SpanTrace trace("rauhad", "ContainerExit");
  std::optional<int> code;
  std::string why;
  if (result.ok()) {
    code = ExitCodeOf(*result);
    if (!result->start_error.empty()) why = result->start_error;
    // A container removed at its exit with its own zone: its shim goes with the zone, and the
    // task's result with it (no round trip to drop it first, as for a sandbox's zone).
    if (!(auto_remove && temporary_zone)) (void)shim.Forget(id);
  } else {
    why = StrCat("lost: ", result.status().message());
  }
  std::string retire_zone;
  {
    // Its placeholders end with its process.
    std::lock_guard lock(mu_);
    if (auto it = entries_.find(id); it != entries_.end()) {
      it->second->secrets.reset();
      it->second->secret_env.clear();
      // Removed right away with its pooled zone (no log follower to wait for): the zone takes
      // no task from now on and does not go back to Ready on the way to its deletion, as a
      // sandbox call's (a transition, an event and a signed record fewer on the way out).
      if (auto_remove && temporary_zone && pool_ && it->second->log_followers == 0) {
        retire_zone = it->second->c.zone_name;
      }
    }
  }
  if (!retire_zone.empty()) zones_->MarkRetiring(retire_zone);
  zones_->EndTask(zone_id);
  trace.Mark("shim_forget");
  // An auto-removed container's stop and delete records are made durable by one fsync, before
  // it stops being listed (RemoveStopped): nobody waits for it before that (WaitContainer
  // answers once it is gone), so the stop's record need not be durable on its own.
  std::optional<audit::Recorder::Batch> audit_batch;
  if (auto_remove) audit_batch.emplace(recorder_);
  // Its Stopped record would be deleted a moment later: not written when the shim keeps the
  // task's result (no forget above), so that a crash in between is recovered from the Running
  // record as a container that ended while no rauhad watched it.
  RecordExit(id, code, why, /*persist=*/!(auto_remove && temporary_zone && result.ok()));
  trace.Mark("record_exit");
  if (auto_remove) AutoRemove(id);
}

void ContainerManager::AutoRemove(const std::string& id) {
  std::vector<std::thread> finished;
  {
    std::unique_lock lock(mu_);
    finished.swap(reaped_);
    // Followers of its log read to its end first (rauha run prints all of it), within a
    // bound: a client that stopped reading does not keep the container.
    cv_.wait_for(lock, std::chrono::seconds(kFollowerGraceS), [&] {
      auto it = entries_.find(id);
      return shutting_down_ || it == entries_.end() || it->second->removing ||
             it->second->log_followers == 0;
    });
    // rauhad stops: the next one removes it (Recover).
    if (shutting_down_) {
      reaped_.insert(reaped_.end(), std::make_move_iterator(finished.begin()),
                     std::make_move_iterator(finished.end()));
      return;
    }
  }
  for (auto& t : finished) t.join();
  SpanTrace::MarkCurrent("followers");
  auto st = RemoveStopped(id, "auto_remove");
  if (!st.ok() && !absl::IsNotFound(st) && !absl::IsFailedPrecondition(st)) {
    std::fprintf(stderr, "rauhad: removing container %s at its exit: %s\n", id.c_str(),
                 ToStd(st.message()).c_str());
  }
}

void ContainerManager::RecordExit(const std::string& id, std::optional<int> exit_code,
                                  const std::string& why, bool persist) {
  std::string zone_name;
  if (recorder_) {
    // Recorded before anyone can see it stopped (and delete it, which is recorded too).
    std::string zone_id;
    {
      std::lock_guard lock(mu_);
      auto it = entries_.find(id);
      if (it == entries_.end()) return;
      zone_id = it->second->c.zone_id;
    }
    recorder_->ContainerStopped(zone_id, id, exit_code.value_or(255), why);
  }
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    Entry& e = *it->second;
    e.c.state = kStopped;
    e.c.exit_code = exit_code.value_or(255);
    e.c.pid = 0;
    e.c.finished_at = NowRfc3339();
    e.watching = false;
    zone_name = e.c.zone_name;
    if (auto st = persist ? Persist(e.c) : absl::OkStatus(); !st.ok()) {
      std::fprintf(stderr, "rauhad: container %s: %s\n", id.c_str(), ToStd(st.message()).c_str());
    }
    e.output.End(e.c.exit_code);
    e.changes->Bump();
    cv_.notify_all();
  }
  events_->Publish(
      zone_name, "container.stopped",
      StrCat(id, ": exit code ", exit_code.value_or(255), why.empty() ? "" : "; ", why));
}

absl::Status ContainerManager::Stop(const std::string& id, uint32_t timeout_s) {
  Container c;
  {
    std::lock_guard lock(mu_);
    RAUHA_ASSIGN_OR_RETURN(Entry * e, FindLocked(id));
    if (e->c.state != kRunning) return absl::OkStatus();
    // A client attached but not reading must not hold up the stop (nor its last output).
    e->output.StopPacing();
    c = e->c;
  }
  RAUHA_ASSIGN_OR_RETURN(std::string socket, ShimSocketOf(c));
  ShimClient shim(socket);
  uint32_t grace = timeout_s == 0 ? kDefaultStopTimeoutS : timeout_s;
  auto stopped = [&] {
    auto it = entries_.find(id);
    return it == entries_.end() || it->second->c.state != kRunning;
  };
  // SIGTERM goes to the container's process (its init forwards it), as docker stop does.
  absl::Status term = shim.Kill(TaskIdOf(c), SIGTERM);
  if (!term.ok() && !absl::IsNotFound(term)) return Annotate(term, StrCat("stopping ", id));
  {
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, std::chrono::seconds(grace), stopped)) return absl::OkStatus();
  }
  // Still there after the grace period: SIGKILL ends its whole pid namespace.
  absl::Status kill = shim.Kill(TaskIdOf(c), SIGKILL);
  if (!kill.ok() && !absl::IsNotFound(kill)) return Annotate(kill, StrCat("killing ", id));
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, std::chrono::milliseconds(kKillWaitMs), stopped)) {
    return absl::DeadlineExceededError(
        StrCat("container ", id, " was SIGKILLed but its shim did not report its end within ",
               kKillWaitMs / 1000, " s"));
  }
  return absl::OkStatus();
}

absl::Status ContainerManager::Kill(const std::string& id, int signo) {
  if (signo < 1 || signo > SIGRTMAX) {
    return absl::InvalidArgumentError(
        StrCat("signal ", signo, " is not a signal: give 1 to ", SIGRTMAX, " (0: SIGKILL)"));
  }
  Container c;
  {
    std::lock_guard lock(mu_);
    RAUHA_ASSIGN_OR_RETURN(Entry * e, FindLocked(id));
    if (e->c.state != kRunning) {
      return absl::FailedPreconditionError(
          StrCat("container ", id, " is not running (", e->c.state, ")"));
    }
    c = e->c;
  }
  RAUHA_ASSIGN_OR_RETURN(std::string socket, ShimSocketOf(c));
  absl::Status sent = ShimClient(socket).Kill(TaskIdOf(c), signo);
  // The shim no longer has it: it ended between the check and the signal.
  if (absl::IsNotFound(sent)) {
    return absl::FailedPreconditionError(StrCat("container ", id, " is not running"));
  }
  return Annotate(sent, StrCat("signalling container ", id));
}

absl::Status ContainerManager::Delete(const std::string& id, bool force) {
  {
    std::lock_guard lock(mu_);
    RAUHA_ASSIGN_OR_RETURN(Entry * e, FindLocked(id));
    if (e->c.state == kRunning && !force) {
      return absl::FailedPreconditionError(
          StrCat("container ", id, " is running: stop it first, or delete it with force"));
    }
  }
  {
    std::unique_lock lock(mu_);
    RAUHA_ASSIGN_OR_RETURN(Entry * e, FindLocked(id));
    if (e->c.state == kRunning) {
      e->output.StopPacing();
      Container c = e->c;
      lock.unlock();
      auto socket = ShimSocketOf(c);
      if (socket.ok()) (void)ShimClient(*socket).Kill(TaskIdOf(c), SIGKILL);
      lock.lock();
      bool ended = cv_.wait_for(lock, std::chrono::milliseconds(kKillWaitMs), [&] {
        auto it = entries_.find(id);
        return it == entries_.end() || it->second->c.state != kRunning;
      });
      if (!ended) {
        return absl::DeadlineExceededError(StrCat("container ", id,
                                                  " was SIGKILLed but did not end within ",
                                                  kKillWaitMs / 1000, " s; it was not deleted"));
      }
    }
  }
  // Gone meanwhile: its own exit removed it (auto_remove), which is what was asked.
  absl::Status removed = RemoveStopped(id, force ? "force" : "delete");
  return absl::IsNotFound(removed) ? absl::OkStatus() : removed;
}

absl::Status ContainerManager::RemoveStopped(const std::string& id, const std::string& how) {
  Container c;
  bool pooled_zone = false;
  std::thread watcher;
  {
    std::unique_lock lock(mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return absl::NotFoundError(StrCat("no container ", id));
    Entry& e = *it->second;
    if (e.removing) {
      // Another caller removes it (its exit, or a DeleteContainer): done when it is gone.
      cv_.wait(lock, [&] { return !entries_.contains(id); });
      return absl::OkStatus();
    }
    if (e.c.state == kRunning) {
      return absl::FailedPreconditionError(StrCat("container ", id, " was started again"));
    }
    e.removing = true;
    c = e.c;
    pooled_zone = e.pooled_zone;
    // Its own watcher removes it (auto_remove): joined by the next removal or at shutdown.
    // Another one is joined once the entry is gone (it may be waiting for that).
    if (e.watcher.joinable() && e.watcher.get_id() == std::this_thread::get_id()) {
      reaped_.push_back(std::move(e.watcher));
    } else {
      watcher = std::move(e.watcher);
    }
  }
  // The files and the zone go first, the record and the entry last: a container that is no
  // longer listed has left nothing that is not already on its way out, and a crash in between
  // leaves a record that the next rauhad removes again. The upper layer and log: the overlay
  // was mounted only in the container's mount namespace, gone with its last process, so this
  // is plain files, moved into the trash now and unlinked off the request path (a crash
  // leaves them to the next rauhad's removal queue).
  absl::Status removed = removals_.Take(DirOf(id), id);
  SpanTrace::MarkCurrent("remove_dir");
  {
    // The container's records are made durable by one fsync, before it stops being listed.
    audit::Recorder::Batch audit_batch(recorder_);
    // Gone from the API at once; its kernel side goes in the pool's thread (or here when
    // there is no pool thread).
    if (c.temporary_zone) RemoveZone(c.zone_name, pooled_zone);
    SpanTrace::MarkCurrent("zone_delete");
    // Recorded while it is still listed: a client that sees it gone finds the record. Made
    // durable here even within an outer batch (Watch's).
    if (recorder_) {
      recorder_->ContainerDeleted(c.zone_id, id, how);
      recorder_->FlushThisThread();
    }
  }
  SpanTrace::MarkCurrent("recorded");
  std::unique_ptr<Entry> gone;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    if (auto st = store_->DeleteContainer(id); !st.ok()) {
      std::fprintf(stderr, "rauhad: forgetting container %s: %s\n", id.c_str(),
                   ToStd(st.message()).c_str());
      if (removed.ok()) removed = st;
    }
    gone = std::move(it->second);
    entries_.erase(it);
    if (c.auto_remove && c.state == kStopped) {
      removed_exits_.emplace_back(id, ExitRecord{c.exit_code.value_or(255), c.finished_at, true});
      if (removed_exits_.size() > kRemovedExitsKept) removed_exits_.pop_front();
    }
    gone->changes->Bump();
    cv_.notify_all();
  }
  SpanTrace::MarkCurrent("forgotten");
  if (watcher.joinable()) watcher.join();
  events_->Publish(c.zone_name, "container.deleted", id);
  return Annotate(removed, StrCat("removing the files of container ", id));
}

absl::StatusOr<ContainerView> ContainerManager::Get(const std::string& id) {
  Container c;
  {
    std::lock_guard lock(mu_);
    RAUHA_ASSIGN_OR_RETURN(Entry * e, FindLocked(id));
    c = e->c;
  }
  return ViewOf(c);
}

absl::StatusOr<std::vector<ContainerView>> ContainerManager::List(const std::string& zone_name) {
  if (!zone_name.empty()) RAUHA_RETURN_IF_ERROR(zones_->Get(zone_name).status());
  std::vector<Container> all;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, e] : entries_) {
      if (zone_name.empty() || e->c.zone_name == zone_name) all.push_back(e->c);
    }
  }
  std::sort(all.begin(), all.end(), [](const Container& a, const Container& b) {
    return a.created_at != b.created_at ? a.created_at < b.created_at : a.id < b.id;
  });
  std::vector<ContainerView> out;
  for (const auto& c : all) out.push_back(ViewOf(c));
  return out;
}

absl::StatusOr<ExitRecord> ContainerManager::Wait(const std::string& id,
                                                  const std::function<bool()>& cancelled) {
  std::unique_lock lock(mu_);
  while (true) {
    auto e = FindLocked(id);
    if (absl::IsNotFound(e.status())) {
      for (auto it = removed_exits_.rbegin(); it != removed_exits_.rend(); ++it) {
        if (it->first == id) return it->second;
      }
    }
    if (!e.ok()) return e.status();
    // An auto-removed container is waited for until it is gone (docker run --rm returns
    // once nothing of it is left); removed_exits_ answers then.
    if ((*e)->c.state == kStopped && !(*e)->c.auto_remove) {
      return ExitRecord{(*e)->c.exit_code.value_or(255), (*e)->c.finished_at, false};
    }
    // cv_ is notified at every state change; the timeout only looks at the client.
    cv_.wait_for(lock, std::chrono::milliseconds(250));
    if (cancelled && cancelled()) return absl::CancelledError("the client went away");
  }
}

absl::StatusOr<std::unique_ptr<LogFollow>> ContainerManager::FollowLog(const std::string& id,
                                                                       bool wait_for_start) {
  std::lock_guard lock(mu_);
  RAUHA_ASSIGN_OR_RETURN(Entry * e, FindLocked(id));
  ++e->log_followers;
  return std::make_unique<LogFollow>(this, id, e->changes, wait_for_start);
}

absl::StatusOr<std::string> ContainerManager::LogDir(const std::string& id) {
  std::lock_guard lock(mu_);
  RAUHA_RETURN_IF_ERROR(FindLocked(id).status());
  return DirOf(id);
}

bool ContainerManager::IsRunning(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  return it != entries_.end() && it->second->c.state == kRunning;
}

absl::StatusOr<std::shared_ptr<OutputSubscription>> ContainerManager::Attach(
    const std::string& id) {
  std::lock_guard lock(mu_);
  RAUHA_ASSIGN_OR_RETURN(Entry * e, FindLocked(id));
  if (e->c.state == kStopped) {
    return absl::FailedPreconditionError(
        StrCat("container ", id, " is stopped: start it to attach (rauha logs shows its output)"));
  }
  return e->output.Subscribe();
}

void ContainerManager::Detach(const std::string& id,
                              const std::shared_ptr<OutputSubscription>& sub) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(id);
  if (it != entries_.end()) it->second->output.Unsubscribe(sub);
}

absl::Status ContainerManager::WriteStdin(const std::string& id, std::string_view data, bool eof) {
  Container c;
  {
    std::lock_guard lock(mu_);
    RAUHA_ASSIGN_OR_RETURN(Entry * e, FindLocked(id));
    if (e->c.state != kRunning) {
      return absl::FailedPreconditionError(StrCat("container ", id, " is not running"));
    }
    if (!e->c.open_stdin && !e->c.tty) {
      return absl::FailedPreconditionError(
          StrCat("container ", id, " was created without an open stdin (rauha run -i)"));
    }
    c = e->c;
  }
  RAUHA_ASSIGN_OR_RETURN(std::string socket, ShimSocketOf(c));
  return ShimClient(socket).Stdin(TaskIdOf(c), data, eof);
}

absl::Status ContainerManager::Resize(const std::string& id, uint32_t rows, uint32_t cols) {
  Container c;
  {
    std::lock_guard lock(mu_);
    RAUHA_ASSIGN_OR_RETURN(Entry * e, FindLocked(id));
    if (!e->c.tty) {
      return absl::FailedPreconditionError(StrCat("container ", id, " has no terminal"));
    }
    if (e->c.state != kRunning) {
      // The size its terminal gets at the next start (rauha run -t attaches, sends its size,
      // then starts the container).
      e->start_rows = rows;
      e->start_cols = cols;
      return absl::OkStatus();
    }
    c = e->c;
  }
  RAUHA_ASSIGN_OR_RETURN(std::string socket, ShimSocketOf(c));
  return ShimClient(socket).Resize(TaskIdOf(c), rows, cols);
}

absl::StatusOr<ExecHandle> ContainerManager::StartExec(const std::string& id,
                                                       const ExecRequest& req) {
  if (req.command.empty() || req.command[0].empty()) {
    return absl::InvalidArgumentError("command is empty: give the program to run in the container");
  }
  RAUHA_RETURN_IF_ERROR(ValidateCommand(req.command));
  RAUHA_RETURN_IF_ERROR(ValidateEnv(req.env));
  Container c;
  std::map<std::string, std::string> env = req.env;
  {
    std::lock_guard lock(mu_);
    RAUHA_ASSIGN_OR_RETURN(Entry * e, FindLocked(id));
    if (e->c.state != kRunning) {
      return absl::FailedPreconditionError(
          StrCat("container ", id, " is not running (", e->c.state, "): start it first"));
    }
    c = e->c;
    // The container's placeholders and trust, over what the exec asks for: an exec may not
    // set a secret's variable to something else.
    for (const auto& [k, v] : e->secret_env) env[k] = v;
  }
  auto zone = zones_->FindById(c.zone_id);
  if (!zone) return absl::FailedPreconditionError(StrCat("the zone of container ", id, " is gone"));
  ExecHandle h{zone->shim_socket, StrCat("exec-", NewUuid())};
  shim::TaskSpec spec = ProcessSpec(*zone, h.task_id, c, req.command, env);
  spec.join_task = TaskIdOf(c);
  spec.tty = req.tty;
  spec.tty_rows = req.rows;
  spec.tty_cols = req.cols;
  spec.stdin_pipe = req.stdin_pipe && !req.tty;
  absl::Status started;
  if (req.paced) {
    h.stream = std::make_shared<ShimTaskStream>(h.shim_socket);
    started = h.stream->Start(spec).status();
  } else {
    started = ShimClient(h.shim_socket).Start(spec).status();
  }
  RAUHA_RETURN_IF_ERROR(Annotate(started, StrCat("starting a process in container ", id)));
  return h;
}

void ContainerManager::FinishExec(const ExecHandle& exec) {
  if (exec.stream) exec.stream->Close();  // a task still running no longer waits for it
  ShimClient shim(exec.shim_socket);
  if (!shim.Forget(exec.task_id).ok()) {
    // Still running (the client went away): it ends with a SIGKILL, then is forgotten.
    (void)shim.Kill(exec.task_id, SIGKILL);
    (void)shim.Wait(exec.task_id, nullptr, nullptr, kKillWaitMs);
    (void)shim.Forget(exec.task_id);
  }
}

absl::StatusOr<shim::TaskResult> ContainerManager::RunExec(const std::string& id,
                                                           const ExecRequest& req,
                                                           const std::function<bool()>& cancelled) {
  RAUHA_ASSIGN_OR_RETURN(ExecHandle h, StartExec(id, req));
  auto result = ShimClient(h.shim_socket).Wait(h.task_id, cancelled);
  FinishExec(h);
  if (result.ok()) result->exit_code = ExitCodeOf(*result);
  return result;
}

void ContainerManager::Recover() {
  if (auto st = removals_.Start(); !st.ok()) {
    // Deleted containers' directories are then removed in the call (Take).
    std::fprintf(stderr, "rauhad: %s\n", ToStd(st.message()).c_str());
  }
  auto records = store_->ListContainers();
  if (!records.ok()) {
    std::fprintf(stderr, "rauhad: reading containers: %s\n",
                 ToStd(records.status().message()).c_str());
    return;
  }
  std::vector<std::string> stopped_auto_remove;
  for (const auto& rec : *records) {
    auto parsed = nlohmann::json::parse(rec.data_json, nullptr, false);
    auto c = parsed.is_discarded() ? absl::StatusOr<Container>(absl::DataLossError("not JSON"))
                                   : ContainerFromJson(parsed);
    if (!c.ok()) {
      std::fprintf(stderr, "rauhad: container %s: unreadable record (%s); skipped\n",
                   rec.id.c_str(), ToStd(c.status().message()).c_str());
      continue;
    }
    auto entry = std::make_unique<Entry>();
    entry->c = *c;
    entry->lease = std::make_unique<image::ImageStore::Lease>(images_, c->layer_digests);
    bool running = c->state == kRunning;
    // Stopped while no rauhad could remove it (or before this one's predecessor did).
    if (c->auto_remove && c->state == kStopped) stopped_auto_remove.push_back(c->id);
    std::string zone_name;
    if (auto zone = zones_->FindById(c->zone_id)) zone_name = zone->name;
    {
      std::lock_guard lock(mu_);
      entries_[c->id] = std::move(entry);
    }
    if (!running) continue;
    auto begun = zone_name.empty() ? absl::StatusOr<ZoneView>(absl::NotFoundError("zone gone"))
                                   : zones_->BeginTask(zone_name);
    if (!begun.ok()) {
      RecordExit(
          c->id, std::nullopt,
          StrCat("its zone lost its shim while rauhad was down (", begun.status().message(), ")"));
      if (c->auto_remove) stopped_auto_remove.push_back(c->id);
      continue;
    }
    // Its placeholders as it was granted them: the proxy replaces them again, its execs get them.
    std::map<std::string, std::string> secret_env;
    auto restored =
        TaskSecrets::Restore(secret_store_, proxy_, c->zone_id, TaskIdOf(*c), &secret_env);
    if (!restored.ok()) {
      std::fprintf(stderr, "rauhad: container %s: %s\n", c->id.c_str(),
                   ToStd(restored.status().message()).c_str());
    }
    std::lock_guard lock(mu_);
    Entry& e = *entries_[c->id];
    if (restored.ok() && *restored) {
      e.secrets = *std::move(restored);
      e.secret_env = std::move(secret_env);
    }
    e.watching = true;
    e.watcher = std::thread(
        [this, id = c->id, socket = begun->shim_socket] { Watch(id, socket, nullptr); });
  }
  for (const auto& id : stopped_auto_remove) {
    if (auto st = RemoveStopped(id, "auto_remove"); !st.ok()) {
      std::fprintf(stderr, "rauhad: removing container %s (stopped, auto_remove): %s\n", id.c_str(),
                   ToStd(st.message()).c_str());
    }
  }
}

void ContainerManager::Shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    shutting_down_ = true;
    cv_.notify_all();
    for (auto& [id, e] : entries_) {
      if (e->watcher.joinable()) threads.push_back(std::move(e->watcher));
    }
  }
  for (auto& t : threads) t.join();
  threads.clear();
  {
    std::lock_guard lock(mu_);
    threads.swap(reaped_);
  }
  for (auto& t : threads) t.join();
  removals_.Stop();
}

uint32_t ContainerManager::CountInZone(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  uint32_t n = 0;
  for (const auto& [id, e] : entries_) n += e->c.zone_id == zone_id;
  return n;
}

std::vector<std::string> ContainerManager::IdsInZone(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [id, e] : entries_) {
    if (e->c.zone_id == zone_id) out.push_back(id);
  }
  return out;
}

}  // namespace rauha::container
