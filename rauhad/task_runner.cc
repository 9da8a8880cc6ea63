#include "rauhad/task_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>

#include "nlohmann/json.hpp"
#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/ids.h"
#include "rauha-common/names.h"
#include "rauha-common/span_trace.h"
#include "rauha-common/strcat.h"
#include "rauha-common/timeutil.h"
#include "rauha-common/utf8.h"
#include "rauhad/egress/zone_listener.h"
#include "rauhad/host_path.h"
#include "rauhad/isolation_checks.h"
#include "rauhad/live_events.h"
#include "rauhad/net/dns_hint.h"
#include "rauhad/output_dir.h"
#include "rauhad/pool/warm_pool.h"
#include "rauhad/shim_client.h"
#include "rauhad/task_secrets.h"

namespace rauha {
namespace {

namespace pb = rauha::sandbox::v1;

constexpr uint64_t kMaxOutputLimit = 1u << 20;  // keeps a result inside one shim frame
// A shim starts a task in milliseconds; the bound is for one that is hung.
constexpr int64_t kStartTimeoutMs = 30000;
// After a task's timeout the shim kills it and reports: it has this long to do so.
constexpr int64_t kReportGraceMs = 10000;
// Killing a task whose client went away, and collecting it, on a shim that may be hung.
constexpr int kKillTimeoutMs = 2000;
constexpr int kReapTimeoutMs = 10000;
constexpr int kStartKillTimeoutMs = 500;

int ClampMs(int64_t ms) { return static_cast<int>(std::min<int64_t>(ms, INT_MAX)); }
// stdin travels inside the request (unary RPC): bounded well below gRPC's 4 MiB default.
constexpr size_t kMaxStdinBytes = 1u << 20;
// SIGTERM at the timeout, SIGKILL this much later unless the request says otherwise.
constexpr uint64_t kDefaultKillAfterMs = 5000;
// What timeout_seconds can say (uint32 seconds); timeout_ms and kill_after_ms stay below it.
constexpr uint64_t kMaxTimeoutMs = uint64_t{UINT32_MAX} * 1000;

uint64_t TimeoutMsOf(const pb::RunSandboxRequest& r) {
  return r.timeout_ms() != 0 ? r.timeout_ms() : uint64_t{r.timeout_seconds()} * 1000;
}

uint64_t KillAfterMsOf(const pb::RunSandboxRequest& r) {
  return r.has_kill_after_ms() ? r.kill_after_ms() : kDefaultKillAfterMs;
}

// 500 -> "0.5 s", 2000 -> "2 s", 1250 -> "1.25 s".
std::string Seconds(uint64_t ms) {
  std::string frac;
  if (ms % 1000 != 0) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), ".%03u", static_cast<unsigned>(ms % 1000));
    frac = buf;
    while (frac.back() == '0') frac.pop_back();
  }
  return StrCat(ms / 1000, frac, " s");
}
constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

absl::Status ValidateRequest(const pb::RunSandboxRequest& r) {
  // With an image, an empty command runs the image's Entrypoint + Cmd.
  if ((r.command().empty() && r.image().empty()) ||
      (!r.command().empty() && r.command(0).empty())) {
    return absl::InvalidArgumentError(
        "command is empty: give the program to run (rauha sandbox -- CMD ARGS...)");
  }
  if (!r.name().empty()) RAUHA_RETURN_IF_ERROR(ValidateZoneName(r.name()));
  if (!r.repo_path().empty() && r.repo_path()[0] != '/') {
    return absl::InvalidArgumentError(
        StrCat("repo_path \"", r.repo_path(), "\" must be an absolute path"));
  }
  RAUHA_RETURN_IF_ERROR(RefuseControlCharacters("workdir", r.workdir()));
  if (!r.workdir().empty() && r.workdir()[0] != '/') {
    return absl::InvalidArgumentError(
        StrCat("workdir \"", r.workdir(), "\" must be an absolute path inside the zone"));
  }
  for (const auto& [k, v] : r.env()) {
    if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos ||
        v.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          StrCat("env key \"", k, "\" is invalid: keys are non-empty and hold no '=' or NUL"));
    }
  }
  for (const auto& arg : r.command()) {
    if (arg.find('\0') != std::string::npos) {
      return absl::InvalidArgumentError("command arguments cannot contain NUL bytes");
    }
  }
  if (r.timeout_ms() > kMaxTimeoutMs ||
      (r.has_kill_after_ms() && r.kill_after_ms() > kMaxTimeoutMs)) {
    return absl::InvalidArgumentError(StrCat("timeout_ms and kill_after_ms are at most ",
                                             kMaxTimeoutMs, " (what timeout_seconds can say)"));
  }
  if (r.stdin_data().size() > kMaxStdinBytes) {
    return absl::InvalidArgumentError(StrCat("stdin_data holds ", r.stdin_data().size(),
                                             " bytes; at most ", kMaxStdinBytes,
                                             " can be passed (put larger input in repo_path)"));
  }
  if (r.has_gid() && !r.has_uid()) {
    return absl::InvalidArgumentError("gid is set without uid: give both, or uid alone");
  }
  if ((r.has_uid() && r.uid() == UINT32_MAX) || (r.has_gid() && r.gid() == UINT32_MAX)) {
    return absl::InvalidArgumentError(
        "uid and gid 4294967295 mean \"no change\" to the kernel and cannot be a task's user");
  }
  if (r.output_limit_bytes() > kMaxOutputLimit) {
    return absl::InvalidArgumentError(StrCat("output_limit_bytes ", r.output_limit_bytes(),
                                             " is over the maximum of ", kMaxOutputLimit));
  }
  return absl::OkStatus();
}

// Raising a hard limit needs CAP_SYS_RESOURCE, which rauhad may lack (this VM does): never ask
// for more than rauhad itself has.
shim::Rlimit NofileLimit() {
  rlimit own{};
  ::getrlimit(RLIMIT_NOFILE, &own);
  uint64_t hard = std::min<uint64_t>(65536, own.rlim_max);
  return {"RLIMIT_NOFILE", std::min<uint64_t>(1024, hard), hard};
}

void AddEvent(pb::SandboxResult& result, int64_t nanos, std::string kind, std::string message) {
  auto* e = result.add_events();
  e->set_timestamp(Rfc3339FromNanos(nanos));
  e->set_kind(std::move(kind));
  e->set_message(std::move(message));
}

std::string ZoneNameOf(ZoneManager* zones, const ZoneView& own, const std::string& zone_id) {
  if (zone_id.empty()) return "";
  if (zone_id == own.id) return own.name;
  auto other = zones->FindById(zone_id);
  return other ? other->name : zone_id;
}

void FillSummary(pb::EnforcementEventSummary* e, ZoneManager* zones, const ZoneView& zone,
                 const EnforcementEvent& ev) {
  e->set_timestamp(Rfc3339FromNanos(ev.time_ns));
  e->set_hook(ev.hook);
  e->set_action(ev.action);
  e->set_decision(ev.decision);
  e->set_message(ev.message);
  if (ev.pid != 0) e->set_pid(ev.pid);
  e->set_source_zone(ZoneNameOf(zones, zone, ev.zone_id.empty() ? zone.id : ev.zone_id));
  e->set_target_zone(ZoneNameOf(zones, zone, ev.target_zone));
  e->set_object(ev.object);
  e->set_comm(ev.comm);
  e->set_layer(ev.layer);
}

// The kernel's events (ring buffer) and the shim's (seccomp), in time order.
void AddEnforcementEvents(pb::SandboxResult& result, ZoneManager* zones, const ZoneView& zone,
                          TaskEvents kernel, const shim::TaskResult* from_shim) {
  std::vector<EnforcementEvent> all = std::move(kernel.events);
  uint64_t lost = kernel.lost;
  if (from_shim) {
    all.insert(all.end(), from_shim->enforcement_events.begin(),
               from_shim->enforcement_events.end());
    lost += from_shim->enforcement_events_lost;
  }
  std::stable_sort(all.begin(), all.end(),
                   [](const auto& a, const auto& b) { return a.time_ns < b.time_ns; });
  for (const auto& ev : all) {
    FillSummary(result.add_enforcement_events(), zones, zone, ev);
    // A secret's placeholder sent where it may not go: said among the task's events too.
    if (ev.action == "secret_misuse") AddEvent(result, ev.time_ns, "secret_misuse", ev.message);
    // The zone's egress byte budget spent: its proxy connections were cut.
    if (ev.action == "egress_budget") AddEvent(result, ev.time_ns, "egress_budget", ev.message);
  }
  result.set_enforcement_events_lost(lost);
}

// What every task of `zone` gets (its command, probe flag and timeout are the caller's).
shim::TaskSpec SpecFor(const ZoneView& zone, const std::string& task_id,
                       const pb::RunSandboxRequest& req, const HostPath* repo,
                       uint64_t output_limit, const std::string& spool_dir) {
  shim::TaskSpec spec;
  spec.task_id = task_id;
  std::map<std::string, std::string> env = {{"PATH", kDefaultPath},
                                            {"HOME", "/tmp"},
                                            {"LANG", "C.UTF-8"},
                                            {"RAUHA_ZONE", zone.name},
                                            {"RAUHA_TASK_ID", task_id}};
  if (!zone.policy.network.allowed_hosts.empty() &&
      zone.policy.network.mode != policy::NetworkMode::kHost) {
    // The proxy's listener in the zone's own namespace (egress/zone_listener.h).
    std::string proxy = StrCat("http://127.0.0.1:", egress::kZoneProxyPort);
    for (const char* k : {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"}) env[k] = proxy;
    for (const char* k : {"NO_PROXY", "no_proxy"}) env[k] = "localhost,127.0.0.1,::1";
  }
  for (const auto& [k, v] : req.env()) env[k] = v;
  for (const auto& [k, v] : env) spec.env.push_back(StrCat(k, "=", v));
  if (repo) {
    spec.mounts.push_back(
        {repo->path, "/workspace", false, repo->identity.dev, repo->identity.ino});
  }
  spec.workdir = !req.workdir().empty() ? req.workdir() : (repo ? "/workspace" : "/");
  spec.cgroup_v2 = zone.cgroup.v2_path;
  spec.cgroup_v1 = zone.cgroup.v1_paths;
  spec.writable_paths = zone.policy.filesystem.writable_paths;
  spec.devices = zone.policy.devices.allowed;
  spec.capabilities = zone.policy.capabilities.allowed;
  spec.rlimits = {NofileLimit(), {"RLIMIT_CORE", 0, 0}};
  spec.no_new_privs = true;
  spec.seccomp = true;
  spec.seccomp_deny = zone.policy.syscalls.deny;
  spec.landlock = true;
  spec.exec_allowed = zone.policy.exec.allowed;
  spec.timeout_ms = TimeoutMsOf(req);
  spec.kill_after_ms = KillAfterMsOf(req);
  spec.output_limit = req.output_limit_bytes() ? req.output_limit_bytes() : output_limit;
  spec.zone_address = zone.address;
  spec.output_dir = req.output_dir();
  spec.output_spool_dir = spool_dir;
  spec.stdin_data = req.stdin_data();
  if (req.has_uid()) {
    spec.uid = req.uid();
    spec.gid = req.has_gid() ? req.gid() : req.uid();
  }
  return spec;
}

// Proto3 strings must be valid UTF-8 (protobuf refuses to serialize anything else): `text`
// gets the valid rendering, `exact` the bytes when that rendering is not them. A head cut at
// the output limit may end inside a character; that is not counted as invalid.
void SetOutput(const std::string& data, bool truncated, std::string* text, std::string* exact) {
  std::string_view head = data;
  if (truncated) head = head.substr(0, WithoutIncompleteTail(head));
  if (IsValidUtf8(head)) {
    text->assign(head);
    return;
  }
  *text = ToValidUtf8(data);
  *exact = data;
}

// A recovered task's timeout is not known here (the shim enforced it): said without numbers.
std::string TimeoutError(uint64_t timeout_ms, uint64_t kill_after_ms, bool killed_after_grace) {
  std::string head =
      timeout_ms ? StrCat("timed out after ", Seconds(timeout_ms)) : std::string("timed out");
  if (timeout_ms && kill_after_ms == 0) return StrCat(head, ": SIGKILLed (no grace)");
  std::string grace = timeout_ms ? Seconds(kill_after_ms) : std::string("grace period");
  if (killed_after_grace) {
    return StrCat(head, ": sent SIGTERM to its processes; still running after the ", grace,
                  ", so SIGKILLed");
  }
  return StrCat(head, ": sent SIGTERM to its processes; it ended within the ", grace);
}

// The image's config under the request: Env below the request's env (and above rauhad's
// defaults), WorkingDir unless the request names one or mounts a repository, the User.
template <typename Prepared>
void ApplyImage(const Prepared& image, const pb::RunSandboxRequest& req, shim::TaskSpec& spec) {
  spec.image_layers = image.layer_dirs;
  // The request's uid wins over the image's User; root there means no switch.
  if (!req.has_uid() && (image.user.uid != 0 || image.user.gid != 0)) {
    spec.uid = image.user.uid;
    spec.gid = image.user.gid;
  }
  std::map<std::string, std::string> env;
  for (const auto& kv : spec.env) {
    size_t eq = kv.find('=');
    env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& kv : image.config.env) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    std::string key = kv.substr(0, eq);
    if (req.env().count(key) || key == "RAUHA_ZONE" || key == "RAUHA_TASK_ID") continue;
    env[key] = kv.substr(eq + 1);
  }
  spec.env.clear();
  for (const auto& [k, v] : env) spec.env.push_back(StrCat(k, "=", v));
  if (req.workdir().empty() && req.repo_path().empty() && !image.config.working_dir.empty() &&
      image.config.working_dir[0] == '/') {
    spec.workdir = image.config.working_dir;
  }
}

// What the shim had kept of a stream when it died (shim::TaskOutputSpoolPath); the file is
// removed. Empty when there is none (the zone is gone, or the task printed nothing).
std::string TakeSpooledOutput(const std::string& path, uint64_t limit) {
  std::string data;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd) {
    char buf[65536];
    while (data.size() < limit) {
      ssize_t n = ::read(fd.get(), buf, std::min<uint64_t>(sizeof(buf), limit - data.size()));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      data.append(buf, static_cast<size_t>(n));
    }
  }
  ::unlink(path.c_str());
  return data;
}

// The output a task whose shim died had produced, from the shim's spool (removed here).
void AddSpooledOutput(pb::SandboxResult& result, const std::string& spool_dir,
                      const std::string& task_id, uint64_t limit) {
  for (bool is_stderr : {false, true}) {
    std::string data =
        TakeSpooledOutput(shim::TaskOutputSpoolPath(spool_dir, task_id, is_stderr), limit);
    // The shim spools at most the limit: a full file may have been cut there.
    const bool truncated = data.size() >= limit;
    if (is_stderr) {
      SetOutput(data, truncated, result.mutable_stderr(), result.mutable_stderr_bytes());
      result.set_stderr_truncated(truncated);
    } else {
      SetOutput(data, truncated, result.mutable_stdout(), result.mutable_stdout_bytes());
      result.set_stdout_truncated(truncated);
    }
  }
}

std::string CommandJson(const std::vector<std::string>& command) {
  return nlohmann::json(command).dump();
}

}  // namespace

shim::TaskSpec ZoneTaskSpec(const ZoneView& zone, const std::string& task_id) {
  return SpecFor(zone, task_id, pb::RunSandboxRequest(), nullptr, shim::kDefaultOutputLimit, "");
}

TaskRunner::TaskRunner(DaemonConfig config, store::Store* store, ZoneManager* zones,
                       EventBus* events, image::ImageStore* images, image::LayerCache* layers)
    : config_(std::move(config)),
      store_(store),
      zones_(zones),
      events_(events),
      images_(images),
      layers_(layers) {}

absl::StatusOr<TaskRunner::PreparedImage> TaskRunner::PrepareImage(const std::string& reference) {
  if (images_ == nullptr || layers_ == nullptr) {
    return absl::FailedPreconditionError("this rauhad runs without an image store");
  }
  auto resolved = images_->Resolve(reference);
  if (absl::IsNotFound(resolved.status())) {
    return absl::NotFoundError(StrCat("image \"", reference,
                                      "\" is not in this rauhad's store: pull it first with "
                                      "rauha image pull ",
                                      reference));
  }
  if (!resolved.ok()) return resolved.status();
  if (resolved->layers.empty()) {
    return absl::FailedPreconditionError(
        StrCat("image ", reference, " has no layers: there is no root filesystem to run on"));
  }
  PreparedImage out;
  out.manifest_digest = resolved->manifest_digest;
  std::vector<std::string> digests;
  for (const auto& layer : resolved->layers) digests.push_back(layer.digest);
  out.lease = std::make_unique<image::ImageStore::Lease>(images_, std::move(digests));
  std::vector<image::LayerBlob> top_first(resolved->layers.rbegin(), resolved->layers.rend());
  RAUHA_ASSIGN_OR_RETURN(out.layer_dirs, layers_->EnsureAll(top_first));
  for (const auto& layer : top_first) out.layer_digests.push_back(layer.digest);
  auto config = image::ParseImageConfig(resolved->config_json);
  if (!config.ok()) return Annotate(config.status(), StrCat("image ", reference));
  out.config = *std::move(config);
  auto user = image::ResolveImageUser(out.config.user, out.layer_dirs);
  if (!user.ok()) return Annotate(user.status(), StrCat("image ", reference));
  out.user = *user;
  return out;
}

TaskRunner::~TaskRunner() { Stop(); }

void TaskRunner::Stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    threads.swap(collectors_);
  }
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
}

pb::SandboxResult TaskRunner::Collect(Task& task, const ZoneView& zone, uint64_t oom_before,
                                      const std::function<bool()>& cancelled, bool* was_cancelled) {
  pb::SandboxResult result;
  result.set_task_id(task.id);
  result.set_zone_id(zone.id);
  result.set_zone_name(zone.name);
  for (const auto& c : task.command) result.add_command(c);
  for (const auto& u : zone.unavailable) result.add_unavailable_controls(u);
  result.set_enforcement_events_lost(0);

  ShimClient shim(zone.shim_socket);
  EnforcementHub* hub = zones_->hub();
  // Live seccomp denials go to watchers and counters now; the result takes the shim's
  // complete list below.
  // A denial the shim recorded before rauhad's wait reached it was not streamed: it is
  // published from the result below, once (keyed by its time and pid).
  std::set<std::pair<int64_t, uint32_t>> streamed;
  auto live = [&](const EnforcementEvent& e) {
    streamed.emplace(e.time_ns, e.pid);
    if (hub) hub->Publish(e);
    if (task.stream && task.stream->on_event) {
      pb::EnforcementEventSummary summary;
      FillSummary(&summary, zones_, zone, e);
      task.stream->on_event(summary);
    }
  };
  // A streamed task gets the kernel's events for it (cgroup-bpf, nftables drops) live too:
  // the thread that reads them only queues them, and this one sends them between the shim's
  // frames. The ones still queued when the task ends go with the rest of the result's.
  std::shared_ptr<LiveEventQueue> kernel_live;
  std::optional<ShimWake> wake;
  if (hub && task.shim_stream && task.stream && task.stream->on_event) {
    if (auto queue = LiveEventQueue::Create(); queue.ok()) {
      kernel_live = std::make_shared<LiveEventQueue>(*std::move(queue));
      wake.emplace(ShimWake{kernel_live->fd(), [&] {
                              for (const auto& e : kernel_live->TakeAll()) {
                                pb::EnforcementEventSummary summary;
                                FillSummary(&summary, zones_, zone, e);
                                task.stream->on_event(summary);
                              }
                            }});
      hub->SetTaskLive(task.id, [kernel_live](const EnforcementEvent& e) { kernel_live->Push(e); });
    }
  }
  static const std::function<void(bool, std::string_view)> kNoOutput;
  auto r = task.shim_stream ? task.shim_stream->Wait(
                                  task.id, task.stream ? task.stream->on_output : kNoOutput, live,
                                  cancelled, task.wait_timeout_ms, wake ? &*wake : nullptr)
                            : shim.Wait(task.id, cancelled, live, task.wait_timeout_ms);
  // Not read any more: the shim must not pace the task (or hold its end) by it.
  if (task.shim_stream) task.shim_stream->Close();
  SpanTrace::MarkCurrent("shim_wait");
  if (!r.ok() && absl::IsCancelled(r.status())) {
    if (was_cancelled) *was_cancelled = true;
    (void)shim.Kill(task.id, SIGKILL, kKillTimeoutMs);
    r = shim.Wait(task.id, nullptr, live, kReapTimeoutMs);
  }
  // The task has ended (or its shim is gone): everything it made the kernel report is in the
  // ring buffer, and EndTask drains it.
  TaskEvents kernel_events = hub ? hub->EndTask(task.id) : TaskEvents{};
  SpanTrace::MarkCurrent("events_drain");
  // Set before the zone's shim was told to kill its tasks, so it is here if that is why.
  std::string kill_reason = zones_->TaskKillReason(zone.id);
  if (!r.ok()) {
    result.set_status("runtime_error");
    auto still = zones_->FindById(zone.id);
    if (!kill_reason.empty()) {
      result.set_error(StrCat("the task was killed: ", kill_reason));
    } else if (!still) {
      result.set_error("the zone was deleted while the task ran");
    } else {
      result.set_error(
          absl::IsDeadlineExceeded(r.status())
              ? StrCat("the zone's shim (pid ", zone.shim_pid,
                       ") did not report the task's end within its timeout, its SIGKILL grace and ",
                       kReportGraceMs / 1000, " s more: it is hung (`rauha zone delete --force ",
                       zone.name, "` removes the zone and what runs in it)")
              : StrCat("lost the zone's shim while the task ran: ", r.status().message()));
      if (!ProcessCmdlineContains(static_cast<pid_t>(zone.shim_pid), zone.id)) {
        zones_->MarkShimLost(zone.id, StrCat("its shim (pid ", zone.shim_pid,
                                             ") died; processes and cgroups removed"));
      }
    }
    // The output the task had produced: the shim wrote what it kept to the spool dir too.
    AddSpooledOutput(result, config_.TaskOutputSpoolDir(), task.id,
                     task.output_limit ? task.output_limit : kMaxOutputLimit);
    // It ran from its start until the loss was seen, as far as anyone can tell.
    const int64_t finished_ns = NowUnixNanos();
    result.set_started_at(task.started_at);
    result.set_finished_at(Rfc3339FromNanos(finished_ns));
    if (task.started_at_ns > 0 && finished_ns > task.started_at_ns) {
      result.set_duration_ms(static_cast<uint64_t>((finished_ns - task.started_at_ns) / 1000000));
    }
    AddEnforcementEvents(result, zones_, zone, std::move(kernel_events), nullptr);
    return result;
  }
  const shim::TaskResult& t = *r;
  if (hub) {
    for (const auto& e : t.enforcement_events) {
      if (!streamed.contains({e.time_ns, e.pid})) hub->Publish(e);
    }
  }
  if (!t.start_error.empty()) {
    result.set_status("runtime_error");
    result.set_error(StrCat("the task could not start: ", t.start_error));
  } else if (t.timed_out) {
    result.set_status("timed_out");
    result.set_error(TimeoutError(task.timeout_ms, task.kill_after_ms, t.killed_after_grace));
  } else if (t.exit_code && *t.exit_code == 0) {
    result.set_status("succeeded");
  } else {
    result.set_status("failed");
  }
  if (t.killed && !kill_reason.empty() && result.error().empty()) {
    result.set_error(StrCat("the task was killed: ", kill_reason));
  }
  if (t.exit_code) result.set_exit_code(*t.exit_code);
  if (t.signal) result.set_signal(*t.signal);
  SetOutput(t.stdout_data, t.stdout_truncated, result.mutable_stdout(),
            result.mutable_stdout_bytes());
  SetOutput(t.stderr_data, t.stderr_truncated, result.mutable_stderr(),
            result.mutable_stderr_bytes());
  result.set_stdout_truncated(t.stdout_truncated);
  result.set_stderr_truncated(t.stderr_truncated);
  result.set_started_at(Rfc3339FromNanos(t.started_at_ns));
  result.set_finished_at(Rfc3339FromNanos(t.finished_at_ns));
  if (t.finished_at_ns > t.started_at_ns) {
    result.set_duration_ms(static_cast<uint64_t>((t.finished_at_ns - t.started_at_ns) / 1000000));
  }
  auto* res = result.mutable_resources();
  res->set_cpu_user_ms(t.cpu_user_us / 1000);
  res->set_cpu_system_ms(t.cpu_system_us / 1000);
  uint64_t peak = t.max_rss_kb * 1024;
  // Two files, not ReadStats' dozen: the limit is read only for an OOM kill's message.
  auto stats = cgroup::ReadTaskEndStats(zone.cgroup);
  if (stats.ok()) {
    // A temporary zone holds only this task, so its cgroup peak is the task's peak.
    if (task.remove_zone) peak = std::max(peak, stats->memory_peak);
    if (stats->oom_kills > oom_before) {
      res->set_oom_killed(true);
      auto full = cgroup::ReadStats(zone.cgroup);
      std::string msg =
          StrCat("the kernel OOM killer ended a process of the task (zone memory limit ",
                 full.ok() ? full->memory_limit : 0, " bytes)");
      AddEvent(result, t.finished_at_ns, "oom_kill", msg);
      if (result.error().empty()) result.set_error(msg);
      events_->Publish(zone.name, "task.oom", StrCat(task.id, ": ", msg));
    }
  }
  res->set_peak_memory_bytes(peak);

  AddEvent(result, t.started_at_ns, "started", StrCat("pid ", t.pid, " in zone ", zone.name));
  for (const auto& w : t.warnings) {
    AddEvent(result, t.started_at_ns, "warning", w);
    // A control the shim could not give this task (one on a containerd root keeps host ids).
    if (w.rfind("zone.userns:", 0) == 0) result.add_unavailable_controls(w);
  }
  if (t.timed_out) AddEvent(result, t.finished_at_ns, "timeout", result.error());
  std::string end = t.start_error.empty()
                        ? (t.exit_code ? StrCat("exited with code ", *t.exit_code)
                                       : StrCat("killed by signal ", t.signal.value_or(0)))
                        : StrCat("did not start: ", t.start_error);
  AddEvent(result, t.finished_at_ns, "exited", end);
  {
    std::vector<EnforcementEvent> seen = kernel_events.events;
    seen.insert(seen.end(), t.enforcement_events.begin(), t.enforcement_events.end());
    if (auto hint = net::DnsHint(zone.policy.network, t.stdout_data, t.stderr_data, seen)) {
      AddEvent(result, t.finished_at_ns, "hint", *hint);
    }
  }
  AddEnforcementEvents(result, zones_, zone, std::move(kernel_events), &t);
  events_->Publish(zone.name, "task.exited", StrCat(task.id, ": ", end));
  SpanTrace::MarkCurrent("result");
  // A temporary zone's shim goes with the zone right after this call, and the result with it:
  // no round trip to drop it first (until then it stays for a rauhad that restarts).
  if (!task.remove_zone) {
    (void)shim.Forget(task.id);
    SpanTrace::MarkCurrent("shim_forget");
  }
  return result;
}

void TaskRunner::Seal(const ZoneView& zone, pb::SandboxResult& result) {
  if (!recorder_) return;
  std::vector<std::string> layers;
  for (const auto& l : zone.layers) {
    if (l.active) layers.push_back(l.name);
  }
  recorder_->TaskFinished(zone.policy, layers, result);
}

void TaskRunner::Finish(const std::shared_ptr<Task>& task) {
  const bool retire = task->remove_zone && task->pooled && pool_;
  // No task starts in it from now on, and it does not go back to Ready on the way to its
  // deletion (Running -> Stopping): a transition, an event and a signed record fewer per call.
  if (retire) zones_->MarkRetiring(task->zone_name);
  zones_->EndTask(task->zone_id);
  SpanTrace::MarkCurrent("end_task");
  if (retire && task->retire_later) {
    *task->retire_later = task->zone_name;
    task->retire_later = nullptr;
  } else if (retire) {
    pool_->Retire(task->zone_name);  // deleted off the request path
  } else if (task->remove_zone) {
    auto st = zones_->Delete(task->zone_name, /*force=*/true);
    if (!st.ok() && !absl::IsNotFound(st)) {
      std::fprintf(stderr, "rauhad: removing temporary zone %s: %s\n", task->zone_name.c_str(),
                   ToStd(st.message()).c_str());
    }
  }
  std::lock_guard lock(mu_);
  task->done = true;
  cv_.notify_all();
}

absl::StatusOr<pb::SandboxResult> TaskRunner::Run(
    const pb::RunSandboxRequest& req, const std::function<bool()>& cancelled,
    const std::function<void(const std::string& task_id)>& on_recorded, const TaskStream* stream) {
  SpanTrace trace("rauhad", "RunSandbox");
  absl::StatusOr<pb::SandboxResult> result;
  std::string retire;
  {
    // Every record of this call (its temporary zone, the task, the receipt) is made durable
    // by one fsync before it answers.
    audit::Recorder::Batch audit_batch(recorder_);
    result = RunBatched(req, cancelled, on_recorded, stream, &retire);
    trace.Mark("unwind");
  }
  trace.Mark("audit_flush");
  // The pooled zone's deletion (its shim's shutdown, cgroups, BPF, records and their own
  // fsync) starts once this call's records are durable: started earlier, on the pool's
  // thread, it competed with the call for the CPUs and the audit log's sync.
  if (!retire.empty()) pool_->Retire(retire);
  return result;
}

absl::StatusOr<pb::SandboxResult> TaskRunner::RunBatched(
    const pb::RunSandboxRequest& req, const std::function<bool()>& cancelled,
    const std::function<void(const std::string& task_id)>& on_recorded, const TaskStream* stream,
    std::string* retire_later) {
  RAUHA_RETURN_IF_ERROR(ValidateRequest(req));
  if (!req.output_dir().empty()) RAUHA_RETURN_IF_ERROR(CheckOutputDir(req.output_dir(), config_));
  // The repo path is checked before any zone exists, so a refusal changes nothing; the zone's
  // type decides which rules apply, and is checked again once the zone is known.
  std::optional<HostPath> repo;
  bool repo_checked_as_privileged = false;
  if (!req.repo_path().empty()) {
    RAUHA_ASSIGN_OR_RETURN(policy::ZoneType type,
                           zones_->TypeForTask(req.name(), req.policy_toml()));
    repo_checked_as_privileged = type == policy::ZoneType::kPrivileged;
    RAUHA_ASSIGN_OR_RETURN(repo, OpenRepoPath(req.repo_path(), type));
  }
  auto task = std::make_shared<Task>();
  task->retire_later = retire_later;
  task->id = NewUuid();
  task->command.assign(req.command().begin(), req.command().end());
  task->timeout_ms = TimeoutMsOf(req);
  task->kill_after_ms = KillAfterMsOf(req);
  // The image is made ready before any zone exists: a missing or bad image changes nothing.
  std::optional<PreparedImage> image;
  if (!req.image().empty()) {
    auto prepared = PrepareImage(req.image());
    if (!prepared.ok()) return prepared.status();
    image = *std::move(prepared);
    if (task->command.empty()) {
      task->command = image->config.entrypoint;
      task->command.insert(task->command.end(), image->config.cmd.begin(), image->config.cmd.end());
      if (task->command.empty() || task->command[0].empty()) {
        return absl::InvalidArgumentError(StrCat("image ", req.image(),
                                                 " has no Entrypoint or Cmd: give the command "
                                                 "to run (rauha sandbox --image IMG -- CMD...)"));
      }
    }
  }

  std::string zone_name = req.name();
  // Setting up the zone (its policy parsed, cgroups, namespaces, BPF) is a zone operation: it
  // takes its turn with CreateZone and the others.
  // A pooled zone is already set up: taking it is no zone operation.
  std::optional<std::string> pooled;
  if (zone_name.empty() && !req.keep_zone() && pool_) pooled = pool_->Claim(req.policy_toml());
  SpanTrace::MarkCurrent(pooled ? "pool_claim" : "validate");
  CallGate::Slot zone_slot;
  if (zone_gate_ && !pooled) {
    RAUHA_ASSIGN_OR_RETURN(zone_slot, zone_gate_->Acquire(cancelled));
  }
  if (pooled) {
    zone_name = *std::move(pooled);
    task->remove_zone = true;
    task->pooled = true;
  } else if (zone_name.empty()) {
    zone_name = StrCat("task-", task->id.substr(0, 8));
    RAUHA_RETURN_IF_ERROR(
        zones_->Create(zone_name, "", req.policy_toml(), !req.keep_zone()).status());
    task->remove_zone = !req.keep_zone();
  } else {
    auto existing = zones_->Get(zone_name);
    if (absl::IsNotFound(existing.status())) {
      auto created = zones_->Create(zone_name, "", req.policy_toml(), false);
      if (!created.ok() && !absl::IsAlreadyExists(created.status())) return created.status();
    } else if (!existing.ok()) {
      return existing.status();
    } else if (!req.policy_toml().empty()) {
      return absl::InvalidArgumentError(
          StrCat("zone \"", zone_name,
                 "\" exists; policy_toml only applies to a zone this call "
                 "creates (change its policy with ApplyPolicy)"));
    }
  }
  zone_slot = CallGate::Slot();
  SpanTrace::MarkCurrent("zone");
  // The zone's Running record is signed and written while its shim starts the task (or when
  // this call fails before that), not under the registry's lock on the call's path.
  audit::Recorder::Hold running_record(recorder_);
  auto zone_or = zones_->BeginTask(zone_name);
  if (!zone_or.ok()) {
    if (task->remove_zone) (void)zones_->Delete(zone_name, true);
    return zone_or.status();
  }
  ZoneView zone = *std::move(zone_or);
  SpanTrace::MarkCurrent("begin_task");
  task->zone_id = zone.id;
  task->zone_name = zone.name;
  if (repo && repo_checked_as_privileged && zone.zone_type != policy::ZoneType::kPrivileged) {
    // The named zone was replaced by a non-privileged one since the check.
    auto again = OpenRepoPath(req.repo_path(), zone.zone_type);
    if (!again.ok()) {
      zones_->EndTask(zone.id);
      if (task->remove_zone) (void)zones_->Delete(zone_name, true);
      return again.status();
    }
    repo = *std::move(again);
  }

  shim::TaskSpec spec = SpecFor(zone, task->id, req, repo ? &*repo : nullptr, config_.output_limit,
                                config_.TaskOutputSpoolDir());
  spec.argv = task->command;
  if (image) ApplyImage(*image, req, spec);
  if (stream) {
    spec.tty = stream->tty;
    spec.tty_rows = stream->rows;
    spec.tty_cols = stream->cols;
    spec.stdin_pipe = stream->stdin_pipe && !stream->tty;
  }
  SpanTrace::MarkCurrent("spec_for");
  std::set<std::string> request_env_keys;
  for (const auto& [k, v] : req.env()) request_env_keys.insert(k);
  // Held until the result is made: the proxy knows the task's placeholders while it runs.
  auto granted = TaskSecrets::Grant(secret_store_, proxy_, zone, task->id, request_env_keys, spec);
  if (!granted.ok()) {
    zones_->EndTask(zone.id);
    if (task->remove_zone) (void)zones_->Delete(zone_name, true);
    return granted.status();
  }
  std::unique_ptr<TaskSecrets> task_secrets = *std::move(granted);
  SpanTrace::MarkCurrent("secrets");

  uint64_t oom_before = 0;
  if (auto kills = cgroup::ReadOomKills(zone.cgroup); kills.ok()) oom_before = *kills;
  SpanTrace::MarkCurrent("oom_read");

  task->started_at_ns = NowUnixNanos();
  task->started_at = Rfc3339FromNanos(task->started_at_ns);
  task->output_limit = spec.output_limit;
  store::TaskRecord rec{task->id, zone.id,          CommandJson(task->command), "running",
                        0,        task->started_at, task->remove_zone,          ""};
  {
    std::lock_guard lock(mu_);
    tasks_[task->id] = task;
  }
  ShimClient shim(zone.shim_socket);
  // Collect before the task can run: its first denial may come before Start returns.
  EnforcementHub* hub = zones_->hub();
  if (hub) hub->BeginTask(task->id, zone.id, 0);
  // The task's timeout bounds the calls to its shim too: a hung shim fails the request when
  // the task would have timed out, not 30 s later (start) or never (wait). The gRPC deadline
  // and the client going away bound them through `cancelled`.
  // (Both are at most kMaxTimeoutMs, so the sum fits.) SIGKILL comes kill_after_ms after the
  // timeout's SIGTERM, and the report after that.
  const auto budget_ms = static_cast<int64_t>(task->timeout_ms);
  const int64_t start_ms = budget_ms > 0 ? std::min(budget_ms, kStartTimeoutMs) : kStartTimeoutMs;
  task->wait_timeout_ms =
      budget_ms > 0
          ? ClampMs(budget_ms + static_cast<int64_t>(task->kill_after_ms) + kReportGraceMs)
          : -1;
  SpanTrace::MarkCurrent("spec");
  // The task is started on the connection that then waits for it (the wait is sent with the
  // start); a streaming task gets its output there from the first byte (ShimTaskStream).
  ShimTaskStream shim_conn(zone.shim_socket, stream != nullptr);
  task->stream = stream;
  task->shim_stream = &shim_conn;
  auto pid = shim_conn.Start(spec, cancelled, ClampMs(start_ms), [&] {
    SpanTrace::MarkCurrent("shim_send");
    running_record.Release();
    SpanTrace::MarkCurrent("held_records");
  });
  running_record.Release();  // (when the request could not be sent)
  SpanTrace::MarkCurrent("shim_start");
  if (!pid.ok()) {
    if (absl::IsCancelled(pid.status())) {
      // It may start after all, in a shim that answers late, for a client that is gone. (Past
      // a timeout the shim ends it itself: the timeout is in the spec.)
      (void)shim.Kill(task->id, SIGKILL, kStartKillTimeoutMs);
    }
    if (hub) (void)hub->EndTask(task->id);
    {
      std::lock_guard lock(mu_);
      tasks_.erase(task->id);
    }
    Finish(task);
    if (absl::IsDeadlineExceeded(pid.status())) {
      return absl::DeadlineExceededError(
          StrCat("starting the task: the shim of zone \"", zone.name, "\" (pid ", zone.shim_pid,
                 ") did not answer within ", start_ms,
                 " ms (the task's timeout bounds its start); it is hung or overloaded (`rauha zone "
                 "delete --force ",
                 zone.name, "` removes the zone)"));
    }
    return Annotate(pid.status(), "starting the task");
  }
  if (hub) hub->SetTaskPidns(task->id, PidNamespaceOf(*pid));
  rec.pid = *pid;
  if (auto st = store_->PutTask(rec); !st.ok()) {
    // A task the database does not hold would be lost to a restart: it does not run.
    (void)shim.Kill(task->id, SIGKILL, kKillTimeoutMs);
    (void)shim.Wait(task->id, nullptr, nullptr, kReapTimeoutMs);
    (void)shim.Forget(task->id);
    if (hub) (void)hub->EndTask(task->id);
    {
      std::lock_guard lock(mu_);
      tasks_.erase(task->id);
    }
    Finish(task);
    return Annotate(st, "recording the task (it was killed)");
  }
  SpanTrace::MarkCurrent("store_put");
  // ListTasks shows the pid from here on: a task listed as running is one a restarted rauhad
  // finds in its database (a client that saw it may wait for it after a crash).
  {
    std::lock_guard lock(mu_);
    task->pid = *pid;
  }
  // The client learns the id first: a watcher that sees the task start knows it was told.
  if (on_recorded) on_recorded(task->id);
  if (stream && stream->on_started) {
    stream->on_started({task->id, zone.id, zone.name, zone.shim_socket, *pid});
  }
  SpanTrace::MarkCurrent("on_recorded");
  events_->Publish(zone.name, "task.started", StrCat(task->id, ": ", task->command[0]));
  SpanTrace::MarkCurrent("publish");
  if (recorder_) recorder_->TaskStarted(zone.id, task->id, task->command);
  SpanTrace::MarkCurrent("recorded");

  bool was_cancelled = false;
  pb::SandboxResult result = Collect(*task, zone, oom_before, cancelled, &was_cancelled);
  task->stream = nullptr;  // the caller's, and the stream's, end with this call
  task->shim_stream = nullptr;
  if (image) result.set_image_digest(image->manifest_digest);
  Seal(zone, result);
  SpanTrace::MarkCurrent("receipt");
  task->result = result;
  if (auto st = store_->DeleteTask(task->id); !st.ok()) {
    // The result is the caller's now; the stale record is read as a lost task at the next
    // start and then collected or dropped like any other.
    std::fprintf(stderr, "rauhad: task %s: %s\n", task->id.c_str(), ToStd(st.message()).c_str());
  }
  SpanTrace::MarkCurrent("store_delete");
  Finish(task);
  SpanTrace::MarkCurrent("finish");
  {
    std::lock_guard lock(mu_);
    tasks_.erase(task->id);
  }
  if (was_cancelled) {
    return absl::CancelledError(
        "the client went away; the task was killed and its zone cleaned up");
  }
  return result;
}

absl::StatusOr<HostPath> TaskRunner::OpenRepoPath(const std::string& path,
                                                  policy::ZoneType type) const {
  if (type == policy::ZoneType::kPrivileged)
    return OpenDirectoryForPrivilegedZone("repo_path", path);
  return OpenExposableDirectory("repo_path", path, {config_.repo_roots, config_.DaemonPaths()});
}

absl::StatusOr<pb::SandboxResult> TaskRunner::Wait(const std::string& task_id,
                                                   const std::function<bool()>& cancelled) {
  std::unique_lock lock(mu_);
  auto it = tasks_.find(task_id);
  if (it == tasks_.end()) {
    return absl::NotFoundError(
        StrCat("task \"", task_id, "\" is unknown or its result was already collected"));
  }
  std::shared_ptr<Task> task = it->second;
  while (!task->done) {
    cv_.wait_for(lock, std::chrono::milliseconds(100));
    if (!task->done && cancelled && cancelled()) return absl::CancelledError("client went away");
  }
  // A recovered task's result is kept until someone collects it; this is that collection.
  if (tasks_.erase(task_id)) {
    store::LogRefused(store_->DeleteTask(task_id), StrCat("forgetting collected task ", task_id));
  }
  return task->result;
}

std::vector<pb::TaskInfo> TaskRunner::List(const std::string& zone_name) {
  std::lock_guard lock(mu_);
  std::vector<pb::TaskInfo> out;
  for (const auto& [id, t] : tasks_) {
    if (!zone_name.empty() && t->zone_name != zone_name) continue;
    pb::TaskInfo info;
    info.set_task_id(t->id);
    info.set_zone_name(t->zone_name);
    for (const auto& c : t->command) info.add_command(c);
    info.set_state(t->done ? "exited" : "running");
    info.set_pid(static_cast<uint32_t>(t->pid));
    info.set_started_at(t->started_at);
    out.push_back(std::move(info));
  }
  return out;
}

void TaskRunner::Recover() {
  auto records = store_->ListTasks();
  if (!records.ok()) return;
  for (const auto& rec : *records) {
    auto task = std::make_shared<Task>();
    task->id = rec.id;
    task->zone_id = rec.zone_id;
    task->pid = rec.pid;
    task->started_at = rec.started_at;
    task->started_at_ns = NanosFromRfc3339(rec.started_at);
    task->remove_zone = rec.remove_zone;
    auto cmd = nlohmann::json::parse(rec.command_json, nullptr, false);
    if (cmd.is_array()) {
      for (const auto& c : cmd) {
        if (c.is_string()) task->command.push_back(c.get<std::string>());
      }
    }
    if (rec.state == "exited") {
      task->done = task->result.ParseFromString(rec.result);
      if (!task->done) {
        store::LogRefused(store_->DeleteTask(rec.id), StrCat("dropping task ", rec.id));
        continue;
      }
      std::lock_guard lock(mu_);
      tasks_[task->id] = task;
      continue;
    }
    auto zone = zones_->FindById(rec.zone_id);
    absl::StatusOr<ZoneView> begun =
        zone ? zones_->BeginTask(zone->name)
             : absl::StatusOr<ZoneView>(absl::NotFoundError("zone gone"));
    if (!begun.ok()) {
      // Its zone's shim died with it: the task is lost, and says so.
      task->result.set_task_id(rec.id);
      task->result.set_zone_id(rec.zone_id);
      for (const auto& c : task->command) task->result.add_command(c);
      task->result.set_status("runtime_error");
      task->result.set_error(
          "the task's zone lost its shim while rauhad was down; the task is gone (its output "
          "up to then is kept; when it ended is not known)");
      task->result.set_started_at(rec.started_at);
      AddSpooledOutput(task->result, config_.TaskOutputSpoolDir(), rec.id, kMaxOutputLimit);
      task->done = true;
      store::TaskRecord done = rec;
      done.state = "exited";
      done.result = task->result.SerializeAsString();
      store::LogRefused(store_->PutTask(done), StrCat("recording the result of task ", rec.id));
      if (zone && rec.remove_zone) (void)zones_->Delete(zone->name, true);
      std::lock_guard lock(mu_);
      tasks_[task->id] = task;
      continue;
    }
    task->zone_name = begun->name;
    {
      std::lock_guard lock(mu_);
      tasks_[task->id] = task;
    }
    ZoneView view = *begun;
    // Denials while no rauhad ran were refused but not seen by the ring buffer's consumer.
    if (EnforcementHub* hub = zones_->hub())
      hub->BeginTask(task->id, view.id, PidNamespaceOf(task->pid));
    // Its placeholders, as it was granted them (they are in its environment): the proxy
    // replaces them again until it ends.
    std::shared_ptr<TaskSecrets> secrets;
    auto restored = TaskSecrets::Restore(secret_store_, proxy_, view.id, rec.id, nullptr);
    if (restored.ok()) {
      secrets = *std::move(restored);
    } else {
      std::fprintf(stderr, "rauhad: task %s: %s\n", rec.id.c_str(),
                   ToStd(restored.status().message()).c_str());
    }
    std::lock_guard lock(mu_);
    collectors_.emplace_back([this, task, view, rec, secrets]() mutable {
      pb::SandboxResult result = Collect(*task, view, 0, nullptr, nullptr);
      secrets.reset();  // the grant ends with the task
      Seal(view, result);
      store::TaskRecord done = rec;
      done.state = "exited";
      done.result = result.SerializeAsString();
      store::LogRefused(store_->PutTask(done), StrCat("recording the result of task ", rec.id));
      {
        std::lock_guard inner(mu_);
        task->result = std::move(result);
      }
      Finish(task);
    });
  }
}

}  // namespace rauha

namespace rauha {

absl::StatusOr<ProbeOutcome> TaskRunner::Probe(const std::string& zone_name,
                                               const std::function<bool()>& cancelled) {
  RAUHA_ASSIGN_OR_RETURN(ZoneView zone, zones_->BeginTask(zone_name));
  std::string task_id = StrCat("probe-", NewUuid());
  pb::RunSandboxRequest none;
  shim::TaskSpec spec = SpecFor(zone, task_id, none, nullptr, 1u << 20, "");
  spec.probe = true;
  spec.probe_skip = ProbesToSkip(zone.policy);  // no probe packet leaves the machine
  spec.timeout_ms = 30000;
  spec.kill_after_ms = 0;
  ShimClient shim(zone.shim_socket);
  EnforcementHub* hub = zones_->hub();
  if (hub) hub->BeginTask(task_id, zone.id, 0);
  auto pid = shim.Start(spec, cancelled, static_cast<int>(spec.timeout_ms));
  absl::StatusOr<shim::TaskResult> r = absl::UnknownError("not started");
  if (!pid.ok()) r = pid.status();
  if (pid.ok()) {
    if (hub) hub->SetTaskPidns(task_id, PidNamespaceOf(*pid));
    r = shim.Wait(
        task_id, cancelled,
        [hub](const EnforcementEvent& e) {
          if (hub) hub->Publish(e);
        },
        ClampMs(static_cast<int64_t>(spec.timeout_ms) + kReportGraceMs));
    if (!r.ok()) (void)shim.Kill(task_id, SIGKILL, kKillTimeoutMs);
    (void)shim.Forget(task_id);
  }
  TaskEvents kernel = hub ? hub->EndTask(task_id) : TaskEvents{};
  zones_->EndTask(zone.id);
  if (!r.ok()) return Annotate(r.status(), "running the isolation probes in the zone");
  if (!r->start_error.empty()) {
    return absl::InternalError(StrCat("the isolation probes could not start: ", r->start_error));
  }
  auto probes = shim::ProbeResultsFromJson(r->stdout_data);
  if (!probes.ok()) {
    return absl::InternalError(StrCat("the probe task's output does not parse: ",
                                      probes.status().message(), "; stderr: ", r->stderr_data));
  }
  ProbeOutcome out;
  out.probes = *std::move(probes);
  out.events = std::move(kernel.events);
  out.events.insert(out.events.end(), r->enforcement_events.begin(), r->enforcement_events.end());
  return out;
}

}  // namespace rauha
