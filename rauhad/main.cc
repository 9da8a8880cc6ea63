// rauhad: owns zones and serves the Rauha gRPC API on a root-only unix socket.
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "rauha-common/cgroup_layout.h"
#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/landlock_abi.h"
#include "rauha-common/shim_endpoint_path.h"
#include "rauha-common/strcat.h"
#include "rauha-common/userns.h"
#include "rauhad/audit/audit_log.h"
#include "rauhad/audit/recorder.h"
#include "rauhad/call_gate.h"
#include "rauhad/config.h"
#include "rauhad/container/container_manager.h"
#include "rauhad/egress/proxy.h"
#include "rauhad/egress_counters.h"
#include "rauhad/enforcement_hub.h"
#include "rauhad/event_bus.h"
#include "rauhad/image/image_store.h"
#include "rauhad/image/layer_cache.h"
#include "rauhad/image/puller.h"
#include "rauhad/linux/bpf/pin_dir.h"
#include "rauhad/linux/cgroup.h"
#include "rauhad/net/zone_network.h"
#include "rauhad/owned_dir.h"
#include "rauhad/pool/warm_pool.h"
#include "rauhad/private_socket.h"
#include "rauhad/process_runner.h"
#include "rauhad/secrets/secret_store.h"
#include "rauhad/server/audit_service.h"
#include "rauhad/server/container_service.h"
#include "rauhad/server/endpoints.h"
#include "rauhad/server/image_service.h"
#include "rauhad/server/invalid_utf8.h"
#include "rauhad/server/process_service.h"
#include "rauhad/server/sandbox_service.h"
#include "rauhad/server/secret_service.h"
#include "rauhad/server/shim_endpoint.h"
#include "rauhad/server/zone_service.h"
#include "rauhad/store/store.h"
#include "rauhad/task_runner.h"
#include "rauhad/userns_ranges.h"
#include "rauhad/zone_manager.h"
#include "rauhad/zones_tmpfs.h"

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "rauhad: %s\n", message.c_str());
  return 1;
}

std::string DefaultShimPath() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  for (const auto& candidate : {self / "rauha-shim", self / ".." / "rauha-shim" / "rauha-shim"}) {
    if (std::filesystem::exists(candidate, ec))
      return std::filesystem::weakly_canonical(candidate, ec);
  }
  return "/usr/local/bin/rauha-shim";
}

// Run and state dirs hold shim sockets, logs and the database: rauhad creates them 0700. One
// that already exists is the operator's and keeps its mode; rauhad only says when others can
// write to it.
absl::Status PrepareDir(const std::string& path, const char* what) {
  bool created = false;
  if (auto st = rauha::MakeOwnedDirectory(path, 0700, &created); !st.ok()) {
    return rauha::Annotate(st, rauha::StrCat("creating the ", what));
  }
  if (!created) {
    if (std::string exposure = rauha::DirectoryExposure(path); !exposure.empty()) {
      std::fprintf(stderr, "rauhad: warning: the %s %s; left unchanged\n", what, exposure.c_str());
    }
  }
  return absl::OkStatus();
}

// --repo-root values as real paths, so a request's symlink-free path compares by string.
absl::StatusOr<std::vector<std::string>> RealRepoRoots(const std::vector<std::string>& roots) {
  std::vector<std::string> out;
  for (const auto& root : roots) {
    std::error_code ec;
    auto real = std::filesystem::canonical(root, ec);
    if (ec || !std::filesystem::is_directory(real, ec)) {
      return absl::InvalidArgumentError(
          rauha::StrCat("--repo-root ", root, ": not an existing directory",
                        ec ? rauha::StrCat(" (", ec.message(), ")") : ""));
    }
    out.push_back(real.string());
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  rauha::DaemonConfig config;
  rauha::net::NetConfig net_config;
  CLI::App app{"rauhad: the Rauha zone daemon (serves rauha.zone.v1 and rauha.sandbox.v1)"};
  app.add_option("--socket", config.socket_path, "gRPC unix socket (mode 0600)")
      ->capture_default_str();
  app.add_option("--run-dir", config.run_dir, "runtime files: shim sockets, per-zone scratch")
      ->capture_default_str();
  app.add_option("--state-dir", config.state_dir, "persistent state: the metadata database")
      ->capture_default_str();
  app.add_option(
         "--cgroup-parent", config.cgroup_parent,
         "zone cgroups' parent: a name below rauhad's own cgroup, or an absolute cgroup path")
      ->capture_default_str();
  app.add_option("--repo-root", config.repo_roots,
                 "a directory whose subdirectories requests may expose to zones as repo paths "
                 "(repeatable; default: any directory the built-in rules allow)");
  app.add_option("--shim-path", config.shim_path, "rauha-shim binary (default: beside rauhad)");
  app.add_option("--default-policy", config.default_policy_file,
                 "policy file for zones created without one (default: built-in standard policy)");
  app.add_option("--bpf-pin-dir", config.bpf_pin_dir,
                 "bpffs directory where this rauhad pins its BPF maps, programs and links, so "
                 "enforcement outlives a crash (default: /sys/fs/bpf/rauha/<state dir>-<hash>; "
                 "bpffs is mounted at /sys/fs/bpf when nothing is); removed when rauhad stops");
  app.add_option("--output-limit", config.output_limit,
                 "bytes kept of each of a task's stdout and stderr")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 20));
  app.add_option("--container-log-max", config.container_log_max_bytes,
                 "bytes of a container's log before it is rotated (one rotated file is kept, "
                 "so a container holds at most about twice this on disk)")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{4096}, uint64_t{1} << 40));
  app.add_option("--max-watchers", config.max_watchers,
                 "concurrent WatchEvents streams (rauha events); more are refused with "
                 "RESOURCE_EXHAUSTED")
      ->capture_default_str()
      ->check(CLI::Range(1u, 65536u));
  app.add_option("--max-zone-ops", config.max_zone_ops,
                 "zone operations (create, delete, apply, verify, a sandbox's zone set-up) run "
                 "at once; more wait in line")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1024u));
  app.add_option("--zone-op-queue", config.zone_op_queue,
                 "zone operations waiting in line; more are refused with RESOURCE_EXHAUSTED")
      ->capture_default_str()
      ->check(CLI::Range(0u, 65536u));
  app.add_option("--max-task-calls", config.max_task_calls,
                 "RunSandbox and WaitTask calls in progress; more are refused with "
                 "RESOURCE_EXHAUSTED")
      ->capture_default_str()
      ->check(CLI::Range(1u, 65536u));
  app.add_option("--warm-zones", config.warm_zones,
                 "zones kept ready per pooled policy (the default policy, and up to 3 policies "
                 "given inline, from their first call on), so a sandbox call skips the zone's "
                 "set-up; each serves one task and is deleted after it. 0: no pool")
      ->capture_default_str()
      ->check(CLI::Range(0u, 64u));
  app.add_option("--warm-zones-max", config.warm_zones_max,
                 "the most zones kept ready per pooled policy: each call that finds its "
                 "policy's pool empty adds one, up to this; --warm-zones-shrink-after without "
                 "calls and it is back at --warm-zones (below --warm-zones: --warm-zones)")
      ->capture_default_str()
      ->check(CLI::Range(0u, 64u));
  app.add_option("--warm-zones-shrink-after", config.warm_zones_shrink_after_s,
                 "seconds without a call for a pooled policy after which the zones it keeps "
                 "beyond --warm-zones are deleted")
      ->capture_default_str()
      ->check(CLI::Range(1u, 86400u));
  std::string userns_range = "100000000:268435456";
  app.add_option("--userns-range", userns_range,
                 "host ids for zones' user namespaces, FIRST:COUNT (65536 per zone; default "
                 "100000000:268435456, 4096 zones), or \"off\": zones keep the host's ids")
      ->capture_default_str();
  app.add_option("--bridge", net_config.bridge, "bridge of bridged zones (created when needed)")
      ->capture_default_str();
  app.add_option("--subnet", net_config.subnet,
                 "IPv4 subnet of bridged zones: .1 is the gateway (the bridge), zones get .2 "
                 "onwards. The default is private and outside the ranges of Docker, podman, "
                 "libvirt and most home routers")
      ->capture_default_str();
  app.add_option("--nft-table", net_config.nft_table,
                 "nftables table (family inet) holding this rauhad's zone rules")
      ->capture_default_str();
  app.add_option("--nflog-group", net_config.nflog_group,
                 "NFLOG group the zones' nftables drops are logged to, to become enforcement "
                 "events (two rauhads in one network namespace need different groups; 0: drops "
                 "are not reported)")
      ->capture_default_str();
  std::string egress_hosts;
  app.add_option("--egress-hosts", egress_hosts,
                 "hosts file (/etc/hosts syntax) the egress proxy resolves names from, instead "
                 "of the host's resolver (for tests: no lookup leaves the machine)");
  std::string secret_key_file;
  app.add_option("--secret-key-file", secret_key_file,
                 "key (32 random bytes, 0600) that seals stored secrets; made by the first "
                 "`rauha secret set` (default: <state-dir>/keys/secrets.key). Keep it out of "
                 "backups of the state dir: the secrets database is useless without it")
      ->type_name("FILE");
  std::string egress_extra_ca;
  app.add_option("--egress-extra-ca", egress_extra_ca,
                 "PEM CA certificate(s) the egress proxy also trusts when it verifies the "
                 "upstream of a host a secret names (besides the host's CAs; for tests)")
      ->type_name("FILE");
  int egress_connect_timeout_ms = 10000;
  app.add_option("--egress-connect-timeout-ms", egress_connect_timeout_ms,
                 "the egress proxy gives up on an upstream that has not accepted its connection "
                 "after this long: 504 for plain HTTP (a CONNECT is closed) and an event")
      ->capture_default_str()
      ->check(CLI::Range(100, 600000));
  std::string audit_key;
  uint64_t audit_segment_bytes = 64ull << 20;
  app.add_option("--audit-key", audit_key,
                 "Ed25519 private key (PEM) to sign the audit log with when it has no key yet "
                 "(default: one generated at first start, <state-dir>/audit/signing.key)");
  app.add_option("--audit-segment-bytes", audit_segment_bytes,
                 "start a new audit log segment past this size")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{4096}, uint64_t{1} << 40));
  app.add_flag("--keep-network", net_config.keep_network,
               "keep the bridge and the nftables table when the last bridged zone goes and when "
               "rauhad stops (default: remove them)");
  app.add_flag("--remove-orphans", config.remove_orphans,
               "stop and remove zones whose shims run but that the database does not hold (it "
               "was lost or replaced); without it rauhad refuses to start over them");
  rauha::image::RegistryOptions registry;
  app.add_option("--insecure-registry", registry.insecure_registries,
                 "HOST:PORT of a registry spoken to over plain HTTP (repeatable; loopback "
                 "registries always are)")
      ->type_name("HOST:PORT");
  app.add_option("--registry-auth", registry.auth_file,
                 "credentials for registries: a ~/.docker/config.json-style file with \"auths\"")
      ->type_name("FILE");
  app.add_option("--registry-ca", registry.extra_ca_file,
                 "PEM CA certificates trusted for registries besides the system's")
      ->type_name("FILE");
  app.add_option("--max-concurrent-downloads", registry.max_concurrent_downloads,
                 "blobs of one pull downloaded in parallel")
      ->capture_default_str()
      ->check(CLI::Range(1u, 32u));
  std::vector<std::string> listen;
  rauha::TlsFiles tls;
  bool insecure_loopback = false;
  app.add_option("--listen", listen,
                 "also serve gRPC on TCP ADDR:PORT (repeatable; port 0 picks a free one). Needs "
                 "mutual TLS (--tls-cert, --tls-key, --tls-client-ca) unless the address is "
                 "loopback and --insecure-loopback is given")
      ->type_name("ADDR:PORT");
  app.add_option("--tls-cert", tls.cert, "PEM certificate (chain) rauhad presents on --listen");
  app.add_option("--tls-key", tls.key, "PEM private key of --tls-cert");
  app.add_option("--tls-client-ca", tls.client_ca,
                 "PEM CA certificate(s): clients must present a certificate signed by one");
  app.add_flag("--insecure-loopback", insecure_loopback,
               "serve loopback --listen addresses without TLS or authentication (any local user "
               "can then drive rauhad)");
  CLI11_PARSE(app, argc, argv);

  // Refused before anything is created: a TCP endpoint without authentication beyond
  // loopback would hand root to the network.
  auto tcp = rauha::PlanTcpListeners(listen, tls, insecure_loopback);
  if (!tcp.ok()) return Fail(rauha::ToStd(tcp.status().message()));
  std::shared_ptr<grpc::ServerCredentials> tls_credentials;
  if (tls.any()) {
    auto creds = rauha::MutualTlsCredentials(tls);
    if (!creds.ok()) return Fail(rauha::ToStd(creds.status().message()));
    tls_credentials = *std::move(creds);
  }

  auto userns_pool = rauha::ParseUsernsRange(userns_range);
  if (!userns_pool.ok()) return Fail(rauha::ToStd(userns_pool.status().message()));
  config.userns_first = userns_pool->first;
  config.userns_count = userns_pool->count;

  if (::geteuid() != 0) return Fail("must run as root (it creates cgroups, namespaces and mounts)");
  if (config.shim_path.empty()) config.shim_path = DefaultShimPath();
  if (::access(config.shim_path.c_str(), X_OK) != 0) {
    return Fail(rauha::StrCat("rauha-shim not found at ", config.shim_path, "; pass --shim-path"));
  }
  if (!config.default_policy_file.empty()) {
    auto p = rauha::policy::LoadPolicyFile(config.default_policy_file);
    if (!p.ok()) return Fail(rauha::ToStd(p.status().message()));
  }

  // Absolute and without symlinks: these paths are compared with the host paths requests name.
  for (std::string* path : {&config.socket_path, &config.run_dir, &config.state_dir}) {
    std::error_code ec;
    *path = std::filesystem::weakly_canonical(std::filesystem::absolute(*path), ec).string();
    if (ec) return Fail(rauha::StrCat("resolving ", *path, ": ", ec.message()));
  }
  auto roots = RealRepoRoots(config.repo_roots);
  if (!roots.ok()) return Fail(rauha::ToStd(roots.status().message()));
  config.repo_roots = *std::move(roots);

  ::umask(077);
  for (auto [path, what] :
       {std::pair{config.run_dir, "run dir"}, std::pair{config.TaskOutputSpoolDir(), "spool dir"},
        std::pair{config.state_dir, "state dir"},
        std::pair{std::filesystem::path(config.socket_path).parent_path().string(),
                  "socket's directory"}}) {
    if (auto st = PrepareDir(path, what); !st.ok()) return Fail(rauha::ToStd(st.message()));
  }

  // One daemon per state dir: a second one would fight over zones and the database.
  rauha::UniqueFd lock(
      ::open((config.state_dir + "/rauhad.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock || ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    return Fail("another rauhad is using " + config.state_dir + "; stop it or pass --state-dir");
  }
  // Where gRPC binds the socket, unreachable until it is 0600 (private_socket.h); removed on
  // every return.
  auto private_socket = rauha::PrivateSocket::Prepare(config.socket_path);
  if (!private_socket.ok()) return Fail(rauha::ToStd(private_socket.status().message()));
  // The zones' dirs and their shims' sockets on a tmpfs (zones_tmpfs.h); unmounted when this
  // function returns, after the zones stopped.
  auto zones_tmpfs = rauha::ZonesTmpfs::Prepare(config.run_dir + "/zones");
  if (!zones_tmpfs.ok()) return Fail(rauha::ToStd(zones_tmpfs.status().message()));

  // Signals are taken synchronously by the main thread; every thread started after this
  // inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  // Shims are rauhad's children (posix_spawn); with SIGCHLD ignored the kernel reaps them as
  // they exit, so a deleted zone leaves no zombie and rauhad needs no reaper thread.
  ::signal(SIGCHLD, SIG_IGN);

  // The audit log first: every step after this one is recorded.
  std::string torn;
  auto audit_log = rauha::audit::AuditLog::Open(
      {config.state_dir + "/audit", audit_key, audit_segment_bytes}, &torn);
  if (!audit_log.ok()) return Fail(rauha::ToStd(audit_log.status().message()));
  if (!torn.empty()) std::fprintf(stderr, "rauhad: audit log: %s\n", torn.c_str());
  rauha::audit::Recorder recorder(audit_log->get());
  recorder.DaemonStart(RAUHA_VERSION, torn);

  auto layout = rauha::DetectCgroupLayout();
  if (!layout.ok()) return Fail(rauha::ToStd(layout.status().message()));
  auto cgroups = rauha::cgroup::Manager::Create(*layout, config.cgroup_parent);
  if (!cgroups.ok()) return Fail(rauha::ToStd(cgroups.status().message()));
  auto store = rauha::store::Store::Open(config.DatabasePath());
  if (!store.ok()) return Fail(rauha::ToStd(store.status().message()));
  if (secret_key_file.empty()) secret_key_file = config.state_dir + "/keys/secrets.key";
  auto secret_store =
      rauha::secrets::SecretStore::Open(config.state_dir + "/secrets.db", secret_key_file);
  if (!secret_store.ok()) return Fail(rauha::ToStd(secret_store.status().message()));

  net_config.forwarding_marker = config.run_dir + "/ip_forward.restore";
  rauha::image::ImageStore images(config.state_dir, store->get());
  if (auto st = images.Init(); !st.ok()) return Fail(rauha::ToStd(st.message()));
  rauha::image::Puller puller(&images, registry);

  auto network = rauha::net::ZoneNetwork::Create(net_config, store->get());
  if (!network.ok()) return Fail(rauha::ToStd(network.status().message()));

  rauha::EventBus events(config.max_watchers);
  // The BPF object loads once; whether its LSM programs load is this kernel's decision, and
  // the layer table (controls.h) follows from it.
  rauha::HostLayers host;
  host.landlock_abi = rauha::LandlockAbi();
  // Zones run in their own user namespace only where both halves work: the namespace and the
  // idmapped mounts that keep the repo and the host view usable from it.
  if (config.userns_count == 0) {
    host.userns_detail = "off (rauhad --userns-range off)";
  } else {
    host.userns = rauha::ProbeZoneUserNamespaces("/usr", &host.userns_detail);
    if (host.userns) {
      host.userns_detail = rauha::StrCat(host.userns_detail, "; zones get 65536 ids each from ",
                                         config.userns_first, ":", config.userns_count);
    }
  }
  std::fprintf(stderr, "rauhad: user namespaces: %s\n", host.userns_detail.c_str());
  std::unique_ptr<rauha::bpf::Enforcer> enforcer;
  if (config.bpf_pin_dir.empty()) config.bpf_pin_dir = rauha::bpf::DefaultPinDir(config.state_dir);
  rauha::bpf::Enforcer::Options bpf_options;
  bpf_options.pin_dir = config.bpf_pin_dir;
  if (auto loaded = rauha::bpf::Enforcer::Load(bpf_options); loaded.ok()) {
    enforcer = *std::move(loaded);
    host.cgroup_bpf = true;
    host.lsm = enforcer->lsm_loaded();
    host.lsm_detail = enforcer->lsm_detail();
    host.landlock_events = enforcer->landlock_observed();
    host.landlock_events_detail = enforcer->landlock_detail();
    std::fprintf(stderr, "rauhad: BPF objects %s\n", enforcer->pin_detail().c_str());
  } else {
    host.lsm_detail = rauha::ToStd(loaded.status().message());
    std::fprintf(stderr, "rauhad: no eBPF enforcement on this host: %s\n", host.lsm_detail.c_str());
  }
  std::fprintf(stderr, "rauhad: enforcement: lsm %s; cgroup-bpf %s; landlock ABI %d\n",
               host.lsm ? "loaded" : ("not loaded (" + host.lsm_detail + ")").c_str(),
               host.cgroup_bpf ? "loaded" : "not loaded", host.landlock_abi);
  // Loading parsed the kernel's BTF (several MiB); libbpf freed it, but malloc keeps the pages
  // unless asked to return them, and rauhad is long-lived.
  ::malloc_trim(0);
  rauha::EnforcementHub hub(std::move(enforcer), host, &events);
  hub.set_recorder(&recorder);
  (*network)->SetDropSink(
      [&hub](const rauha::net::DroppedPacket& p, int64_t time_ns) { hub.PublishDrop(p, time_ns); });
  hub.set_extra_drain([net = network->get()] { net->DrainDrops(); });
  // The drop log's reader calls into the hub: it stops before the hub goes, on every path.
  struct StopDropsFirst {
    rauha::net::ZoneNetwork* net;
    ~StopDropsFirst() { net->StopDropLog(); }
  } stop_drops_first{network->get()};
  rauha::egress::ProxyOptions proxy_options;
  proxy_options.extra_ca_file = egress_extra_ca;
  proxy_options.connect_timeout_ms = egress_connect_timeout_ms;
  proxy_options.trust_dir = config.run_dir + "/egress-trust";
  // Zone CAs outlive a restart, sealed under the secrets' key (tasks keep trusting the proxy).
  proxy_options.ca_dir = config.state_dir + "/egress-ca";
  proxy_options.ca_key_file = secret_key_file;
  if (!egress_hosts.empty()) {
    std::ifstream in(egress_hosts);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) return Fail("--egress-hosts " + egress_hosts + ": cannot be read");
    auto hosts = rauha::egress::ParseHostsFile(text.str());
    if (!hosts.ok())
      return Fail("--egress-hosts " + egress_hosts + ": " + rauha::ToStd(hosts.status().message()));
    proxy_options.hosts = *std::move(hosts);
  }
  auto proxy = rauha::egress::EgressProxy::Create(
      std::move(proxy_options),
      [&hub](const rauha::EnforcementEvent& e) { hub.PublishToResults(e); });
  if (!proxy.ok()) return Fail(rauha::ToStd(proxy.status().message()));
  rauha::UsernsRanges userns_ranges({config.userns_first, config.userns_count}, store->get());
  rauha::ZoneManager zones(config, store->get(), cgroups->get(), &events, network->get(), &hub,
                           &userns_ranges);
  zones.set_recorder(&recorder);
  zones.set_egress_proxy(proxy->get());
  // The proxy's counters as the last rauhad left them, before zones are served again: a zone
  // that outlives a restart keeps its spent budget.
  rauha::EgressCounterKeeper egress_counters(store->get(), proxy->get());
  if (auto st = egress_counters.Load(); !st.ok()) {
    return Fail("reading the egress counters: " + rauha::ToStd(st.message()));
  }
  if (auto st = zones.Recover(); !st.ok()) return Fail(rauha::ToStd(st.message()));
  egress_counters.Start();
  hub.FinishRecovery();
  rauha::WarmPool::Options pool_options;
  pool_options.zones_per_policy = config.warm_zones;
  pool_options.max_zones_per_policy = config.warm_zones_max;
  pool_options.shrink_after = std::chrono::seconds(config.warm_zones_shrink_after_s);
  rauha::WarmPool pool(&zones, pool_options);
  rauha::image::LayerCache layers(config.state_dir);
  if (auto st = layers.Init(); !st.ok()) return Fail(rauha::ToStd(st.message()));
  rauha::TaskRunner runner(config, store->get(), &zones, &events, &images, &layers);
  runner.set_recorder(&recorder);
  runner.set_secrets(secret_store->get(), proxy->get());
  runner.Recover();
  rauha::container::ContainerManager containers(config, store->get(), &zones, &runner, &images,
                                                &events);
  containers.set_recorder(&recorder);
  containers.set_secrets(secret_store->get(), proxy->get());
  containers.Recover();
  // Grants of tasks and containers that ended while no rauhad ran.
  if (auto gone = (*secret_store)->ForgetUnclaimedGrants(); !gone.ok()) {
    std::fprintf(stderr, "rauhad: forgetting the secret grants of ended tasks: %s\n",
                 rauha::ToStd(gone.status().message()).c_str());
  }
  zones.RemoveIdleTemporaryZones();
  runner.set_pool(&pool);
  containers.set_pool(&pool);
  pool.Start();

  // After a burst of zone operations or tasks (policies parsed, results built) the heap is
  // free but malloc keeps its pages: return them when the last call of the burst leaves.
  auto trim = [] { ::malloc_trim(0); };
  rauha::CallGate zone_ops("zone operations", config.max_zone_ops, config.zone_op_queue, trim);
  rauha::CallGate task_calls("RunSandbox/WaitTask calls", config.max_task_calls, 0, trim);
  runner.set_zone_gate(&zone_ops);
  rauha::ZoneServiceImpl zone_service(&zones, &events, &runner, &zone_ops);
  rauha::SandboxServiceImpl sandbox_service(&runner, &task_calls);
  rauha::ProcessRunner processes(&zones, {config.repo_roots, config.DaemonPaths()});
  rauha::ProcessServiceImpl process_service(&processes);
  rauha::ImageServiceImpl image_service(&images, &puller);
  rauha::ContainerServiceImpl container_service(&containers, &task_calls);
  zone_service.set_containers(&containers);
  rauha::AuditServiceImpl audit_service(audit_log->get());
  rauha::SecretServiceImpl secret_service(secret_store->get(), &recorder, proxy->get());
  // A stale socket of ours is replaced (we hold the state lock); anything else is not ours.
  if (struct stat st; ::lstat(config.socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return Fail(config.socket_path + " exists and is not a socket; remove it or pass --socket");
    }
    ::unlink(config.socket_path.c_str());
  }
  // containerd-shim-rauha-v2's endpoint (ttrpc, beside the gRPC socket), listening before the
  // gRPC socket appears: whoever waits for that file finds both.
  const std::string shim_endpoint_path = rauha::ShimEndpointPath(config.socket_path);
  if (struct stat st; ::lstat(shim_endpoint_path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode)) {
    return Fail(shim_endpoint_path + " exists and is not a socket; remove it or pass --socket");
  }
  rauha::ShimEndpoint shim_endpoint(&zone_service, &process_service, &sandbox_service,
                                    &container_service);
  if (auto st = shim_endpoint.Serve(shim_endpoint_path); !st.ok()) {
    return Fail("cannot serve containerd-shim-rauha-v2's endpoint: " + std::string(st.message()));
  }
  // grpc.health.v1.Health (Kubernetes probes, grpc-health-probe) and server reflection
  // (grpcurl without our protos).
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  // The builder holds gRPC's library reference that outlives the server; see the end of main.
  auto builder_owner = std::make_unique<grpc::ServerBuilder>();
  grpc::ServerBuilder& builder = *builder_owner;
  builder.AddListeningPort("unix:" + private_socket->bind_path(),
                           grpc::InsecureServerCredentials());
  std::vector<int> tcp_ports(tcp->size(), 0);
  for (size_t i = 0; i < tcp->size(); ++i) {
    const auto& l = (*tcp)[i];
    builder.AddListeningPort(l.address, l.tls ? tls_credentials : grpc::InsecureServerCredentials(),
                             &tcp_ports[i]);
  }
  builder.SetMaxReceiveMessageSize(rauha::kMaxRequestBytes);
  // No BDP probes while the unix socket is the only listener: there is no bandwidth-delay
  // product to learn there, and each probe is a PING (one on a connection's first request,
  // then about one a second) the client wakes to answer and rauhad to read (measured: ~3.5
  // fewer context switches in rauhad per `rauha version`, eval/bench/README.md). Over TCP they
  // size the window of the clients' uploads, so they stay on there.
  if (tcp->empty()) builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  // A request with a string field that is not UTF-8: INVALID_ARGUMENT naming the field.
  rauha::CaptureInvalidUtf8ParseErrors();
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(rauha::InvalidUtf8InterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  builder.RegisterService(&zone_service);
  builder.RegisterService(&sandbox_service);
  builder.RegisterService(&image_service);
  builder.RegisterService(&container_service);
  builder.RegisterService(&audit_service);
  builder.RegisterService(&secret_service);
  builder.RegisterService(&process_service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::string where = config.socket_path;
    for (const auto& l : *tcp) where += ", " + l.address;
    return Fail("cannot listen on " + where + " (in use, or an address not on this host?)");
  }
  for (size_t i = 0; i < tcp->size(); ++i) {
    // gRPC starts when at least one port binds; a --listen that did not is still an error.
    if (tcp_ports[i] == 0) {
      server->Shutdown();
      return Fail("cannot listen on " + (*tcp)[i].address +
                  " (in use, or an address not on this host?)");
    }
  }
  if (auto st = private_socket->Publish(); !st.ok()) {
    server->Shutdown();
    return Fail("cannot put the socket in place: " + rauha::ToStd(st.message()));
  }
  for (const char* service : {"rauha.zone.v1.ZoneService", "rauha.sandbox.v1.SandboxService"}) {
    server->GetHealthCheckService()->SetServingStatus(service, true);
  }
  std::fprintf(stderr, "rauhad %s: listening on %s (cgroups: %s)\n", RAUHA_VERSION,
               config.socket_path.c_str(), std::string(rauha::ToString(layout->mode)).c_str());
  for (size_t i = 0; i < tcp->size(); ++i) {
    const auto& l = (*tcp)[i];
    const std::string bound =
        l.address.substr(0, l.address.rfind(':') + 1) + std::to_string(tcp_ports[i]);
    std::fprintf(stderr, "rauhad: listening on tcp %s (%s)\n", bound.c_str(),
                 l.tls ? "mutual TLS" : "insecure, loopback");
    if (!l.tls) {
      std::fprintf(stderr,
                   "rauhad: WARNING: %s has no TLS and no authentication (--insecure-loopback): "
                   "every local user and process can drive this rauhad, which runs as root\n",
                   bound.c_str());
    }
  }

  int sig = 0;
  while (::sigwait(&stop_signals, &sig) != 0) {
  }
  const auto stop_start = std::chrono::steady_clock::now();
  std::fprintf(stderr, "rauhad: signal %d, stopping zones\n", sig);
  // The pool first (its zones and those waiting for deletion go), then the zones: that ends
  // running tasks, so in-flight RunSandbox calls return.
  pool.Stop();
  zones.StopAll();
  // After the zones stopped: the last counts of each are written.
  egress_counters.Stop();
  (*network)->Shutdown();
  // Watchers end their streams now rather than at the deadline below. The deadline is short:
  // every call that matters has ended with the zones, and gRPC's graceful shutdown otherwise
  // waits for each client to close its connection (one that stopped reading never does).
  events.Close();
  shim_endpoint.Shutdown();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  containers.Shutdown();
  runner.Stop();
  processes.Stop();
  (void)(*cgroups)->RemoveParent();
  ::unlink(config.socket_path.c_str());
  recorder.DaemonStop(sig);
  server.reset();
  // Releasing gRPC's last library reference runs grpc_shutdown(), which joins gRPC's executor
  // threads; one of them sleeps in epoll_wait with a 10 s timeout, and under load it was
  // caught there (stop took 10-36 s). Everything of ours is stopped above and the destructors
  // below close the store and the audit log, so the reference is left for the exit to drop.
  (void)builder_owner.release();
  std::fprintf(stderr, "rauhad: stopped\n");
  std::fprintf(stderr, "rauhad: stopped (%lld ms after the signal)\n",
               static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - stop_start)
                                          .count()));
  return 0;
}
