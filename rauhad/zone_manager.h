// The zone registry: creates, tracks and removes zones (cgroups, shim, metadata) and is the one
// place zone state changes. Slow kernel work runs outside the registry lock while the zone is
// in a transitional state (Creating, Stopping, Destroying) that makes other calls wait their turn
// or fail with FailedPrecondition.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rauha-common/lifecycle.h"
#include "rauha-common/policy/policy.h"
#include "rauhad/audit/recorder.h"
#include "rauhad/config.h"
#include "rauhad/controls.h"
#include "rauhad/egress/proxy.h"
#include "rauhad/enforcement_hub.h"
#include "rauhad/event_bus.h"
#include "rauhad/linux/cgroup.h"
#include "rauhad/net/zone_network.h"
#include "rauhad/shim_watcher.h"
#include "rauhad/store/store.h"
#include "rauhad/userns_ranges.h"

namespace rauha {

// Layer status shown in `rauha zone show`: what is really applied to the zone.
struct LayerView {
  std::string name;
  bool active = false;
  std::string detail;
};

// A consistent copy of one zone's state, for API responses.
struct ZoneView {
  std::string id;
  std::string name;
  policy::ZoneType zone_type = policy::ZoneType::kNonGlobal;
  ZoneState state = ZoneState::kCreating;
  std::string state_reason;
  std::string created_at;
  int64_t shim_pid = 0;
  uint32_t running_tasks = 0;
  bool temporary = false;
  policy::Policy policy;
  cgroup::ZoneCgroup cgroup;
  std::vector<cgroup::LimitReport> limits;
  std::vector<std::string> unavailable;  // controls no layer enforces here
  std::vector<LayerView> layers;
  std::vector<ControlLayer> controls;  // per control: the layer that enforces it here
  std::vector<HookCount> counters;     // denials per hook since the zone was created here
  uint64_t events_lost = 0;
  std::string shim_socket;
  std::string address;  // bridged zones: the zone's IPv4 address
  std::string
      network_rules;  // bridged or joined-netns zones: their nftables rules, as nft commands
  uint32_t userns_first = 0;  // host id of the zone's uid/gid 0 (65536 ids); 0: host ids
  std::string userns;         // what the zone's ids are, for people ("uid/gid 0-65535 -> ...")
  std::string netns_path;     // the network namespace it joined; "": its own
  std::string hostname;       // what its tasks see as the hostname
};

struct ZoneStatsView {
  std::string zone_id;
  cgroup::Stats cgroup;
  double cpu_usage_percent = 0;
  uint64_t network_rx_bytes = 0;
  uint64_t network_tx_bytes = 0;
  uint32_t running_tasks = 0;
  std::optional<egress::ProxyZoneStats> proxy;  // nullopt: no egress proxy listener
  std::optional<net::DropCounts> drops;         // nullopt: no nftables chains
};

struct IsolationCheckView {
  std::string name;
  bool passed = false;
  std::string detail;
};

class ZoneManager {
 public:
  // `network` null: bridged zones are refused.
  // `hub` null: no eBPF enforcement (unit tests of the registry).
  // `userns` null, or host_layers().userns false: every zone keeps the host's ids.
  ZoneManager(DaemonConfig config, store::Store* store, cgroup::Manager* cgroups, EventBus* events,
              net::ZoneNetwork* network = nullptr, EnforcementHub* hub = nullptr,
              UsernsRanges* userns = nullptr);
  ~ZoneManager();

  // What enforces each control on this host.
  HostLayers host_layers() const;
  EnforcementHub* hub() const { return hub_; }
  // Lifecycle steps and decisions go to the audit log (null: not recorded).
  void set_recorder(audit::Recorder* recorder) { recorder_ = recorder; }
  // Zones with [network] allowed_hosts get a listener of `proxy` (set before Recover).
  void set_egress_proxy(egress::EgressProxy* proxy) { proxy_ = proxy; }

  // `zone_type` is "", "non-global" or "privileged" ("" = the policy's [zone] type).
  // `policy_toml` "" = the daemon's default policy. `warnings` receives the policy's warnings
  // (rules that cannot apply; ParsePolicy), which are also published as events of the zone.
  // `netns_path` "": the zone makes its own network namespace; else the zone's tasks share
  // that existing one (a pod's; policy network.mode must be "isolated"). `hostname` "": derived
  // from the name (ZoneHostname); else the UTS hostname its tasks see (IsHostname).
  absl::StatusOr<ZoneView> Create(const std::string& name, const std::string& zone_type,
                                  const std::string& policy_toml, bool temporary = false,
                                  std::vector<std::string>* warnings = nullptr,
                                  const std::string& netns_path = "",
                                  const std::string& hostname = "");

  // The warm pool (pool/warm_pool.h). A pooled zone is a temporary zone made ahead of any
  // request (cgroups, limits, BPF, shim, network), invisible to the API (List, Get, Delete,
  // ApplyPolicy and the rest answer as if it did not exist) and publishing no events until
  // a sandbox call claims it. Its name is final from the start: the shim sets it as the
  // hostname.
  //
  // The key under which a zone of `policy_toml` ("" = the default policy) is pooled: the
  // policy's digest (audit::PolicyDigest of the resolved policy). InvalidArgument when the
  // policy does not parse. Kept per policy text (each sandbox call asks, mostly with the same
  // text), except for "" with a default policy file, which is read again each time.
  absl::StatusOr<std::string> PoolKey(const std::string& policy_toml);
  // Makes a pooled zone; returns its name and pool key.
  absl::StatusOr<std::pair<std::string, std::string>> CreatePooled(const std::string& policy_toml);
  // Hands the pooled zone `name` to a sandbox call: it becomes an ordinary temporary zone.
  // With `keep` (a container's zone, which lasts as long as the container, stopped or not) it
  // is no longer temporary either, so a restart of rauhad keeps it. False when it is no longer
  // usable (its shim died, or the store refused the change): delete it with DeleteInternal.
  bool ClaimPooled(const std::string& name, bool keep = false);
  // A claimed zone's task ended and its deletion is queued: no task may start in it again, and
  // to the API it is gone (as a temporary zone is once its call answers); the kernel side
  // goes with DeleteInternal. Marked before the task's EndTask, the zone stays Running until
  // its deletion (no Ready in between).
  void MarkRetiring(const std::string& name);
  // Delete that also sees pooled zones (the pool's own teardown and the daemon's stop).
  absl::Status DeleteInternal(const std::string& name, bool force);
  // The type a task's zone has or will have: the named zone's if it exists, else that of the
  // policy a new zone would get. InvalidArgument for a policy that does not parse.
  absl::StatusOr<policy::ZoneType> TypeForTask(const std::string& name,
                                               const std::string& policy_toml);
  absl::Status Delete(const std::string& name, bool force);
  absl::StatusOr<ZoneView> Get(const std::string& name);
  std::vector<ZoneView> List();
  absl::Status ApplyPolicy(const std::string& name, const std::string& policy_toml,
                           std::vector<std::string>* warnings = nullptr);
  absl::StatusOr<std::string> GetPolicy(const std::string& name);
  absl::StatusOr<ZoneStatsView> Stats(const std::string& name);
  absl::StatusOr<std::vector<IsolationCheckView>> Verify(const std::string& name);
  absl::Status Pause(const std::string& name);
  absl::Status Resume(const std::string& name);

  // A task is starting in the zone: Ready -> Running. FailedPrecondition when the zone cannot
  // take one (paused, stopping, its shim is gone). Every BeginTask is paired with EndTask.
  absl::StatusOr<ZoneView> BeginTask(const std::string& name);
  void EndTask(const std::string& zone_id);
  // Why the zone's running tasks were killed from outside ("its zone was deleted with
  // zone delete --force ..."), or "" when nothing did. Kept until each of those tasks has
  // called EndTask, so every one of them can say it in its result.
  std::string TaskKillReason(const std::string& zone_id);
  // Zone id -> view, for tasks that outlive a restart.
  std::optional<ZoneView> FindById(const std::string& zone_id);
  // The zone's shim disappeared under a running zone: mark it Stopped and remove its resources.
  void MarkShimLost(const std::string& zone_id, const std::string& reason);

  // After a restart: reattach to surviving shims, mark zones whose shim died, restart zones
  // stopped by a clean daemon stop, remove leftovers. Returns the ids of zones reattached.
  absl::Status Recover();
  // After Recover and TaskRunner::Recover: a temporary zone exists for one task, so one that
  // holds no running task now (its task had not started, or ended, when rauhad went down)
  // would stay for ever. Deletes them; returns how many.
  int RemoveIdleTemporaryZones();
  // Clean daemon stop: temporary zones are deleted; the others stop (tasks killed, shim and
  // cgroups removed) and restart with the next rauhad.
  void StopAll();

 private:
  struct Zone {
    store::ZoneRecord record;
    policy::Policy policy;
    ZoneState state = ZoneState::kCreating;
    cgroup::ZoneCgroup cgroup;
    std::vector<cgroup::LimitReport> limits;
    uint32_t running_tasks = 0;
    uint64_t last_cpu_ns = 0;
    std::chrono::steady_clock::time_point last_cpu_sample{};
    std::string address;        // bridged zones
    bool pooled = false;        // in the warm pool, not yet claimed: invisible to the API
    bool retiring = false;      // its one task ended; its deletion is queued (no new task)
    uint32_t userns_first = 0;  // its user namespace's block of host ids; 0: host ids
    // The network namespace it joined (a pod's); "": its own. The store keeps the path
    // (record.netns_path): a zone a new rauhad brings back joins it again if it is still a
    // network namespace, else stays stopped saying so.
    std::string netns_path;
  };

  // Whether the zone gets its own user namespace when its shim starts: a non-privileged zone
  // whose policy does not turn it off, on a host where it works.
  bool WantsUserns(const Zone& zone) const;

  // `policy_toml`, else the default policy; `warnings` as policy::ParsePolicy gives them for a
  // zone whose network is `placement`.
  absl::StatusOr<policy::Policy> ResolvePolicy(
      const std::string& policy_toml, std::vector<std::string>* warnings,
      policy::NetworkPlacement placement = policy::NetworkPlacement::kOwn);
  // FailedPrecondition listing the controls of `pol` no layer enforces here, unless the
  // policy's admission mode is "audit".
  absl::Status CheckAdmission(const policy::Policy& pol, const std::string& what) const;
  // Sets up cgroups and the shim for a zone already in the map in state Creating.
  absl::Status Bringup(Zone& zone_copy);
  // The zone's egress proxy listener per its allowed_hosts (none without them).
  absl::Status AttachProxy(const store::ZoneRecord& record, const policy::Policy& policy);
  void Teardown(const store::ZoneRecord& record, const cgroup::ZoneCgroup& cg);
  // Zone directories of the run dir that no record in `known` holds: dead ones are removed;
  // live ones (their shim answers) refuse the start (FailedPrecondition saying what to do)
  // unless config_.remove_orphans, which stops and removes them. Runs before anything else
  // of the recovery touches the kernel.
  absl::Status HandleOrphans(const std::vector<store::ZoneRecord>& known);
  // Watches a live zone's shim; one already gone is marked lost at once. Without mu_.
  void WatchShim(const std::string& zone_id, int64_t shim_pid);
  // The watcher saw a shim exit: a live zone whose shim it still is lost it.
  void OnShimExit(const std::string& zone_id, pid_t pid);
  // A state the kernel already shows (a shim died, a task ended): the registry follows it even
  // when the store refuses to record it (logged; recovery reads the kernel again). mu_ held.
  void SetState(Zone& zone, ZoneState state, std::string reason = "");
  // A state change a request asks for: recorded first, so a store that refuses it (a full
  // disk) fails the request with the zone unchanged. mu_ held.
  absl::Status CommitState(Zone& zone, ZoneState state, std::string reason = "");
  // A state the database does not keep: Running (a task runs; a restart reads the zone as
  // Ready, which it also is in the database meanwhile), the Ready a task's end returns to, and
  // Destroying (its record is already gone). In the registry, audited and published, as the
  // others, but no write to the store. mu_ held.
  void MarkState(Zone& zone, ZoneState state, std::string reason = "");
  ZoneView ViewOf(const Zone& zone) const;           // mu_ held
  ZoneView ViewWithNetwork(const Zone& zone) const;  // mu_ held
  // Pooled and retiring zones are skipped unless `include_pooled` (the API never sees them).
  // mu_ held.
  Zone* FindLocked(const std::string& name, bool include_pooled = false);
  absl::StatusOr<ZoneView> CreateZone(const std::string& name, const std::string& zone_type,
                                      const std::string& policy_toml, bool temporary,
                                      std::vector<std::string>* warnings, bool pooled,
                                      const std::string& netns_path = "",
                                      const std::string& hostname = "");
  absl::Status DeleteZone(const std::string& name, bool force, bool include_pooled);

  DaemonConfig config_;
  store::Store* store_;
  cgroup::Manager* cgroups_;
  EventBus* events_;
  net::ZoneNetwork* network_;
  EnforcementHub* hub_;
  UsernsRanges* userns_;
  audit::Recorder* recorder_ = nullptr;
  egress::EgressProxy* proxy_ = nullptr;
  std::mutex mu_;
  // PoolKey's answers by policy text (bounded: cleared when full).
  std::mutex pool_keys_mu_;
  std::map<std::string, std::string> pool_keys_;
  static constexpr size_t kMaxPoolKeys = 64;
  std::map<std::string, std::unique_ptr<Zone>> zones_;  // by name
  struct KillReason {
    std::string reason;
    uint32_t tasks_left = 0;  // EndTask calls still to come
  };
  std::map<std::string, KillReason> kill_reasons_;  // by zone id
  // Records why the zone's running tasks are about to be killed (first reason wins).
  void NoteTaskKillLocked(const Zone& zone, std::string reason);  // mu_ held
  // Last: destroyed first, so no callback reaches a half-destroyed registry.
  std::unique_ptr<ShimWatcher> watcher_;
};

// Controls the policy states that nothing on this host enforces yet, with the reason.
std::vector<std::string> UnavailableControls(const policy::Policy& policy,
                                             const std::vector<cgroup::LimitReport>& limits);

// "zone.userns: ..." when a non-privileged zone's policy asks for its own user namespace
// (the default) and it runs without one because this host cannot give it (`host`); "" else.
std::string UsernsGap(const policy::Policy& policy, policy::ZoneType type, uint32_t userns_first,
                      const HostLayers& host);

// Shell-free check that `pid` is still the process we think (pid reuse): its cmdline holds
// `needle`.
bool ProcessCmdlineContains(pid_t pid, const std::string& needle);

}  // namespace rauha
