#include "rauhad/linux/bpf/enforcer.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "enforcer.skel.h"
#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/strcat.h"
#include "rauhad/linux/bpf/event_format.h"
#include "rauhad/linux/bpf/libbpf_log.h"
#include "rauhad/linux/bpf/pin_dir.h"
#include "rauhad/linux/bpf/pinned_link.h"
#include "rauhad/linux/bpf/zone_map.h"

namespace rauha::bpf {
namespace {

bool IsCgroupProgram(bpf_program* prog) {
  switch (bpf_program__type(prog)) {
    case BPF_PROG_TYPE_CGROUP_SOCK_ADDR:
    case BPF_PROG_TYPE_CGROUP_SOCK:
    case BPF_PROG_TYPE_CGROUP_DEVICE:
    case BPF_PROG_TYPE_CGROUP_SYSCTL:
      return true;
    default:
      return false;
  }
}

int64_t RealtimeOffsetNs() {
  timespec rt{}, mono{};
  clock_gettime(CLOCK_REALTIME, &rt);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  return (static_cast<int64_t>(rt.tv_sec) - mono.tv_sec) * 1000000000LL +
         (static_cast<int64_t>(rt.tv_nsec) - mono.tv_nsec);
}

// The program libbpf names in "prog 'NAME': BPF program load failed: ..." / "... failed to load".
std::string FailedProgram(const std::vector<std::string>& lines) {
  for (const std::string& l : lines) {
    size_t p = l.find("prog '");
    if (p == std::string::npos) continue;
    size_t end = l.find('\'', p + 6);
    if (end == std::string::npos) continue;
    if (l.find("failed", end) == std::string::npos) continue;
    return l.substr(p + 6, end - p - 6);
  }
  return "";
}

// The verifier's last words ("R1 invalid mem access 'scalar'") from libbpf's load log, or "".
std::string VerifierVerdict(const std::vector<std::string>& lines) {
  std::string last;
  for (const std::string& block : lines) {
    size_t end = block.find("-- END PROG LOAD LOG --");
    if (end == std::string::npos) continue;
    std::string log = block.substr(0, end);
    while (!log.empty() && (log.back() == '\n' || log.back() == ' ')) log.pop_back();
    size_t nl = log.rfind('\n');
    last = nl == std::string::npos ? log : log.substr(nl + 1);
  }
  return last;
}

// Landlock denials are observable where the kernel has landlock_log_denial (6.15+, Landlock
// audit) and its request type in BTF.
bool LandlockObservable(std::string* why_not) {
  btf* vmlinux = btf__load_vmlinux_btf();
  if (vmlinux == nullptr) {
    *why_not = StrCat("no kernel BTF (", std::strerror(errno), ")");
    return false;
  }
  bool type = btf__find_by_name_kind(vmlinux, "landlock_request", BTF_KIND_STRUCT) >= 0;
  bool func = btf__find_by_name_kind(vmlinux, "landlock_log_denial", BTF_KIND_FUNC) >= 0;
  btf__free(vmlinux);
  if (!type || !func) {
    *why_not =
        "this kernel has no landlock_log_denial (Landlock audit, Linux 6.15+): Landlock "
        "denials are enforced but not reported";
    return false;
  }
  return true;
}

// Names this build's BPF object: maps pinned by another object are never reused, even when
// their sizes happen to match (a field moved inside struct rauha_zone).
std::string ObjectHash() {
  size_t size = 0;
  const auto* bytes = static_cast<const unsigned char*>(rauha_enforcer__elf_bytes(&size));
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (size_t i = 0; i < size; ++i) {
    h ^= bytes[i];
    h *= 1099511628211ull;
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

// The maps whose contents must outlive a rauhad: zone rules, counters, the events not yet
// read, the global counters (.bss). Scratch space and constants are made afresh.
std::vector<std::pair<std::string, bpf_map*>> StatefulMaps(rauha_enforcer* skel) {
  return {{"zones", skel->maps.rauha_zones},
          {"counters", skel->maps.rauha_counters},
          {"events", skel->maps.rauha_events},
          {"bss", skel->maps.bss}};
}

size_t RingBytes(size_t want) {
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t n = page;
  while (n < want) n <<= 1;
  return n;
}

// Everything of the loaded object. Shared by the Enforcer and its ZoneAttachments, so a zone
// detaches cleanly even if it outlives the Enforcer.
struct Core {
  ~Core() {
    if (rb != nullptr) ring_buffer__free(rb);
    if (pinned() && ListPins(ZonesDir()).empty()) {
      // No zone is pinned any more: nothing of this instance needs to outlive it.
      for (bpf_link* l : global_links) RemoveLink(l);
      global_links.clear();
      RemoveInstanceDir(pin_root);
    }
    // Pinned links stay (their zones live on); the others end with their fd.
    for (bpf_link* l : global_links) bpf_link__destroy(l);
    if (skel != nullptr) rauha_enforcer__destroy(skel);
  }

  bool pinned() const { return !pin_root.empty(); }
  std::string ZonesDir() const { return pin_root + "/zones"; }
  std::string ZoneDir(uint64_t id) const { return StrCat(ZonesDir(), "/", id); }

  // Consumes everything committed now, delivering to the sink in order.
  void Consume() {
    std::lock_guard<std::mutex> lock(rb_mu);
    offset_ns = RealtimeOffsetNs();
    ring_buffer__consume(rb);
  }

  static int OnEvent(void* ctx, void* data, size_t size) {
    auto* core = static_cast<Core*>(ctx);
    if (size < sizeof(rauha_event)) return 0;
    rauha_event e;
    std::memcpy(&e, data, sizeof(e));
    std::string zone, target;
    {
      std::lock_guard<std::mutex> lock(core->zones_mu);
      auto it = core->zone_names.find(e.cgroup_id);
      if (it != core->zone_names.end()) zone = it->second;
      if (e.target_cgroup_id != 0) {
        auto t = core->zone_names.find(e.target_cgroup_id);
        if (t != core->zone_names.end()) target = t->second;
      }
    }
    if (core->sink) core->sink(FormatEvent(e, std::move(zone), std::move(target), core->offset_ns));
    return 0;
  }

  rauha_enforcer* skel = nullptr;
  ring_buffer* rb = nullptr;
  std::vector<bpf_link*> global_links;

  std::mutex rb_mu;  // ring_buffer__consume, sink, offset_ns
  std::function<void(EnforcementEvent)> sink;
  int64_t offset_ns = 0;

  std::mutex zones_mu;
  // Kept after a zone detaches: its last events may still be in the buffer.
  std::map<uint64_t, std::string> zone_names;
  std::set<uint64_t> attached;   // cgroup ids with a live ZoneAttachment
  std::set<uint64_t> adoptable;  // pinned by an earlier rauhad, not attached again yet

  std::string pin_root;  // "": nothing pinned
};

class ZoneAttachmentImpl : public ZoneAttachment {
 public:
  ZoneAttachmentImpl(std::shared_ptr<Core> core, uint64_t id) : core_(std::move(core)), id_(id) {}
  ~ZoneAttachmentImpl() override {
    if (keep_ && core_->pinned()) {
      for (bpf_link* l : links_) bpf_link__destroy(l);  // closes our fd; the pin holds the link
    } else {
      for (bpf_link* l : links_) RemoveLink(l);
      if (core_->pinned()) (void)RemovePinTree(core_->ZoneDir(id_));
      bpf_map_delete_elem(bpf_map__fd(core_->skel->maps.rauha_zones), &id_);
      bpf_map_delete_elem(bpf_map__fd(core_->skel->maps.rauha_counters), &id_);
    }
    std::lock_guard<std::mutex> lock(core_->zones_mu);
    core_->attached.erase(id_);
  }
  void KeepPinned() override { keep_ = true; }
  int adopted_links() const override { return adopted_; }

  std::vector<bpf_link*> links_;
  int adopted_ = 0;

 private:
  bool keep_ = false;
  std::shared_ptr<Core> core_;
  uint64_t id_;
};

class EnforcerImpl : public Enforcer {
 public:
  EnforcerImpl(std::shared_ptr<Core> core, bool deliver_now) : core_(std::move(core)) {
    if (deliver_now) StartConsumer();
  }
  ~EnforcerImpl() override {
    stop_.store(true);
    if (consumer_.joinable()) consumer_.join();
  }

  bool lsm_loaded() const override { return lsm_loaded_; }
  std::string lsm_detail() const override { return lsm_detail_; }
  bool landlock_observed() const override { return landlock_observed_; }
  std::string landlock_detail() const override { return landlock_detail_; }
  std::string pin_detail() const override { return pin_detail_; }

  absl::StatusOr<std::unique_ptr<ZoneAttachment>> AttachZone(const std::string& cgroup_v2_path,
                                                             const ZoneRules& rules) override;
  absl::Status UpdateZone(const ZoneRules& rules) override;
  void FinishAdoption() override;
  void SetSink(std::function<void(EnforcementEvent)> sink) override {
    std::lock_guard<std::mutex> lock(core_->rb_mu);
    core_->sink = std::move(sink);
  }
  void Drain() override { core_->Consume(); }
  ZoneCounters Counters(uint64_t cgroup_id) const override;
  uint64_t TotalLost() const override {
    return __atomic_load_n(&core_->skel->bss->rauha_total_lost, __ATOMIC_RELAXED);
  }

  bool lsm_loaded_ = false;
  std::string lsm_detail_;
  bool landlock_observed_ = false;
  std::string landlock_detail_;
  std::string pin_detail_;

 private:
  void StartConsumer() {
    if (!consumer_.joinable()) consumer_ = std::thread([this] { ConsumerLoop(); });
  }
  void ConsumerLoop() {
    int efd = ring_buffer__epoll_fd(core_->rb);
    while (!stop_.load()) {
      epoll_event ev;
      // Producers wake us only past a fill threshold; the timeout bounds event latency.
      ::epoll_wait(efd, &ev, 1, 10);
      core_->Consume();
    }
  }

  std::shared_ptr<Core> core_;
  std::atomic<bool> stop_{false};
  std::thread consumer_;
};

absl::StatusOr<std::unique_ptr<ZoneAttachment>> EnforcerImpl::AttachZone(
    const std::string& cgroup_v2_path, const ZoneRules& rules) {
  UniqueFd dir(::open(cgroup_v2_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return ErrnoStatus(errno, StrCat("open ", cgroup_v2_path));
  struct statfs sfs {};
  struct stat st {};
  if (::fstatfs(dir.get(), &sfs) < 0) return ErrnoStatus(errno, StrCat("statfs ", cgroup_v2_path));
  if (sfs.f_type != CGROUP2_SUPER_MAGIC)
    return absl::InvalidArgumentError(
        StrCat(cgroup_v2_path,
               " is not a cgroup v2 directory: the eBPF enforcer attaches to "
               "the zone's cgroup2 (unified) directory"));
  if (::fstat(dir.get(), &st) < 0) return ErrnoStatus(errno, StrCat("stat ", cgroup_v2_path));
  uint64_t id = st.st_ino;
  if (rules.cgroup_id != 0 && rules.cgroup_id != id)
    return absl::InvalidArgumentError(StrCat("zone ", rules.zone_id, ": cgroup id ",
                                             rules.cgroup_id, " is not that of ", cgroup_v2_path,
                                             " (", id, ")"));
  RAUHA_ASSIGN_OR_RETURN(std::unique_ptr<rauha_zone> value, CompileZone(rules));

  bool adopt = false;
  {
    std::lock_guard<std::mutex> lock(core_->zones_mu);
    if (core_->attached.count(id))
      return absl::AlreadyExistsError(
          StrCat("cgroup ", cgroup_v2_path, " (id ", id, ") already has a zone attached"));
    core_->attached.insert(id);
    adopt = core_->adoptable.erase(id) > 0;
    core_->zone_names[id] = rules.zone_id;
  }
  // From here the attachment's destructor undoes everything, including on errors below.
  auto attachment = std::make_unique<ZoneAttachmentImpl>(core_, id);
  // Unpinned, an entry can only be a leftover of this process's own bug: refuse it. Pinned,
  // an adopted zone's entry is there and is replaced by the rules compiled now.
  int zones_fd = bpf_map__fd(core_->skel->maps.rauha_zones);
  if (bpf_map_update_elem(zones_fd, &id, value.get(), core_->pinned() ? BPF_ANY : BPF_NOEXIST) < 0)
    return ErrnoStatus(errno, StrCat("adding zone ", rules.zone_id, " to the BPF zone map"));
  // An adopted zone keeps its counts.
  rauha_counters zero{};
  int counters_fd = bpf_map__fd(core_->skel->maps.rauha_counters);
  if (bpf_map_update_elem(counters_fd, &id, &zero, adopt ? BPF_NOEXIST : BPF_ANY) < 0 &&
      errno != EEXIST)
    return ErrnoStatus(errno, StrCat("adding zone ", rules.zone_id, " to the BPF counter map"));

  std::string zone_dir = core_->pinned() ? core_->ZoneDir(id) : "";
  if (!zone_dir.empty() && ::mkdir(zone_dir.c_str(), 0700) != 0 && errno != EEXIST)
    return ErrnoStatus(errno, StrCat("mkdir ", zone_dir));
  std::set<std::string> names;
  bpf_program* prog;
  bpf_object__for_each_program(prog, core_->skel->obj) {
    if (!IsCgroupProgram(prog)) continue;
    std::string pin = zone_dir.empty() ? "" : StrCat(zone_dir, "/", bpf_program__name(prog));
    names.insert(bpf_program__name(prog));
    bpf_link* link = nullptr;
    if (adopt) {
      absl::StatusOr<bpf_link*> adopted = AdoptCgroupLink(pin, prog, id);
      if (!adopted.ok()) {
        std::fprintf(stderr, "rauhad: zone %s: %s; attaching afresh\n", rules.zone_id.c_str(),
                     std::string(adopted.status().message()).c_str());
      } else if (*adopted != nullptr) {
        link = *adopted;
        ++attachment->adopted_;
      }
    }
    if (link == nullptr) {
      link = bpf_program__attach_cgroup(prog, dir.get());
      if (link == nullptr)
        return ErrnoStatus(
            errno, StrCat("attaching ", bpf_program__section_name(prog), " to ", cgroup_v2_path));
      attachment->links_.push_back(link);
      if (!pin.empty()) {
        ::unlink(pin.c_str());  // a stale pin AdoptCgroupLink did not take
        if (int err = bpf_link__pin(link, pin.c_str()); err != 0)
          return ErrnoStatus(-err, StrCat("pinning ", pin));
      }
    } else {
      attachment->links_.push_back(link);
    }
  }
  // Pins of programs this object no longer has.
  if (adopt) {
    for (const std::string& name : ListPins(zone_dir))
      if (!names.count(name)) RemovePinnedLink(StrCat(zone_dir, "/", name));
  }
  return std::unique_ptr<ZoneAttachment>(std::move(attachment));
}

void EnforcerImpl::FinishAdoption() {
  if (core_->pinned()) {
    std::lock_guard<std::mutex> lock(core_->zones_mu);
    std::string ids;
    for (uint64_t id : core_->adoptable) {
      std::string dir = core_->ZoneDir(id);
      for (const std::string& name : ListPins(dir)) RemovePinnedLink(StrCat(dir, "/", name));
      (void)RemovePinTree(dir);
      ids += StrCat(" ", id);
    }
    if (!ids.empty())
      std::fprintf(stderr,
                   "rauhad: removed the pinned BPF links of %zu zones that did not survive "
                   "(cgroup ids%s)\n",
                   core_->adoptable.size(), ids.c_str());
    core_->adoptable.clear();
    // Entries of no attached zone: unclaimed zones, or a crash between a zone's map entry and
    // its first pin.
    for (bpf_map* map : {core_->skel->maps.rauha_zones, core_->skel->maps.rauha_counters}) {
      int fd = bpf_map__fd(map);
      std::vector<uint64_t> stale;
      uint64_t key = 0, next = 0;
      bool first = true;
      while (bpf_map_get_next_key(fd, first ? nullptr : &key, &next) == 0) {
        first = false;
        key = next;
        if (!core_->attached.count(key)) stale.push_back(key);
      }
      for (uint64_t k : stale) bpf_map_delete_elem(fd, &k);
    }
  }
  StartConsumer();
}

absl::Status EnforcerImpl::UpdateZone(const ZoneRules& rules) {
  RAUHA_ASSIGN_OR_RETURN(std::unique_ptr<rauha_zone> value, CompileZone(rules));
  uint64_t id = rules.cgroup_id;
  if (bpf_map_update_elem(bpf_map__fd(core_->skel->maps.rauha_zones), &id, value.get(), BPF_EXIST) <
      0) {
    int err = errno;
    if (err == ENOENT)
      return absl::NotFoundError(StrCat("zone ", rules.zone_id, " (cgroup id ", id,
                                        ") is not attached to the eBPF enforcer"));
    return ErrnoStatus(err, StrCat("updating zone ", rules.zone_id, " in the BPF zone map"));
  }
  std::lock_guard<std::mutex> lock(core_->zones_mu);
  core_->zone_names[id] = rules.zone_id;
  return absl::OkStatus();
}

ZoneCounters EnforcerImpl::Counters(uint64_t cgroup_id) const {
  ZoneCounters out;
  rauha_counters c{};
  if (bpf_map_lookup_elem(bpf_map__fd(core_->skel->maps.rauha_counters), &cgroup_id, &c) < 0)
    return out;
  for (uint16_t h = 0; h < RAUHA_HOOK_COUNT; ++h) {
    if (c.denied[h] == 0) continue;
    out.hooks.push_back({std::string(HookName(h)), std::string(HookLayer(h)), c.denied[h]});
  }
  out.lost = c.lost;
  return out;
}

// Pins the global links that are new (an adopted one is pinned already; a new one replaces
// the pin of an older link, which goes now that its successor is attached) and the programs
// in use, and removes the pins of hooks no longer attached. A link that cannot be pinned (a
// kprobe on a kernel without BPF perf links) still works: it ends with rauhad.
void PinGlobals(const Core& core, const std::string& global_dir,
                const std::map<std::string, bpf_link*>& globals,
                const std::set<bpf_link*>& adopted) {
  for (const auto& [name, link] : globals) {
    if (adopted.count(link)) continue;
    std::string pin = StrCat(global_dir, "/", name);
    RemovePinnedLink(pin);
    if (int err = bpf_link__pin(link, pin.c_str()); err != 0)
      std::fprintf(stderr, "rauhad: pinning %s: %s (this hook ends with rauhad)\n", pin.c_str(),
                   std::strerror(-err));
  }
  for (const std::string& name : ListPins(global_dir))
    if (!globals.count(name)) RemovePinnedLink(StrCat(global_dir, "/", name));

  std::string progs_dir = core.pin_root + "/progs";
  if (::mkdir(progs_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    std::fprintf(stderr, "rauhad: mkdir %s: %s\n", progs_dir.c_str(), std::strerror(errno));
    return;
  }
  std::set<std::string> names;
  bpf_program* prog;
  bpf_object__for_each_program(prog, core.skel->obj) {
    std::string name = bpf_program__name(prog);
    auto g = globals.find(name);
    // In use: attached to each zone, or through a global link (loaded is not enough: the
    // Landlock observer loads on kernels that cannot attach it).
    if (!bpf_program__autoload(prog) || (!IsCgroupProgram(prog) && g == globals.end())) continue;
    names.insert(name);
    std::string pin = StrCat(progs_dir, "/", name);
    absl::Status st = g != globals.end() && adopted.count(g->second)
                          ? PinProgramOfLink(bpf_link__fd(g->second), pin)
                          : PinProgram(bpf_program__fd(prog), pin);
    if (!st.ok()) std::fprintf(stderr, "rauhad: %s\n", std::string(st.message()).c_str());
  }
  for (const std::string& name : ListPins(progs_dir))
    if (!names.count(name)) ::unlink(StrCat(progs_dir, "/", name).c_str());
}

}  // namespace

absl::StatusOr<std::unique_ptr<Enforcer>> Enforcer::Load(const Options& options) {
  InstallLibbpfLog();
  auto core = std::make_shared<Core>();
  std::string pin_detail = "not pinned: the zones' programs end with rauhad";
  if (!options.pin_dir.empty()) {
    std::string dir = std::filesystem::path(options.pin_dir).lexically_normal().string();
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    if (absl::Status st = PrepareBpffsDir(dir); st.ok()) {
      core->pin_root = dir;
    } else {
      pin_detail = StrCat("not pinned (", st.message(), "): the zones' programs end with rauhad");
    }
  }
  std::string maps_dir = core->pinned() ? StrCat(core->pin_root, "/maps-", ObjectHash()) : "";
  if (!maps_dir.empty() && ::mkdir(maps_dir.c_str(), 0700) != 0 && errno != EEXIST)
    return ErrnoStatus(errno, StrCat("mkdir ", maps_dir));
  bool maps_reused = false;
  bool try_lsm = options.try_lsm;
  std::string lsm_detail = try_lsm ? "" : "LSM programs not tried (disabled by options)";
  std::vector<std::string> lsm_dropped;  // single hooks this kernel refused
  std::string landlock_detail;
  bool try_landlock = options.observe_landlock && LandlockObservable(&landlock_detail);
  if (!options.observe_landlock) landlock_detail = "Landlock observer disabled by options";
  std::set<std::string> disabled;
  size_t ring_bytes = RingBytes(options.ring_buffer_bytes);

  // Each failed load names one program; drop it (or every LSM program when the kernel refuses
  // trampolines altogether) and load again. A cgroup program failing is fatal.
  for (int attempt = 0;; ++attempt) {
    LibbpfCapture capture;
    rauha_enforcer* skel = rauha_enforcer__open();
    if (skel == nullptr) return ErrnoStatus(errno, "opening the eBPF enforcer object");
    bpf_map__set_max_entries(skel->maps.rauha_events, ring_bytes);
    skel->rodata->rauha_wakeup_bytes = ring_bytes / 4;
    // libbpf reuses a pinned map it finds at the pin path, and pins the ones it makes.
    maps_reused = !maps_dir.empty();
    for (auto& [name, map] : StatefulMaps(skel)) {
      if (maps_dir.empty()) break;
      std::string path = StrCat(maps_dir, "/", name);
      if (!PinnedMapReusable(map, path)) maps_reused = false;
      bpf_map__set_pin_path(map, path.c_str());
    }
    bpf_program* prog;
    bpf_object__for_each_program(prog, skel->obj) {
      std::string name = bpf_program__name(prog);
      bpf_prog_type type = bpf_program__type(prog);
      if (type == BPF_PROG_TYPE_LSM)
        bpf_program__set_autoload(prog, try_lsm && !disabled.count(name));
      else if (type == BPF_PROG_TYPE_KPROBE)
        bpf_program__set_autoload(prog, try_landlock);
    }
    int err = rauha_enforcer__load(skel);
    if (err == 0) {
      core->skel = skel;
      break;
    }
    if (const char* v = std::getenv("RAUHA_BPF_VERBOSE"); v != nullptr && *v == '1')
      for (const std::string& l : capture.lines()) std::fprintf(stderr, "libbpf: %s\n", l.c_str());
    std::string failed = FailedProgram(capture.lines());
    bpf_program* fp =
        failed.empty() ? nullptr : bpf_object__find_program_by_name(skel->obj, failed.c_str());
    bpf_prog_type type = fp ? bpf_program__type(fp) : BPF_PROG_TYPE_UNSPEC;
    std::string section = fp ? bpf_program__section_name(fp) : failed;
    rauha_enforcer__destroy(skel);
    std::string why = StrCat("BPF_PROG_LOAD ", section, ": ", std::strerror(-err));
    if (std::string verdict = VerifierVerdict(capture.lines()); !verdict.empty())
      why += StrCat(" (verifier: ", verdict, ")");
    if (type == BPF_PROG_TYPE_LSM && attempt < 32) {
      if (err == -EPERM || err == -EOPNOTSUPP || err == -524 /* ENOTSUPP */) {
        try_lsm = false;
        lsm_detail = StrCat(why, " (this kernel refuses LSM programs)");
      } else {
        disabled.insert(failed);
        lsm_dropped.push_back(why);
      }
      continue;
    }
    if (type == BPF_PROG_TYPE_KPROBE && attempt < 32) {
      try_landlock = false;
      landlock_detail = why;
      continue;
    }
    std::string log;
    for (const std::string& l : capture.lines()) log += StrCat("\n  ", l);
    return absl::InternalError(
        StrCat("loading the eBPF enforcer: ", why, "; cgroup-bpf enforcement is unavailable", log));
  }

  // Global programs. An LSM attach failure (e.g. bpf missing from lsm=) drops them all. Pinned
  // links of an earlier rauhad are kept when they run this very object on these very maps
  // (the hash in the maps' directory names the object): no moment with two programs on one
  // hook, none with no program.
  std::string global_dir = core->pinned() ? core->pin_root + "/global" : "";
  for (const std::string& dir : {global_dir, core->ZonesDir()}) {
    if (core->pinned() && ::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      return ErrnoStatus(errno, StrCat("mkdir ", dir));
  }
  auto attach_global = [&](bpf_program* prog, bool* adopted) -> bpf_link* {
    *adopted = false;
    std::string pin = global_dir.empty() ? "" : StrCat(global_dir, "/", bpf_program__name(prog));
    if (!pin.empty() && maps_reused) {
      absl::StatusOr<bpf_link*> old = AdoptGlobalLink(pin, prog);
      if (old.ok() && *old != nullptr) {
        *adopted = true;
        return *old;
      }
    }
    LibbpfCapture quiet;
    return bpf_program__attach(prog);
  };
  int lsm_count = 0;
  std::vector<bpf_link*> lsm_links;
  std::set<bpf_link*> adopted_links;
  std::map<std::string, bpf_link*> globals;  // by program name
  bpf_program* prog;
  bpf_object__for_each_program(prog, core->skel->obj) {
    if (bpf_program__type(prog) != BPF_PROG_TYPE_LSM || !bpf_program__autoload(prog)) continue;
    bool adopted = false;
    bpf_link* link = attach_global(prog, &adopted);
    if (link == nullptr) {
      lsm_detail = StrCat("attaching ", bpf_program__section_name(prog), ": ", std::strerror(errno),
                          " (is bpf in the kernel's lsm= list?)");
      for (bpf_link* l : lsm_links) RemoveLink(l);
      lsm_links.clear();
      adopted_links.clear();
      globals.clear();
      lsm_count = 0;
      break;
    }
    if (adopted) adopted_links.insert(link);
    lsm_links.push_back(link);
    globals[bpf_program__name(prog)] = link;
    ++lsm_count;
  }
  core->global_links = lsm_links;
  bool landlock = false;
  if (try_landlock) {
    bool adopted = false;
    bpf_link* link = attach_global(core->skel->progs.rauha_landlock, &adopted);
    if (link == nullptr) {
      int err = errno;
      struct stat st {};
      bool kprobes = ::stat("/sys/bus/event_source/devices/kprobe", &st) == 0;
      landlock_detail =
          kprobes ? StrCat("attaching kprobe/landlock_log_denial: ", std::strerror(err))
                  : "this kernel has no kprobes (CONFIG_KPROBES): Landlock denials are enforced "
                    "but not reported";
    } else {
      if (adopted) adopted_links.insert(link);
      core->global_links.push_back(link);
      globals[bpf_program__name(core->skel->progs.rauha_landlock)] = link;
      landlock = true;
      landlock_detail = "kprobe on landlock_log_denial";
    }
  }
  if (core->pinned()) {
    PinGlobals(*core, global_dir, globals, adopted_links);
    for (const std::string& name : ListPins(core->pin_root)) {
      // The maps of another object: its programs (if any still run) hold them until the zones'
      // links move to the programs loaded now.
      if (name.rfind("maps-", 0) == 0 && core->pin_root + "/" + name != maps_dir)
        (void)RemovePinTree(core->pin_root + "/" + name);
    }
    std::lock_guard<std::mutex> lock(core->zones_mu);
    for (const std::string& name : ListPins(core->ZonesDir())) {
      char* end = nullptr;
      uint64_t id = std::strtoull(name.c_str(), &end, 10);
      if (end != nullptr && *end == '\0' && id != 0) {
        core->adoptable.insert(id);
      } else {
        (void)RemovePinTree(core->ZonesDir() + "/" + name);
      }
    }
    pin_detail =
        StrCat("pinned in ", core->pin_root, maps_reused ? "; maps, global links and " : "; ",
               core->adoptable.size(), " zones' links to adopt from an earlier rauhad");
  }

  core->rb = ring_buffer__new(bpf_map__fd(core->skel->maps.rauha_events), &Core::OnEvent,
                              core.get(), nullptr);
  if (core->rb == nullptr) return ErrnoStatus(errno, "creating the BPF ring buffer consumer");

  auto enforcer = std::make_unique<EnforcerImpl>(core, /*deliver_now=*/!core->pinned());
  enforcer->lsm_loaded_ = lsm_count > 0;
  if (lsm_count > 0) {
    lsm_detail = StrCat(lsm_count, " LSM hooks");
    if (!lsm_dropped.empty()) {
      lsm_detail += "; not loaded:";
      for (const std::string& d : lsm_dropped) lsm_detail += StrCat(" ", d, ";");
      lsm_detail.pop_back();
    }
  } else if (lsm_detail.empty()) {
    lsm_detail = "no LSM program loaded";
    for (const std::string& d : lsm_dropped) lsm_detail += StrCat("; ", d);
  }
  enforcer->lsm_detail_ = lsm_detail;
  enforcer->landlock_observed_ = landlock;
  enforcer->landlock_detail_ = landlock_detail;
  enforcer->pin_detail_ = pin_detail;
  return std::unique_ptr<Enforcer>(std::move(enforcer));
}

}  // namespace rauha::bpf
