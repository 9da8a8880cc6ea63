#include "rauhad/zone_manager.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/hostname.h"
#include "rauha-common/ids.h"
#include "rauha-common/landlock_abi.h"
#include "rauha-common/names.h"
#include "rauha-common/span_trace.h"
#include "rauha-common/strcat.h"
#include "rauha-common/timeutil.h"
#include "rauha-common/userns.h"
#include "rauhad/shim_client.h"

namespace rauha {
namespace {

constexpr std::string_view kDaemonStopped = "rauhad stopped; the zone restarts with rauhad";
// A shim answers hello from its event loop within microseconds; a second is a hung shim.
constexpr int kHungShimMs = 1000;
// The shim's own shutdown waits up to 5 s for its tasks to end after SIGKILL.
constexpr int kShimShutdownMs = 7000;

std::string ShimNetwork(const policy::Policy& p) {
  return p.network.mode == policy::NetworkMode::kHost ? "host" : "isolated";
}

// A network namespace a zone is to join: "" (none), or an absolute path that opens as one.
absl::Status CheckNetworkNamespace(const std::string& path) {
  if (path.empty()) return absl::OkStatus();
  if (path[0] != '/') {
    return absl::InvalidArgumentError(
        StrCat("network_namespace \"", path, "\" must be an absolute path"));
  }
  UniqueFd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns) {
    int err = errno;
    return absl::InvalidArgumentError(
        StrCat("network_namespace ", path, ": cannot open: ", std::strerror(err)));
  }
  if (::ioctl(ns.get(), NS_GET_NSTYPE) != CLONE_NEWNET) {
    return absl::InvalidArgumentError(
        StrCat("network_namespace ", path,
               " is not a network namespace (an nsfs bind mount or /proc/<pid>/ns/net)"));
  }
  return absl::OkStatus();
}

// Where a zone's network is, for the policy's warnings: `netns_path` is the namespace it joined.
policy::NetworkPlacement PlacementOf(const std::string& netns_path) {
  return netns_path.empty() ? policy::NetworkPlacement::kOwn : policy::NetworkPlacement::kJoined;
}

// Refuses what this rauhad cannot do for a zone of this type, before anything changes.
absl::Status CheckPolicySupported(const policy::Policy& p, policy::ZoneType type,
                                  bool bridged_available) {
  if (p.network.mode == policy::NetworkMode::kBridged && !bridged_available) {
    return absl::FailedPreconditionError(
        "network.mode = \"bridged\" is not available in this rauhad (no network configured); "
        "use \"isolated\" (loopback only) or, for privileged zones, \"host\"");
  }
  if (p.network.mode == policy::NetworkMode::kHost && type != policy::ZoneType::kPrivileged) {
    // Unlike the public project, on purpose: see README "Zones and policy".
    return absl::InvalidArgumentError(
        "network.mode = \"host\" is only allowed for privileged zones (zone_type "
        "\"privileged\"): on the host's network a zone shares the host's interfaces, addresses, "
        "ports and loopback services, and no zone network rule applies to it; use \"isolated\" "
        "or \"bridged\" with allowed_egress rules");
  }
  return absl::OkStatus();
}

// The warm pool fills zones from a thread with a raised nice value (pool/warm_pool.h). A new
// process inherits its creator thread's nice value, so the shim and every task it forks would
// run niced too: the spawn itself runs at normal priority (root may lower it again).
class NormalPriorityForSpawn {
 public:
  NormalPriorityForSpawn() : tid_(::gettid()) {
    errno = 0;
    int nice = ::getpriority(PRIO_PROCESS, static_cast<id_t>(tid_));
    if (errno == 0 && nice > 0 && ::setpriority(PRIO_PROCESS, static_cast<id_t>(tid_), 0) == 0)
      restore_ = nice;
  }
  ~NormalPriorityForSpawn() {
    if (restore_ > 0) (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(tid_), restore_);
  }
  NormalPriorityForSpawn(const NormalPriorityForSpawn&) = delete;
  NormalPriorityForSpawn& operator=(const NormalPriorityForSpawn&) = delete;

 private:
  pid_t tid_;
  int restore_ = 0;
};

// `replacing`: the policy a live zone had, whose CPU quota is lifted if `p` has none.
cgroup::Limits LimitsOf(const policy::Policy& p, const policy::Policy* replacing = nullptr) {
  cgroup::Limits l;
  l.cpu_period_us = p.resources.cpu_period_us;
  if (p.resources.cpu_quota_us) {
    l.cpu_quota_us = p.resources.cpu_quota_us;
  } else if (replacing && replacing->resources.cpu_quota_us) {
    l.cpu_quota_us = cgroup::kUnlimited;
  }
  // Unbounded is written ("max"), so that a policy applied to a live zone lifts a limit.
  l.memory_bytes = p.resources.memory_limit_bytes.value_or(cgroup::kUnlimited);
  l.pids_max = p.resources.pids_max.value_or(cgroup::kUnlimited);
  l.cpu_shares = p.resources.cpu_shares;
  l.io_weight = p.resources.io_weight;
  return l;
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string NsInode(const std::string& path) {
  std::error_code ec;
  auto target = std::filesystem::read_symlink(path, ec);
  return ec ? std::string() : target.string();
}

// Which user namespace owns the zone's namespaces (the shim's uts namespace, made with them),
// and the map the kernel shows for it: checked against what the zone was given.
IsolationCheckView UsernsCheck(uint32_t userns_first, const std::string& expected, pid_t shim) {
  std::string host_user = NsInode("/proc/self/ns/user");
  UniqueFd uts(::open(StrCat("/proc/", shim, "/ns/uts").c_str(), O_RDONLY | O_CLOEXEC));
  UniqueFd owner(uts ? ::ioctl(uts.get(), NS_GET_USERNS) : -1);
  if (!owner) {
    return {"namespace.user", false,
            StrCat("cannot find the owner of the zone's namespaces: ", std::strerror(errno))};
  }
  std::string zone_user = NsInode(StrCat("/proc/self/fd/", owner.get()));
  if (userns_first == 0) {
    return {"namespace.user", zone_user == host_user,
            StrCat(expected, "; the zone's namespaces belong to ", zone_user,
                   zone_user == host_user ? ", the host's" : ", not the host's")};
  }
  if (zone_user == host_user) {
    return {"namespace.user", false,
            StrCat("the zone's namespaces belong to the host's user namespace ", host_user)};
  }
  auto map = ReadUidMapOf(owner.get());
  if (!map.ok()) return {"namespace.user", false, ToStd(map.status().message())};
  std::istringstream in(*map);
  uint64_t inside = 1, outside = 0, count = 0;
  in >> inside >> outside >> count;
  bool passed = inside == 0 && outside == userns_first && count == kZoneIdCount;
  std::string line = map->substr(0, map->find('\n'));
  line.erase(0, line.find_first_not_of(' '));
  return {"namespace.user", passed, StrCat(zone_user, " (uid_map \"", line, "\"): ", expected)};
}

// rx/tx bytes of every interface but lo in the shim's network namespace.
void ReadNetDev(pid_t pid, uint64_t* rx, uint64_t* tx) {
  std::istringstream in(ReadFileOrEmpty(StrCat("/proc/", pid, "/net/dev")));
  std::string line;
  *rx = *tx = 0;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    if (name == "lo") continue;
    std::istringstream fields(line.substr(colon + 1));
    uint64_t v[9] = {};
    for (auto& x : v) fields >> x;
    *rx += v[0];
    *tx += v[8];
  }
}

}  // namespace

bool ProcessCmdlineContains(pid_t pid, const std::string& needle) {
  if (pid <= 0) return false;
  std::string cmdline = ReadFileOrEmpty(StrCat("/proc/", pid, "/cmdline"));
  return cmdline.find(needle) != std::string::npos;
}

// The kernel's Landlock ABI version, or 0 with the probe's errno (the shim probes the same).
std::vector<std::string> UnavailableControls(const policy::Policy& p,
                                             const std::vector<cgroup::LimitReport>& limits) {
  std::vector<std::string> out;
  for (const auto& l : limits) {
    if (!l.applied) out.push_back(StrCat("resources.", l.control, ": ", l.detail));
  }
  if (!p.filesystem.root.empty()) {
    out.push_back("filesystem.root: tasks without an image run on the host's read-only view");
  }
  return out;
}

std::string UsernsGap(const policy::Policy& p, policy::ZoneType type, uint32_t userns_first,
                      const HostLayers& host) {
  if (type == policy::ZoneType::kPrivileged || !p.zone.userns || userns_first != 0) return "";
  return StrCat(
      "zone.userns: the zone runs with the host's ids (its root is the host's root "
      "with fewer capabilities): ",
      host.userns ? "it was created before user namespaces were available" : host.userns_detail);
}

ZoneManager::ZoneManager(DaemonConfig config, store::Store* store, cgroup::Manager* cgroups,
                         EventBus* events, net::ZoneNetwork* network, EnforcementHub* hub,
                         UsernsRanges* userns)
    : config_(std::move(config)),
      store_(store),
      cgroups_(cgroups),
      events_(events),
      network_(network),
      hub_(hub),
      userns_(userns),
      watcher_(std::make_unique<ShimWatcher>(
          [this](const std::string& zone_id, pid_t pid) { OnShimExit(zone_id, pid); })) {}

ZoneManager::~ZoneManager() { watcher_->Stop(); }

void ZoneManager::WatchShim(const std::string& zone_id, int64_t shim_pid) {
  auto st = watcher_->Watch(zone_id, static_cast<pid_t>(shim_pid));
  if (st.ok()) return;
  std::fprintf(stderr, "rauhad: zone %s: %s\n", zone_id.c_str(), ToStd(st.message()).c_str());
  if (absl::IsNotFound(st)) OnShimExit(zone_id, static_cast<pid_t>(shim_pid));
}

void ZoneManager::OnShimExit(const std::string& zone_id, pid_t pid) {
  std::string name;
  {
    std::lock_guard lock(mu_);
    for (const auto& [n, z] : zones_) {
      if (z->record.id == zone_id && z->record.shim_pid == pid) name = n;
    }
  }
  if (name.empty()) return;
  std::fprintf(stderr, "rauhad: zone %s: its shim (pid %d) exited\n", name.c_str(), pid);
  MarkShimLost(zone_id, StrCat("its shim (pid ", pid, ") died; processes and cgroups removed"));
}

HostLayers ZoneManager::host_layers() const {
  HostLayers h = hub_ ? hub_->host() : HostLayers{};
  if (!hub_) h.landlock_abi = LandlockAbi();
  h.nftables = network_ != nullptr;
  if (!userns_) {
    h.userns = false;
    h.userns_detail = "no user namespace ranges configured";
  }
  return h;
}

bool ZoneManager::WantsUserns(const Zone& z) const {
  return userns_ && host_layers().userns && z.policy.zone.userns &&
         z.record.zone_type != policy::ToString(policy::ZoneType::kPrivileged);
}

absl::Status ZoneManager::CheckAdmission(const policy::Policy& pol, const std::string& what) const {
  if (pol.admission.mode == policy::AdmissionMode::kAudit) return absl::OkStatus();
  auto gaps = EnforcementGaps(pol, host_layers());
  if (gaps.empty()) return absl::OkStatus();
  std::string list;
  for (const auto& g : gaps) list += StrCat(list.empty() ? "" : "; ", g);
  absl::Status refused = absl::FailedPreconditionError(
      StrCat(what, " states controls nothing on this host can enforce: ", list,
             ". Drop them from the policy, or set [admission] mode = \"audit\" to create the "
             "zone anyway with the gap reported"));
  if (recorder_) recorder_->ZoneRefused(what, ToStd(refused.message()));
  return refused;
}

absl::StatusOr<policy::Policy> ZoneManager::ResolvePolicy(const std::string& policy_toml,
                                                          std::vector<std::string>* warnings,
                                                          policy::NetworkPlacement placement) {
  if (!policy_toml.empty()) {
    return policy::ParsePolicy(policy_toml, "<policy_toml>", warnings, placement);
  }
  if (!config_.default_policy_file.empty())
    return policy::LoadPolicyFile(config_.default_policy_file, warnings, placement);
  return policy::DefaultPolicy();
}

ZoneManager::Zone* ZoneManager::FindLocked(const std::string& name, bool include_pooled) {
  auto it = zones_.find(name);
  if (it == zones_.end()) return nullptr;
  if (!include_pooled && (it->second->pooled || it->second->retiring)) return nullptr;
  return it->second.get();
}

absl::Status ZoneManager::CommitState(Zone& zone, ZoneState state, std::string reason) {
  store::ZoneRecord next = zone.record;
  next.state = std::string(ToString(state));
  next.state_reason = reason;
  if (auto st = store_->PutZone(next); !st.ok()) {
    return Annotate(st, StrCat("zone \"", zone.record.name, "\" stays ", ToString(zone.state),
                               " (recording ", ToString(state), ")"));
  }
  MarkState(zone, state, std::move(reason));  // recorded just now: not written again
  return absl::OkStatus();
}

void ZoneManager::SetState(Zone& zone, ZoneState state, std::string reason) {
  if (zone.state == state && zone.record.state_reason == reason) return;
  store::ZoneRecord next = zone.record;
  next.state = std::string(ToString(state));
  next.state_reason = reason;
  auto st = store_->PutZone(next);
  if (!st.ok())
    std::fprintf(stderr, "rauhad: saving zone %s: %s\n", zone.record.name.c_str(),
                 ToStd(st.message()).c_str());
  MarkState(zone, state, std::move(reason));
}

void ZoneManager::MarkState(Zone& zone, ZoneState state, std::string reason) {
  if (zone.state == state && zone.record.state_reason == reason) return;
  zone.state = state;
  zone.record.state = std::string(ToString(state));
  zone.record.state_reason = std::move(reason);
  if (recorder_) {
    recorder_->ZoneTransition(zone.record.id, zone.record.name, zone.record.state,
                              zone.record.state_reason);
  }
  if (zone.pooled) return;  // nobody asked for it yet: audited, not published
  events_->Publish(zone.record.name, "zone.state",
                   zone.record.state_reason.empty()
                       ? zone.record.state
                       : StrCat(zone.record.state, ": ", zone.record.state_reason));
}

ZoneView ZoneManager::ViewOf(const Zone& z) const {
  ZoneView v;
  v.id = z.record.id;
  v.name = z.record.name;
  v.zone_type = z.record.zone_type == "privileged" ? policy::ZoneType::kPrivileged
                                                   : policy::ZoneType::kNonGlobal;
  v.state = z.state;
  v.state_reason = z.record.state_reason;
  v.created_at = z.record.created_at;
  v.shim_pid = z.record.shim_pid;
  v.running_tasks = z.running_tasks;
  v.temporary = z.record.temporary;
  v.policy = z.policy;
  v.cgroup = z.cgroup;
  v.limits = z.limits;
  v.unavailable = UnavailableControls(z.policy, z.limits);
  const HostLayers host = host_layers();
  v.userns_first = z.userns_first;
  v.netns_path = z.netns_path;
  v.hostname = z.record.hostname.empty() ? ZoneHostname(z.record.name) : z.record.hostname;
  if (std::string gap = UsernsGap(z.policy, v.zone_type, z.userns_first, host); !gap.empty()) {
    v.unavailable.push_back(std::move(gap));
  }
  for (auto& gap : EnforcementGaps(z.policy, host)) v.unavailable.push_back(std::move(gap));
  v.controls = MapControls(z.policy, host);
  if (hub_) {
    v.counters = hub_->Counters(z.record.id);
    v.events_lost = hub_->Lost(z.record.id);
  }
  v.shim_socket = config_.ShimSocket(z.record.id);
  bool live = z.state != ZoneState::kStopped && z.state != ZoneState::kDestroying;
  bool host_net = z.policy.network.mode == policy::NetworkMode::kHost;
  v.layers.push_back(
      {"namespace", live,
       host_net ? "ipc, uts shared by the zone; mount, pid per task; host network"
       : !z.netns_path.empty()
           ? StrCat("net (joined ", z.netns_path,
                    "), ipc, uts shared by the zone; mount, pid per task")
           : "net (loopback only), ipc, uts shared by the zone; mount, pid per task"});
  if (z.userns_first != 0) {
    v.userns = StrCat("own user namespace: ", DescribeZoneMapping(z.userns_first));
  } else if (v.zone_type == policy::ZoneType::kPrivileged) {
    v.userns = "host ids (privileged zone)";
  } else if (!z.policy.zone.userns) {
    v.userns = "host ids ([zone] userns = false)";
  } else {
    v.userns = StrCat("host ids: ", host.userns_detail);
  }
  v.layers.push_back({"userns", live && z.userns_first != 0, v.userns});
  std::string applied;
  for (const auto& l : z.limits) {
    if (l.applied) applied += StrCat(applied.empty() ? "" : ", ", l.control);
  }
  v.layers.push_back(
      {"cgroup", live && z.cgroup.id != 0,
       StrCat("cgroup id ", z.cgroup.id, "; limits: ", applied.empty() ? "none" : applied)});
  v.layers.push_back(
      {"capabilities", live,
       StrCat(z.policy.capabilities.allowed.size(), " kept, all others dropped; no_new_privs")});
  v.layers.push_back(
      {"rootfs", live, "read-only host system view, pivot_root, fresh /proc and /dev"});
  v.layers.push_back(
      {"seccomp", live,
       StrCat("per task, before exec: the shim's default deny list (mount, namespaces, bpf, "
              "kexec, modules, keyrings, io_uring, ...)",
              z.policy.syscalls.deny.empty()
                  ? ""
                  : StrCat(" + ", z.policy.syscalls.deny.size(), " from [syscalls].deny"),
              "; ABIs x86_64, x86, x32")});
  int landlock_error = 0;
  int landlock_abi = LandlockAbi(&landlock_error);
  v.layers.push_back(
      {"landlock", live && landlock_abi > 0,
       landlock_abi > 0
           ? StrCat(
                 "per task, before exec: ABI ", landlock_abi,
                 "; writes only beneath writable paths",
                 landlock_abi >= 6 ? "; no signals or abstract unix sockets out of the task" : "")
           : StrCat("unavailable on this kernel: ", strerror(landlock_error))});
  v.layers.push_back({"nftables", false,
                      host_net                ? "host network: no zone rules"
                      : !z.netns_path.empty() ? "joined network namespace: no zone rules"
                                              : "isolated: no interface but lo"});
  bool bpf_attached = hub_ && hub_->attached(z.record.id);
  v.layers.push_back({"cgroup-bpf", live && bpf_attached,
                      bpf_attached ? "connect4/6, sendmsg4/6, bind4/6, sock_create, dev, sysctl on "
                                     "the zone's cgroup v2 directory"
                                   : "not attached: BPF programs did not load on this host"});
  v.layers.push_back({"lsm", live && host.lsm && bpf_attached,
                      host.lsm
                          ? "eBPF LSM programs loaded; the zone's rules in their maps"
                          : StrCat("not loaded: ", host.lsm_detail.empty() ? "no BPF on this host"
                                                                           : host.lsm_detail)});
  return v;
}

ZoneView ZoneManager::ViewWithNetwork(const Zone& z) const {
  ZoneView v = ViewOf(z);
  if (!z.netns_path.empty() && network_) {
    v.network_rules = network_->RulesOf(z.record.id);
    bool live = z.state != ZoneState::kStopped && z.state != ZoneState::kDestroying;
    for (auto& l : v.layers) {
      if (l.name != "nftables") continue;
      l.active = live && !v.network_rules.empty();
      l.detail = StrCat("table inet ", net::PodTableName(network_->config().nft_table, z.record.id),
                        " in the joined network namespace: allowed_zones and allowed_ingress; "
                        "default deny (egress: cgroup-bpf)");
    }
    return v;
  }
  if (z.policy.network.mode != policy::NetworkMode::kBridged) return v;
  v.address = z.address;
  v.network_rules = network_ ? network_->RulesOf(z.record.id) : "";
  bool live = z.state != ZoneState::kStopped && z.state != ZoneState::kDestroying;
  for (auto& l : v.layers) {
    if (l.name == "namespace") {
      l.detail = StrCat("net (bridged: eth0 ", z.address.empty() ? "without address" : z.address,
                        "), ipc, uts shared by the zone; mount, pid per task");
    } else if (l.name == "nftables") {
      l.active = live && !v.network_rules.empty();
      l.detail = network_ ? StrCat("table inet ", network_->config().nft_table, ", chains zo_",
                                   net::ShortId(z.record.id), " and zi_", net::ShortId(z.record.id),
                                   "; default deny")
                          : "no network configured";
    }
  }
  return v;
}

absl::Status ZoneManager::Bringup(Zone& z) {
  // Runs without mu_: `z` is a private copy whose result the caller publishes.
  RAUHA_ASSIGN_OR_RETURN(z.cgroup, cgroups_->CreateZone(z.record.id));
  SpanTrace::MarkCurrent("cgroups");
  auto limits = cgroup::ApplyLimits(z.cgroup, LimitsOf(z.policy));
  if (!limits.ok()) {
    (void)cgroup::Remove(z.cgroup);
    return limits.status();
  }
  z.limits = *std::move(limits);
  SpanTrace::MarkCurrent("limits");
  // Before the shim exists, so no task of the zone ever runs without its programs.
  if (hub_) {
    if (auto st = hub_->AttachZone(z.record.id, z.record.name, z.cgroup, z.policy,
                                   network_ ? network_->config().subnet : "");
        !st.ok()) {
      (void)cgroup::Remove(z.cgroup);
      return st;
    }
  }

  SpanTrace::MarkCurrent("bpf_attach");
  std::string run_dir = config_.ZoneRunDir(z.record.id);
  std::error_code ec;
  // One mkdir: the zones' dir exists but for the first zone (create_directories stats every
  // component of the path first, each a path walk, on every zone). The umask only takes bits
  // away, so a dir mkdir made is 0700 or tighter; one made otherwise, or found, is set so.
  bool made = ::mkdir(run_dir.c_str(), 0700) == 0;
  if (!made && errno == ENOENT) std::filesystem::create_directories(run_dir, ec);
  if (ec || (!made && ::chmod(run_dir.c_str(), 0700) != 0)) {
    if (hub_) hub_->DetachZone(z.record.id);
    (void)cgroup::Remove(z.cgroup);
    return absl::InternalError(
        StrCat("creating ", run_dir, ": ", ec ? ec.message() : "chmod failed"));
  }
  ShimLaunch launch;
  launch.shim_path = config_.shim_path;
  launch.zone_id = z.record.id;
  launch.zone_name = z.record.name;
  launch.socket_path = config_.ShimSocket(z.record.id);
  launch.state_dir = run_dir;
  launch.network = ShimNetwork(z.policy);
  launch.netns_path = z.netns_path;
  launch.hostname = z.record.hostname;
  launch.log_path = run_dir + "/shim.log";
  launch.timeout_ms = static_cast<int>(config_.shim_start_timeout_ms);
  if (WantsUserns(z)) {
    // Held from here until the zone is deleted (a restart keeps it: Allocate returns it).
    auto first = userns_->Allocate(z.record.id);
    if (!first.ok()) {
      if (hub_) hub_->DetachZone(z.record.id);
      (void)cgroup::Remove(z.cgroup);
      std::filesystem::remove_all(run_dir, ec);
      return Annotate(first.status(), "allocating the zone's user namespace ids");
    }
    z.userns_first = *first;
    launch.userns_first = *first;
  }
  SpanTrace::MarkCurrent("run_dir_userns");
  absl::StatusOr<pid_t> pid = absl::UnknownError("not spawned");
  {
    NormalPriorityForSpawn normal;
    pid = SpawnShim(launch);
  }
  if (!pid.ok()) {
    if (hub_) hub_->DetachZone(z.record.id);
    (void)cgroup::Remove(z.cgroup);
    std::filesystem::remove_all(run_dir, ec);
    return pid.status();
  }
  z.record.shim_pid = *pid;
  SpanTrace::MarkCurrent("shim_spawn");
  if (z.policy.network.mode == policy::NetworkMode::kBridged) {
    // The shim made the zone's network namespace (it runs with --network isolated); it is
    // configured from outside, through /proc/<shim>/ns/net.
    auto address = network_->Attach(z.record.id, z.record.name, *pid, z.policy);
    if (!address.ok()) {
      Teardown(z.record, z.cgroup);
      return Annotate(address.status(), "setting up the zone's bridged network");
    }
    z.address = *address;
    if (hub_) {
      if (auto st = hub_->SetZoneAddress(z.record.id, z.address); !st.ok()) {
        Teardown(z.record, z.cgroup);
        return st;
      }
    }
  }
  if (!z.netns_path.empty() && network_) {
    // A pod's namespace (CNI's): the zone's ingress rules go inside it, through the shim that
    // joined it.
    if (auto st = network_->AttachJoined(z.record.id, z.record.name, *pid, z.policy); !st.ok()) {
      Teardown(z.record, z.cgroup);
      return Annotate(st, "installing the zone's rules in the network namespace it joined");
    }
  }
  if (auto st = AttachProxy(z.record, z.policy); !st.ok()) {
    Teardown(z.record, z.cgroup);
    return st;
  }
  SpanTrace::MarkCurrent("network_proxy");
  if (z.pooled) {
    // Its task's process is made now, in the zone's cgroups, so the call that claims the zone
    // does not wait for the v1 cgroup joins, nor for its seccomp filter's compilation, nor for
    // the building of its root but the request's mounts (the deny list and the root's fields
    // are the ones its TaskSpec will have: TaskRunner's SpecFor). Without it the task starts
    // the ordinary way.
    const ShimClient::PreparedRoot root{z.policy.filesystem.writable_paths,
                                        z.policy.devices.allowed, z.address};
    auto prepared =
        ShimClient(launch.socket_path)
            .Prepare(z.cgroup.v2_path, z.cgroup.v1_paths, z.policy.syscalls.deny, &root);
    if (!prepared.ok()) {
      std::fprintf(stderr, "rauhad: warm pool: zone %s: no prepared task: %s\n",
                   z.record.name.c_str(), ToStd(prepared.status().message()).c_str());
    }
  }
  return absl::OkStatus();
}

absl::Status ZoneManager::AttachProxy(const store::ZoneRecord& record, const policy::Policy& pol) {
  // A host-network zone would share the host's 127.0.0.1:3128; it reaches the host anyway.
  if (!proxy_ || pol.network.mode == policy::NetworkMode::kHost) return absl::OkStatus();
  auto st = proxy_->SetZone(record.id, record.name, static_cast<pid_t>(record.shim_pid),
                            pol.network.allowed_hosts, pol.secrets);
  if (!st.ok()) return Annotate(st, "giving the zone its egress proxy listener");
  proxy_->SetByteBudget(record.id, pol.network.egress_bytes_max);
  return absl::OkStatus();
}

void ZoneManager::Teardown(const store::ZoneRecord& record, const cgroup::ZoneCgroup& cg) {
  // The link first: deleting it while the namespace lives is synchronous, while a namespace
  // dying with its shim releases its links only later, from a kernel work queue.
  if (network_) network_->Detach(record.id, record.netns_path);
  if (proxy_) proxy_->RemoveZone(record.id);
  watcher_->Unwatch(record.id);
  SpanTrace::MarkCurrent("network_proxy");
  // A pidfd taken while the pid is verifiably still this zone's shim lets us wait for exactly
  // that process, with no polling and no pid-reuse race.
  auto shim_pid = static_cast<pid_t>(record.shim_pid);
  UniqueFd pidfd;
  if (ProcessCmdlineContains(shim_pid, record.id)) {
    pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, shim_pid, 0)));
  }
  ShimClient shim(config_.ShimSocket(record.id));
  // A live shim answers hello at once; one that does not (stopped, deadlocked) would hold the
  // delete for the whole shutdown bound, so it is killed instead. Its tasks die with the
  // zone's cgroups below.
  bool answers = shim.Hello(kHungShimMs).ok();
  if ((!answers || !shim.Shutdown(kShimShutdownMs).ok()) && pidfd) {
    ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
  }
  SpanTrace::MarkCurrent("shim_shutdown");
  if (pidfd) {
    // The shim exits right after answering; wait (bounded) so no process of ours outlives it.
    pollfd pfd{pidfd.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 5000) == 0) {
      ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
      ::poll(&pfd, 1, 2000);
    }
  }
  SpanTrace::MarkCurrent("shim_exit");
  if (hub_) hub_->DetachZone(record.id);
  SpanTrace::MarkCurrent("bpf_detach");
  auto st = cgroup::Remove(cg);
  SpanTrace::MarkCurrent("cgroups_remove");
  if (!st.ok()) {
    std::fprintf(stderr, "rauhad: removing cgroups of zone %s: %s\n", record.name.c_str(),
                 ToStd(st.message()).c_str());
  }
  std::error_code ec;
  std::filesystem::remove_all(config_.ZoneRunDir(record.id), ec);
  SpanTrace::MarkCurrent("run_dir_remove");
}

absl::StatusOr<ZoneView> ZoneManager::Create(const std::string& name, const std::string& zone_type,
                                             const std::string& policy_toml, bool temporary,
                                             std::vector<std::string>* warnings,
                                             const std::string& netns_path,
                                             const std::string& hostname) {
  return CreateZone(name, zone_type, policy_toml, temporary, warnings, /*pooled=*/false, netns_path,
                    hostname);
}

absl::StatusOr<std::string> ZoneManager::PoolKey(const std::string& policy_toml) {
  // The digest is a function of the text, but for "" naming a file that may change.
  const bool keep = !policy_toml.empty() || config_.default_policy_file.empty();
  if (keep) {
    std::lock_guard lock(pool_keys_mu_);
    if (auto it = pool_keys_.find(policy_toml); it != pool_keys_.end()) return it->second;
  }
  RAUHA_ASSIGN_OR_RETURN(policy::Policy pol, ResolvePolicy(policy_toml, nullptr));
  std::string key = audit::PolicyDigest(pol);
  if (keep) {
    std::lock_guard lock(pool_keys_mu_);
    if (pool_keys_.size() >= kMaxPoolKeys) pool_keys_.clear();
    pool_keys_.emplace(policy_toml, key);
  }
  return key;
}

absl::StatusOr<std::pair<std::string, std::string>> ZoneManager::CreatePooled(
    const std::string& policy_toml) {
  // The name a sandbox call would give it ("task-" and 8 hex digits), random rather than
  // taken from a task id: the task is not known yet.
  std::string name = StrCat("task-", NewUuid().substr(0, 8));
  // One fsync for the zone's records (creation and transitions), not one each.
  audit::Recorder::Batch audit_batch(recorder_);
  RAUHA_ASSIGN_OR_RETURN(ZoneView view, CreateZone(name, "", policy_toml, /*temporary=*/true,
                                                   nullptr, /*pooled=*/true));
  return std::make_pair(view.name, audit::PolicyDigest(view.policy));
}

bool ZoneManager::ClaimPooled(const std::string& name, bool keep) {
  {
    std::lock_guard lock(mu_);
    Zone* z = FindLocked(name, /*include_pooled=*/true);
    if (!z || !z->pooled || z->state != ZoneState::kReady) return false;
    if (keep) {
      store::ZoneRecord next = z->record;
      next.temporary = false;
      if (auto st = store_->PutZone(next); !st.ok()) {
        std::fprintf(stderr, "rauhad: warm pool: keeping zone %s: %s\n", name.c_str(),
                     ToStd(st.message()).c_str());
        return false;
      }
      z->record.temporary = false;
    }
    z->pooled = false;
  }
  // What a watcher of a freshly created zone would have seen, now that it is someone's.
  events_->Publish(name, "zone.created", "ready (from the warm pool)");
  return true;
}

void ZoneManager::MarkRetiring(const std::string& name) {
  std::lock_guard lock(mu_);
  if (Zone* z = FindLocked(name, /*include_pooled=*/true)) z->retiring = true;
}

absl::Status ZoneManager::DeleteInternal(const std::string& name, bool force) {
  audit::Recorder::Batch audit_batch(recorder_);
  return DeleteZone(name, force, /*include_pooled=*/true);
}

absl::StatusOr<ZoneView> ZoneManager::CreateZone(const std::string& name,
                                                 const std::string& zone_type,
                                                 const std::string& policy_toml, bool temporary,
                                                 std::vector<std::string>* warnings, bool pooled,
                                                 const std::string& netns_path,
                                                 const std::string& hostname) {
  RAUHA_RETURN_IF_ERROR(ValidateZoneName(name));
  RAUHA_RETURN_IF_ERROR(CheckNetworkNamespace(netns_path));
  if (!hostname.empty() && !IsHostname(hostname)) {
    return absl::InvalidArgumentError(
        StrCat("hostname \"", hostname,
               "\" is not a hostname: labels of 1-63 [A-Za-z0-9-] (not starting or ending with "
               "'-') joined by '.', 64 bytes at most"));
  }
  // Warnings true of this zone: rules that act in a joined (pod's) namespace are not "without
  // effect" there.
  std::vector<std::string> policy_warnings;
  RAUHA_ASSIGN_OR_RETURN(policy::Policy pol,
                         ResolvePolicy(policy_toml, &policy_warnings, PlacementOf(netns_path)));
  policy::ZoneType type = pol.zone.type;
  if (zone_type == "non-global") {
    type = policy::ZoneType::kNonGlobal;
  } else if (zone_type == "privileged") {
    type = policy::ZoneType::kPrivileged;
  } else if (!zone_type.empty()) {
    return absl::InvalidArgumentError(
        StrCat("zone_type \"", zone_type, "\" is unknown; use \"non-global\" or \"privileged\""));
  }
  RAUHA_RETURN_IF_ERROR(CheckPolicySupported(pol, type, network_ != nullptr));
  RAUHA_RETURN_IF_ERROR(CheckAdmission(pol, StrCat("zone \"", name, "\"")));
  if (!netns_path.empty() && pol.network.mode != policy::NetworkMode::kIsolated) {
    return absl::InvalidArgumentError(
        StrCat("network_namespace ", netns_path, " needs network.mode = \"isolated\" (the policy ",
               "says \"", policy::ToString(pol.network.mode), "\"): the given namespace replaces ",
               "the zone's own, so no bridged or host network can be set up"));
  }

  auto zone = std::make_unique<Zone>();
  zone->record.id = NewUuid();
  zone->record.name = name;
  zone->record.zone_type = std::string(policy::ToString(type));
  zone->record.state = std::string(ToString(ZoneState::kCreating));
  zone->record.policy_toml = policy::ToCanonicalToml(pol);
  zone->record.created_at = NowRfc3339();
  zone->record.temporary = temporary;
  zone->policy = pol;
  zone->pooled = pooled;
  zone->netns_path = netns_path;
  zone->record.netns_path = netns_path;
  zone->record.hostname = hostname;
  Zone work = *zone;
  {
    std::lock_guard lock(mu_);
    if (zones_.count(name)) {
      return absl::AlreadyExistsError(
          StrCat("zone \"", name, "\" already exists; pick another name or delete it first"));
    }
    RAUHA_RETURN_IF_ERROR(store_->PutZone(zone->record));
    zones_[name] = std::move(zone);
  }
  if (!pooled) events_->Publish(name, "zone.state", "Creating");

  absl::Status up = Bringup(work);
  std::unique_lock lock(mu_);
  Zone* z = FindLocked(name, /*include_pooled=*/true);
  if (!up.ok()) {
    if (network_) network_->Release(work.record.id);
    if (proxy_) proxy_->ForgetZone(work.record.id);
    if (userns_) store::LogRefused(userns_->Release(work.record.id), "releasing user ids");
    store::LogRefused(store_->DeleteZone(work.record.id), StrCat("forgetting zone ", name));
    zones_.erase(name);
    if (!pooled) events_->Publish(name, "zone.deleted", StrCat("creation failed: ", up.message()));
    return Annotate(up, StrCat("creating zone \"", name, "\""));
  }
  z->record.shim_pid = work.record.shim_pid;
  z->cgroup = work.cgroup;
  z->limits = work.limits;
  z->address = work.address;
  z->userns_first = work.userns_first;
  if (auto st = CommitState(*z, ZoneState::kReady); !st.ok()) {
    // The record says Creating, which the next start removes; so does this call, now.
    zones_.erase(name);
    lock.unlock();
    Teardown(work.record, work.cgroup);
    if (network_) network_->Release(work.record.id);
    if (proxy_) proxy_->ForgetZone(work.record.id);
    if (userns_) store::LogRefused(userns_->Release(work.record.id), "releasing user ids");
    store::LogRefused(store_->DeleteZone(work.record.id), StrCat("forgetting zone ", name));
    if (!pooled) events_->Publish(name, "zone.deleted", StrCat("creation failed: ", st.message()));
    return Annotate(st, StrCat("creating zone \"", name, "\""));
  }
  if (!pooled) events_->Publish(name, "zone.created", StrCat("zone ", z->record.id, " ready"));
  if (recorder_) {
    recorder_->ZoneCreated(z->record.id, name, z->record.zone_type, z->policy, temporary);
  }
  if (!pooled) {
    for (const auto& w : policy_warnings) events_->Publish(name, "policy.warning", w);
  }
  if (warnings) *warnings = std::move(policy_warnings);
  ZoneView view = ViewWithNetwork(*z);
  lock.unlock();
  WatchShim(view.id, view.shim_pid);
  return view;
}

absl::StatusOr<policy::ZoneType> ZoneManager::TypeForTask(const std::string& name,
                                                          const std::string& policy_toml) {
  if (!name.empty()) {
    std::lock_guard lock(mu_);
    if (Zone* z = FindLocked(name)) {
      return z->record.zone_type == policy::ToString(policy::ZoneType::kPrivileged)
                 ? policy::ZoneType::kPrivileged
                 : policy::ZoneType::kNonGlobal;
    }
  }
  RAUHA_ASSIGN_OR_RETURN(policy::Policy pol, ResolvePolicy(policy_toml, nullptr));
  return pol.zone.type;
}

absl::Status ZoneManager::Delete(const std::string& name, bool force) {
  return DeleteZone(name, force, /*include_pooled=*/false);
}

absl::Status ZoneManager::DeleteZone(const std::string& name, bool force, bool include_pooled) {
  store::ZoneRecord record;
  cgroup::ZoneCgroup cg;
  bool was_paused = false;
  bool pooled = false;
  {
    std::lock_guard lock(mu_);
    Zone* z = FindLocked(name, include_pooled);
    if (!z) return absl::NotFoundError(StrCat("zone \"", name, "\" does not exist"));
    if (z->state == ZoneState::kCreating || z->state == ZoneState::kStopping ||
        z->state == ZoneState::kDestroying) {
      return absl::FailedPreconditionError(
          StrCat("zone \"", name, "\" is ", ToString(z->state), "; try again when it is done"));
    }
    if (z->running_tasks > 0 && !force) {
      return absl::FailedPreconditionError(
          StrCat("zone \"", name, "\" has ", z->running_tasks,
                 " running task(s); wait for them or delete with force"));
    }
    was_paused = z->state == ZoneState::kPaused;
    // Recorded before anything is torn down: a store that refuses leaves the zone as it was,
    // and a crash from here on finishes the removal at the next start.
    if (z->state != ZoneState::kStopped)
      RAUHA_RETURN_IF_ERROR(CommitState(*z, ZoneState::kStopping));
    NoteTaskKillLocked(
        *z, StrCat("its zone \"", name, "\" was deleted (zone delete --force) while it ran"));
    record = z->record;
    cg = z->cgroup;
    pooled = z->pooled;
  }
  // A frozen process cannot act on SIGKILL until thawed.
  if (was_paused) (void)cgroup::SetFrozen(cg, false);
  Teardown(record, cg);
  std::lock_guard lock(mu_);
  Zone* z = FindLocked(name, include_pooled);
  if (z) {
    if (auto st = store_->DeleteZone(z->record.id); !st.ok()) {
      // Nothing of it is left in the kernel; its record (Stopping, or Stopped) is removed by
      // the next start, or by deleting it again once the store takes writes.
      SetState(*z, ZoneState::kStopped,
               StrCat("its processes and cgroups were removed, but the database refused to "
                      "forget it: ",
                      st.message()));
      return Annotate(st, StrCat("deleting zone \"", name,
                                 "\": it is stopped and removed from the kernel; delete it "
                                 "again when the database takes writes"));
    }
    MarkState(*z, ZoneState::kDestroying);  // a write here would bring its record back
    zones_.erase(name);
  }
  if (network_) network_->Release(record.id);
  if (proxy_) proxy_->ForgetZone(record.id);
  if (userns_) {
    store::LogRefused(userns_->Release(record.id), StrCat("releasing the user ids of ", name));
  }
  if (!pooled) events_->Publish(name, "zone.deleted", StrCat("zone ", record.id, " removed"));
  if (recorder_) recorder_->ZoneDeleted(record.id, name, force);
  return absl::OkStatus();
}

absl::StatusOr<ZoneView> ZoneManager::Get(const std::string& name) {
  std::lock_guard lock(mu_);
  Zone* z = FindLocked(name);
  if (!z) return absl::NotFoundError(StrCat("zone \"", name, "\" does not exist"));
  return ViewWithNetwork(*z);
}

std::vector<ZoneView> ZoneManager::List() {
  std::lock_guard lock(mu_);
  std::vector<ZoneView> out;
  for (const auto& [name, z] : zones_) {
    if (!z->pooled && !z->retiring) out.push_back(ViewWithNetwork(*z));
  }
  return out;
}

std::optional<ZoneView> ZoneManager::FindById(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  for (const auto& [name, z] : zones_) {
    if (z->record.id == zone_id) return ViewWithNetwork(*z);
  }
  return std::nullopt;
}

absl::Status ZoneManager::ApplyPolicy(const std::string& name, const std::string& policy_toml,
                                      std::vector<std::string>* warnings) {
  if (policy_toml.empty()) {
    return absl::InvalidArgumentError("policy_toml is empty; give the policy's TOML text");
  }
  // Parsed for this zone, so its warnings are true of it (a zone in a pod's namespace enforces
  // its rules there); a bad policy is still refused before a missing zone. Parsed without mu_
  // (every zone call waits on it): only the zone's namespace is read under it, and checked
  // again below in case the zone was replaced meanwhile.
  std::string netns_path;
  {
    std::lock_guard lock(mu_);
    if (Zone* z = FindLocked(name)) netns_path = z->netns_path;
  }
  std::vector<std::string> policy_warnings;
  RAUHA_ASSIGN_OR_RETURN(
      policy::Policy pol,
      policy::ParsePolicy(policy_toml, "<policy_toml>", &policy_warnings, PlacementOf(netns_path)));
  std::lock_guard lock(mu_);
  Zone* z = FindLocked(name);
  if (!z) return absl::NotFoundError(StrCat("zone \"", name, "\" does not exist"));
  if (z->netns_path != netns_path) {
    // Replaced by a zone in another namespace: parsed again for that one (rare; under mu_).
    policy_warnings.clear();
    RAUHA_ASSIGN_OR_RETURN(pol, policy::ParsePolicy(policy_toml, "<policy_toml>", &policy_warnings,
                                                    PlacementOf(z->netns_path)));
  }
  auto type = z->record.zone_type == "privileged" ? policy::ZoneType::kPrivileged
                                                  : policy::ZoneType::kNonGlobal;
  RAUHA_RETURN_IF_ERROR(CheckPolicySupported(pol, type, network_ != nullptr));
  RAUHA_RETURN_IF_ERROR(CheckAdmission(pol, StrCat("the policy for zone \"", name, "\"")));
  if (pol.zone.userns != z->policy.zone.userns) {
    return absl::FailedPreconditionError(
        StrCat("[zone] userns cannot change on an existing zone (it is ",
               z->policy.zone.userns ? "true" : "false", "); create a new zone instead"));
  }
  if (pol.network.mode != z->policy.network.mode) {
    return absl::FailedPreconditionError(
        StrCat("network.mode cannot change on an existing zone (it is \"",
               policy::ToString(z->policy.network.mode), "\"); create a new zone instead"));
  }
  if (z->state != ZoneState::kReady && z->state != ZoneState::kRunning &&
      z->state != ZoneState::kPaused) {
    return absl::FailedPreconditionError(
        StrCat("zone \"", name, "\" is ", ToString(z->state), "; a policy applies to live zones"));
  }
  auto limits = cgroup::ApplyLimits(z->cgroup, LimitsOf(pol, &z->policy));
  if (!limits.ok()) {
    // Put the previous limits back so a refused policy changes nothing.
    (void)cgroup::ApplyLimits(z->cgroup, LimitsOf(z->policy, &pol));
    return Annotate(limits.status(), "applying policy");
  }
  // Bridged zones' chains, or the table in the namespace a zone joined (a pod's).
  const bool has_rules =
      network_ && (pol.network.mode == policy::NetworkMode::kBridged || !z->netns_path.empty());
  if (has_rules) {
    // One nftables transaction: new connections see either the old rules or the new ones.
    if (auto st = network_->UpdatePolicy(z->record.id, pol); !st.ok()) {
      (void)cgroup::ApplyLimits(z->cgroup, LimitsOf(z->policy, &pol));
      return Annotate(st, "applying policy");
    }
  }
  if (hub_) {
    if (auto st = hub_->UpdateZone(z->record.id, pol); !st.ok()) {
      (void)cgroup::ApplyLimits(z->cgroup, LimitsOf(z->policy, &pol));
      if (has_rules) (void)network_->UpdatePolicy(z->record.id, z->policy);
      return Annotate(st, "applying policy");
    }
  }
  store::ZoneRecord next = z->record;
  next.policy_toml = policy::ToCanonicalToml(pol);
  if (auto st = store_->PutZone(next); !st.ok()) {
    // Not recorded, so not applied: the kernel goes back to the zone's recorded policy.
    (void)cgroup::ApplyLimits(z->cgroup, LimitsOf(z->policy, &pol));
    if (has_rules) (void)network_->UpdatePolicy(z->record.id, z->policy);
    if (hub_) (void)hub_->UpdateZone(z->record.id, z->policy);
    return Annotate(st, "applying policy (the zone keeps its previous policy)");
  }
  z->policy = pol;
  z->limits = *std::move(limits);
  z->record = std::move(next);
  if (auto st = AttachProxy(z->record, pol); !st.ok()) {
    events_->Publish(name, "zone.warning", ToStd(st.message()));
  }
  events_->Publish(name, "zone.policy", "policy applied");
  if (recorder_) recorder_->ZonePolicyApplied(z->record.id, pol);
  for (const auto& w : policy_warnings) events_->Publish(name, "policy.warning", w);
  if (warnings) *warnings = std::move(policy_warnings);
  return absl::OkStatus();
}

absl::StatusOr<std::string> ZoneManager::GetPolicy(const std::string& name) {
  std::lock_guard lock(mu_);
  Zone* z = FindLocked(name);
  if (!z) return absl::NotFoundError(StrCat("zone \"", name, "\" does not exist"));
  return policy::ToCanonicalToml(z->policy);
}

absl::StatusOr<ZoneStatsView> ZoneManager::Stats(const std::string& name) {
  cgroup::ZoneCgroup cg;
  ZoneStatsView out;
  pid_t shim_pid = 0;
  {
    std::lock_guard lock(mu_);
    Zone* z = FindLocked(name);
    if (!z) return absl::NotFoundError(StrCat("zone \"", name, "\" does not exist"));
    if (z->state == ZoneState::kStopped) {
      return absl::FailedPreconditionError(
          StrCat("zone \"", name, "\" is Stopped: ", z->record.state_reason));
    }
    cg = z->cgroup;
    out.zone_id = z->record.id;
    out.running_tasks = z->running_tasks;
    shim_pid = static_cast<pid_t>(z->record.shim_pid);
  }
  RAUHA_ASSIGN_OR_RETURN(out.cgroup, cgroup::ReadStats(cg));
  ReadNetDev(shim_pid, &out.network_rx_bytes, &out.network_tx_bytes);
  if (proxy_) out.proxy = proxy_->Stats(out.zone_id);
  if (network_) out.drops = network_->DropCountsOf(out.zone_id);
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  if (Zone* z = FindLocked(name)) {
    if (z->last_cpu_sample.time_since_epoch().count() != 0 &&
        out.cgroup.cpu_usage_ns >= z->last_cpu_ns) {
      double wall_ns = std::chrono::duration<double, std::nano>(now - z->last_cpu_sample).count();
      if (wall_ns > 0)
        out.cpu_usage_percent =
            100.0 * static_cast<double>(out.cgroup.cpu_usage_ns - z->last_cpu_ns) / wall_ns;
    }
    z->last_cpu_ns = out.cgroup.cpu_usage_ns;
    z->last_cpu_sample = now;
  }
  return out;
}

absl::StatusOr<std::vector<IsolationCheckView>> ZoneManager::Verify(const std::string& name) {
  RAUHA_ASSIGN_OR_RETURN(ZoneView v, Get(name));
  std::vector<IsolationCheckView> checks;
  auto shim_pid = static_cast<pid_t>(v.shim_pid);
  auto hello = ShimClient(v.shim_socket).Hello();
  checks.push_back({"shim", hello.ok() && hello->zone_id == v.id,
                    hello.ok() ? StrCat("rauha-shim pid ", hello->pid, " answers")
                               : StrCat("shim does not answer: ", hello.status().message())});
  for (const char* ns : {"net", "ipc", "uts"}) {
    std::string zone_ns = NsInode(StrCat("/proc/", shim_pid, "/ns/", ns));
    std::string host_ns = NsInode(StrCat("/proc/1/ns/", ns));
    bool separate = !zone_ns.empty() && zone_ns != host_ns;
    bool expected_shared =
        std::string_view(ns) == "net" && v.policy.network.mode == policy::NetworkMode::kHost;
    checks.push_back(
        {StrCat("namespace.", ns), separate || expected_shared,
         expected_shared
             ? StrCat("host network by policy (", zone_ns, ")")
             : StrCat(zone_ns.empty() ? "unknown" : zone_ns,
                      separate ? " differs from the host's " : " is the host's ", host_ns)});
  }
  checks.push_back(UsernsCheck(v.userns_first, v.userns, shim_pid));
  bool cg_ok = v.cgroup.id != 0;
  for (const auto& p : v.cgroup.AllPaths()) cg_ok = cg_ok && std::filesystem::exists(p);
  checks.push_back({"cgroup", cg_ok, StrCat("cgroup id ", v.cgroup.id)});
  auto stats = cgroup::ReadStats(v.cgroup);
  for (const auto& l : v.limits) {
    std::string detail = l.detail;
    bool passed = l.applied;
    if (passed && stats.ok()) {
      // ReadStats reads an unbounded limit ("max") as 0.
      if (l.control == "memory_limit") {
        passed = stats->memory_limit == v.policy.resources.memory_limit_bytes.value_or(0);
        detail = stats->memory_limit == 0
                     ? StrCat("kernel reports no limit (\"max\"); the host's memory bounds it: ",
                              stats->memory_limit_in_force, " bytes")
                     : StrCat("kernel reports limit ", stats->memory_limit);
      } else if (l.control == "pids_max") {
        passed = stats->pids_max == v.policy.resources.pids_max.value_or(0);
        detail = stats->pids_max == 0 ? std::string("kernel reports pids.max max")
                                      : StrCat("kernel reports pids.max ", stats->pids_max);
      }
    }
    checks.push_back({StrCat("limit.", l.control), passed, detail});
  }
  for (const auto& u : v.unavailable) {
    checks.push_back({StrCat("control.", u.substr(0, u.find(':'))), false, u});
  }
  return checks;
}

absl::Status ZoneManager::Pause(const std::string& name) {
  std::lock_guard lock(mu_);
  Zone* z = FindLocked(name);
  if (!z) return absl::NotFoundError(StrCat("zone \"", name, "\" does not exist"));
  if (z->state == ZoneState::kPaused) return absl::OkStatus();
  RAUHA_RETURN_IF_ERROR(CheckTransition(z->state, ZoneState::kPaused));
  RAUHA_RETURN_IF_ERROR(cgroup::SetFrozen(z->cgroup, true));
  if (auto st = CommitState(*z, ZoneState::kPaused); !st.ok()) {
    (void)cgroup::SetFrozen(z->cgroup, false);
    return st;
  }
  if (recorder_) recorder_->Flush();
  return absl::OkStatus();
}

absl::Status ZoneManager::Resume(const std::string& name) {
  std::lock_guard lock(mu_);
  Zone* z = FindLocked(name);
  if (!z) return absl::NotFoundError(StrCat("zone \"", name, "\" does not exist"));
  // Like Pause of a Paused zone: resuming a zone that is not frozen has nothing to do.
  if (z->state == ZoneState::kReady || z->state == ZoneState::kRunning) return absl::OkStatus();
  if (z->state != ZoneState::kPaused) {
    return absl::FailedPreconditionError(
        StrCat("zone \"", name, "\" is ", ToString(z->state), "; only a Paused zone resumes"));
  }
  RAUHA_RETURN_IF_ERROR(cgroup::SetFrozen(z->cgroup, false));
  if (auto st = CommitState(*z, z->running_tasks > 0 ? ZoneState::kRunning : ZoneState::kReady);
      !st.ok()) {
    (void)cgroup::SetFrozen(z->cgroup, true);
    return st;
  }
  if (recorder_) recorder_->Flush();
  return absl::OkStatus();
}

absl::StatusOr<ZoneView> ZoneManager::BeginTask(const std::string& name) {
  std::lock_guard lock(mu_);
  Zone* z = FindLocked(name);
  if (!z) return absl::NotFoundError(StrCat("zone \"", name, "\" does not exist"));
  if (z->retiring) {
    return absl::FailedPreconditionError(
        StrCat("zone \"", name, "\" is a temporary zone whose task ended; it is being removed"));
  }
  if (z->state != ZoneState::kReady && z->state != ZoneState::kRunning) {
    return absl::FailedPreconditionError(
        StrCat("zone \"", name, "\" is ", ToString(z->state),
               z->record.state_reason.empty() ? "" : StrCat(" (", z->record.state_reason, ")"),
               "; tasks start in Ready or Running zones",
               z->state == ZoneState::kPaused ? " (resume it first)" : ""));
  }
  if (z->state == ZoneState::kReady) MarkState(*z, ZoneState::kRunning);
  ++z->running_tasks;
  SpanTrace::MarkCurrent("begin_state");
  return ViewWithNetwork(*z);
}

void ZoneManager::NoteTaskKillLocked(const Zone& zone, std::string reason) {
  if (zone.running_tasks == 0) return;
  kill_reasons_.try_emplace(zone.record.id, KillReason{std::move(reason), zone.running_tasks});
}

std::string ZoneManager::TaskKillReason(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  auto it = kill_reasons_.find(zone_id);
  return it == kill_reasons_.end() ? "" : it->second.reason;
}

void ZoneManager::EndTask(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  if (auto it = kill_reasons_.find(zone_id); it != kill_reasons_.end()) {
    if (--it->second.tasks_left == 0) kill_reasons_.erase(it);
  }
  for (auto& [name, z] : zones_) {
    if (z->record.id != zone_id) continue;
    if (z->running_tasks > 0) --z->running_tasks;
    // A retiring zone (a claimed pooled zone whose task ended) stays Running until its
    // deletion records Stopping: Ready would say it takes tasks, which it does not.
    if (z->running_tasks == 0 && z->state == ZoneState::kRunning && !z->retiring) {
      MarkState(*z, ZoneState::kReady);
    }
    return;
  }
}

void ZoneManager::MarkShimLost(const std::string& zone_id, const std::string& reason) {
  store::ZoneRecord record;
  cgroup::ZoneCgroup cg;
  {
    std::lock_guard lock(mu_);
    Zone* found = nullptr;
    for (auto& [name, z] : zones_) {
      if (z->record.id == zone_id) found = z.get();
    }
    if (!found || found->state == ZoneState::kStopped || found->state == ZoneState::kStopping ||
        found->state == ZoneState::kDestroying) {
      return;
    }
    SetState(*found, ZoneState::kStopped, reason);
    record = found->record;
    cg = found->cgroup;
  }
  (void)cgroup::SetFrozen(cg, false);
  Teardown(record, cg);
}

absl::Status ZoneManager::HandleOrphans(const std::vector<store::ZoneRecord>& records) {
  std::set<std::string> known;
  for (const auto& rec : records) known.insert(rec.id);
  struct Orphan {
    std::string id;
    int64_t shim_pid = 0;  // 0: no shim answers
  };
  std::vector<Orphan> orphans;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(config_.run_dir + "/zones", ec)) {
    std::string id = entry.path().filename();
    if (known.count(id) || !entry.is_directory(ec)) continue;
    auto hello = ShimClient(config_.ShimSocket(id)).Hello(kHungShimMs);
    orphans.push_back({id, hello.ok() && hello->zone_id == id ? hello->pid : 0});
  }
  std::string live;
  for (const auto& o : orphans) {
    if (o.shim_pid != 0)
      live += StrCat(live.empty() ? "" : ", ", o.id, " (shim pid ", o.shim_pid, ")");
  }
  if (!live.empty() && !config_.remove_orphans) {
    return absl::FailedPreconditionError(StrCat(
        "the database ", config_.DatabasePath(),
        records.empty() ? " holds no zones" : " does not hold every zone", ", but ",
        config_.run_dir, "/zones has zones whose shims still run: ", live,
        ". The database was lost, truncated or replaced (or --state-dir and --run-dir belong to "
        "different installations). Nothing was changed. Restore the database, or start rauhad "
        "with --remove-orphans to stop these zones (their tasks are killed) and remove them"));
  }
  for (const auto& o : orphans) {
    std::fprintf(stderr,
                 "rauhad: zone %s is not in the database%s; removing its processes, cgroups and "
                 "run directory\n",
                 o.id.c_str(),
                 o.shim_pid ? StrCat(" and its shim (pid ", o.shim_pid, ") runs").c_str() : "");
    store::ZoneRecord rec;
    rec.id = o.id;
    rec.name = o.id;
    rec.shim_pid = o.shim_pid;
    Teardown(rec, cgroups_->ZonePaths(o.id));
  }
  return absl::OkStatus();
}

absl::Status ZoneManager::Recover() {
  RAUHA_ASSIGN_OR_RETURN(auto records, store_->ListZones());
  RAUHA_RETURN_IF_ERROR(HandleOrphans(records));
  std::set<std::string> known;
  for (auto& rec : records) {
    known.insert(rec.id);
    auto pol = policy::ParsePolicy(rec.policy_toml, StrCat("stored policy of zone ", rec.name));
    if (!pol.ok()) {
      std::fprintf(stderr, "rauhad: zone %s has an unreadable stored policy (%s); removing it\n",
                   rec.name.c_str(), ToStd(pol.status().message()).c_str());
      Teardown(rec, cgroups_->ZonePaths(rec.id));
      store::LogRefused(store_->DeleteZone(rec.id), StrCat("forgetting zone ", rec.name));
      continue;
    }
    auto zone = std::make_unique<Zone>();
    zone->record = rec;
    zone->policy = *pol;
    if (network_ && pol->network.mode == policy::NetworkMode::kBridged)
      zone->address = network_->AddressOf(rec.id);
    zone->cgroup = cgroups_->ZonePaths(rec.id);
    // A live shim keeps the ids it was started with, whatever this rauhad's flags say.
    if (userns_) zone->userns_first = userns_->Lookup(rec.id).value_or(0);
    auto state = ZoneStateFromString(rec.state).value_or(ZoneState::kStopped);
    zone->state = state;

    if (state == ZoneState::kCreating || state == ZoneState::kDestroying ||
        state == ZoneState::kStopping) {
      // Interrupted half-way: finish the removal.
      Teardown(rec, zone->cgroup);
      store::LogRefused(store_->DeleteZone(rec.id), StrCat("forgetting zone ", rec.name));
      events_->Publish(rec.name, "zone.deleted", "removed after an interrupted create or delete");
      continue;
    }
    if (state == ZoneState::kStopped) {
      if (rec.state_reason == kDaemonStopped) {
        // Stopped by a clean daemon stop: bring it back, in the network namespace it joined
        // (a pod's) when that is still there; without it, it stays stopped and says why (a
        // namespace of its own would cut it off from its pod).
        Zone work = *zone;
        work.state = ZoneState::kCreating;
        work.netns_path = rec.netns_path;
        absl::Status up = CheckNetworkNamespace(rec.netns_path);
        if (!up.ok()) {
          up = absl::FailedPreconditionError(
              StrCat("the network namespace it joined is gone (", up.message(),
                     "); delete the zone (for a pod: remove the pod)"));
        } else {
          up = Bringup(work);
        }
        if (up.ok()) {
          zone->record.shim_pid = work.record.shim_pid;
          zone->cgroup = work.cgroup;
          zone->limits = work.limits;
          zone->address = work.address;
          zone->userns_first = work.userns_first;
          zone->netns_path = work.netns_path;
          std::lock_guard lock(mu_);
          auto* z = zone.get();
          zones_[rec.name] = std::move(zone);
          z->state = ZoneState::kCreating;
          SetState(*z, ZoneState::kReady);
          continue;
        }
        zone->record.state_reason = StrCat("restart failed: ", up.message());
        store::LogRefused(store_->PutZone(zone->record), StrCat("recording zone ", rec.name));
      } else {
        (void)cgroup::Remove(zone->cgroup);
      }
      std::lock_guard lock(mu_);
      zones_[rec.name] = std::move(zone);
      continue;
    }
    // Ready, Running or Paused: is its shim still there?
    auto hello = ShimClient(config_.ShimSocket(rec.id)).Hello();
    if (hello.ok() && hello->zone_id == rec.id) {
      zone->netns_path = rec.netns_path;  // the live shim is still in it
      auto limits = cgroup::ApplyLimits(zone->cgroup, LimitsOf(zone->policy));
      if (limits.ok()) zone->limits = *limits;
      zone->record.shim_pid = hello->pid;
      // Its cgroup links are pinned: they kept enforcing while no rauhad ran, and attaching
      // adopts them (switched to the programs loaded now, no duplicates).
      if (hub_) {
        if (auto st = hub_->AttachZone(rec.id, rec.name, zone->cgroup, zone->policy,
                                       network_ ? network_->config().subnet : "");
            !st.ok()) {
          std::fprintf(stderr, "rauhad: zone %s: %s\n", rec.name.c_str(),
                       ToStd(st.message()).c_str());
        }
      }
      if (zone->policy.network.mode == policy::NetworkMode::kBridged && network_) {
        auto address = network_->Adopt(rec.id, rec.name, hello->pid, zone->policy);
        if (address.ok()) {
          zone->address = *address;
          if (hub_) (void)hub_->SetZoneAddress(rec.id, zone->address);
        } else {
          std::fprintf(stderr, "rauhad: zone %s: taking over its network: %s\n", rec.name.c_str(),
                       ToStd(address.status().message()).c_str());
        }
      }
      if (!zone->netns_path.empty() && network_) {
        // Its table is still in the namespace (it kept filtering): rebuilt from the policy.
        if (auto st = network_->AttachJoined(rec.id, rec.name, hello->pid, zone->policy);
            !st.ok()) {
          std::fprintf(stderr, "rauhad: zone %s: taking over its rules: %s\n", rec.name.c_str(),
                       ToStd(st.message()).c_str());
        }
      }
      if (auto st = AttachProxy(zone->record, zone->policy); !st.ok()) {
        std::fprintf(stderr, "rauhad: zone %s: %s\n", rec.name.c_str(),
                     ToStd(st.message()).c_str());
      }
      std::lock_guard lock(mu_);
      auto* z = zone.get();
      zones_[rec.name] = std::move(zone);
      if (z->state == ZoneState::kRunning) SetState(*z, ZoneState::kReady);
      continue;
    }
    std::string reason = StrCat("its shim (pid ", rec.shim_pid,
                                ") was gone when rauhad restarted; processes and cgroups removed");
    {
      std::lock_guard lock(mu_);
      auto* z = zone.get();
      zones_[rec.name] = std::move(zone);
      SetState(*z, ZoneState::kStopped, reason);
    }
    Teardown(rec, cgroups_->ZonePaths(rec.id));
  }
  if (network_) {
    std::set<std::string> existing;
    {
      std::lock_guard lock(mu_);
      for (const auto& [name, z] : zones_) existing.insert(z->record.id);
    }
    // Veths, chains and addresses that belong to no zone: leftovers of a crash.
    if (auto st = network_->Reconcile(existing); !st.ok()) {
      std::fprintf(stderr, "rauhad: reconciling zone networks: %s\n", ToStd(st.message()).c_str());
    }
  }
  if (userns_) {
    std::set<std::string> existing;
    {
      std::lock_guard lock(mu_);
      for (const auto& [name, z] : zones_) existing.insert(z->record.id);
    }
    // Blocks of zones removed half-way (a crash between the kernel and the database).
    store::LogRefused(userns_->ReleaseAllBut(existing), "releasing leftover user id blocks");
  }
  if (proxy_) {
    std::set<std::string> existing;
    {
      std::lock_guard lock(mu_);
      for (const auto& [name, z] : zones_) existing.insert(z->record.id);
    }
    // Stored CAs of zones removed half-way (a crash between the kernel and the database).
    proxy_->ForgetZonesExcept(existing);
  }
  // cgroup directories that belong to no zone: leftovers of a crash.
  for (const auto& id : cgroups_->ListZoneIds()) {
    if (!known.count(id)) (void)cgroup::Remove(cgroups_->ZonePaths(id));
  }
  std::vector<std::pair<std::string, int64_t>> live;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, z] : zones_) {
      if (z->state == ZoneState::kReady || z->state == ZoneState::kRunning ||
          z->state == ZoneState::kPaused)
        live.emplace_back(z->record.id, z->record.shim_pid);
    }
  }
  for (const auto& [id, pid] : live) WatchShim(id, pid);
  return absl::OkStatus();
}

int ZoneManager::RemoveIdleTemporaryZones() {
  std::vector<std::string> idle;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, z] : zones_) {
      if (z->record.temporary && z->running_tasks == 0) idle.push_back(name);
    }
  }
  int removed = 0;
  for (const auto& name : idle) {
    std::fprintf(stderr,
                 "rauhad: removing temporary zone %s: no task of it was running when rauhad "
                 "restarted\n",
                 name.c_str());
    auto st = DeleteInternal(name, /*force=*/true);
    if (st.ok()) {
      ++removed;
    } else {
      std::fprintf(stderr, "rauhad: removing temporary zone %s: %s\n", name.c_str(),
                   ToStd(st.message()).c_str());
    }
  }
  return removed;
}

void ZoneManager::StopAll() {
  std::vector<std::pair<std::string, bool>> names;
  {
    std::lock_guard lock(mu_);
    for (auto& [name, z] : zones_) names.emplace_back(name, z->record.temporary);
  }
  for (const auto& [name, temporary] : names) {
    {
      std::lock_guard lock(mu_);
      if (Zone* z = FindLocked(name, /*include_pooled=*/true)) {
        NoteTaskKillLocked(*z, temporary ? "rauhad stopped while it ran; its temporary zone "
                                           "was removed"
                                         : StrCat("rauhad stopped while it ran; zone \"", name,
                                                  "\" is Stopped until rauhad starts again"));
      }
    }
    if (temporary) {
      (void)DeleteInternal(name, /*force=*/true);
      continue;
    }
    store::ZoneRecord record;
    cgroup::ZoneCgroup cg;
    bool paused = false;
    {
      std::lock_guard lock(mu_);
      Zone* z = FindLocked(name);
      if (!z || z->state == ZoneState::kStopped) continue;
      paused = z->state == ZoneState::kPaused;
      SetState(*z, ZoneState::kStopping);
      record = z->record;
      cg = z->cgroup;
    }
    if (paused) (void)cgroup::SetFrozen(cg, false);
    Teardown(record, cg);
    std::lock_guard lock(mu_);
    if (Zone* z = FindLocked(name)) SetState(*z, ZoneState::kStopped, std::string(kDaemonStopped));
  }
}

}  // namespace rauha
