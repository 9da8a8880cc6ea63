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
    for (bpf_link* l : global_links) bpf_link__destroy(l);
    if (skel != nullptr) rauha_enforcer__destroy(skel);
  }

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
};

class ZoneAttachmentImpl : public ZoneAttachment {
 public:
  ZoneAttachmentImpl(std::shared_ptr<Core> core, uint64_t id) : core_(std::move(core)), id_(id) {}
  ~ZoneAttachmentImpl() override {
    for (bpf_link* l : links_) bpf_link__destroy(l);
    bpf_map_delete_elem(bpf_map__fd(core_->skel->maps.rauha_zones), &id_);
    bpf_map_delete_elem(bpf_map__fd(core_->skel->maps.rauha_counters), &id_);
  }
  std::vector<bpf_link*> links_;

 private:
  std::shared_ptr<Core> core_;
  uint64_t id_;
};

class EnforcerImpl : public Enforcer {
 public:
  explicit EnforcerImpl(std::shared_ptr<Core> core) : core_(std::move(core)) {
    consumer_ = std::thread([this] { ConsumerLoop(); });
  }
  ~EnforcerImpl() override {
    stop_.store(true);
    consumer_.join();
  }

  bool lsm_loaded() const override { return lsm_loaded_; }
  std::string lsm_detail() const override { return lsm_detail_; }
  bool landlock_observed() const override { return landlock_observed_; }
  std::string landlock_detail() const override { return landlock_detail_; }

  absl::StatusOr<std::unique_ptr<ZoneAttachment>> AttachZone(const std::string& cgroup_v2_path,
                                                             const ZoneRules& rules) override;
  absl::Status UpdateZone(const ZoneRules& rules) override;
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

 private:
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

  int zones_fd = bpf_map__fd(core_->skel->maps.rauha_zones);
  if (bpf_map_update_elem(zones_fd, &id, value.get(), BPF_NOEXIST) < 0) {
    int err = errno;
    if (err == EEXIST)
      return absl::AlreadyExistsError(
          StrCat("cgroup ", cgroup_v2_path, " (id ", id, ") already has a zone attached"));
    return ErrnoStatus(err, StrCat("adding zone ", rules.zone_id, " to the BPF zone map"));
  }
  {
    std::lock_guard<std::mutex> lock(core_->zones_mu);
    core_->zone_names[id] = rules.zone_id;
  }
  // From here the attachment's destructor undoes everything, including on errors below.
  auto attachment = std::make_unique<ZoneAttachmentImpl>(core_, id);
  rauha_counters zero{};
  if (bpf_map_update_elem(bpf_map__fd(core_->skel->maps.rauha_counters), &id, &zero, BPF_ANY) < 0)
    return ErrnoStatus(errno, StrCat("adding zone ", rules.zone_id, " to the BPF counter map"));
  bpf_program* prog;
  bpf_object__for_each_program(prog, core_->skel->obj) {
    if (!IsCgroupProgram(prog)) continue;
    bpf_link* link = bpf_program__attach_cgroup(prog, dir.get());
    if (link == nullptr)
      return ErrnoStatus(
          errno, StrCat("attaching ", bpf_program__section_name(prog), " to ", cgroup_v2_path));
    attachment->links_.push_back(link);
  }
  return std::unique_ptr<ZoneAttachment>(std::move(attachment));
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

}  // namespace

absl::StatusOr<std::unique_ptr<Enforcer>> Enforcer::Load(const Options& options) {
  InstallLibbpfLog();
  auto core = std::make_shared<Core>();
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

  // Global programs. An LSM attach failure (e.g. bpf missing from lsm=) drops them all.
  int lsm_count = 0;
  std::vector<bpf_link*> lsm_links;
  bpf_program* prog;
  bpf_object__for_each_program(prog, core->skel->obj) {
    if (bpf_program__type(prog) != BPF_PROG_TYPE_LSM || !bpf_program__autoload(prog)) continue;
    LibbpfCapture quiet;
    bpf_link* link = bpf_program__attach(prog);
    if (link == nullptr) {
      lsm_detail = StrCat("attaching ", bpf_program__section_name(prog), ": ", std::strerror(errno),
                          " (is bpf in the kernel's lsm= list?)");
      for (bpf_link* l : lsm_links) bpf_link__destroy(l);
      lsm_links.clear();
      lsm_count = 0;
      break;
    }
    lsm_links.push_back(link);
    ++lsm_count;
  }
  core->global_links = lsm_links;
  bool landlock = false;
  if (try_landlock) {
    LibbpfCapture quiet;
    bpf_link* link = bpf_program__attach(core->skel->progs.rauha_landlock);
    if (link == nullptr) {
      int err = errno;
      struct stat st {};
      bool kprobes = ::stat("/sys/bus/event_source/devices/kprobe", &st) == 0;
      landlock_detail =
          kprobes ? StrCat("attaching kprobe/landlock_log_denial: ", std::strerror(err))
                  : "this kernel has no kprobes (CONFIG_KPROBES): Landlock denials are enforced "
                    "but not reported";
    } else {
      core->global_links.push_back(link);
      landlock = true;
      landlock_detail = "kprobe on landlock_log_denial";
    }
  }

  core->rb = ring_buffer__new(bpf_map__fd(core->skel->maps.rauha_events), &Core::OnEvent,
                              core.get(), nullptr);
  if (core->rb == nullptr) return ErrnoStatus(errno, "creating the BPF ring buffer consumer");

  auto enforcer = std::make_unique<EnforcerImpl>(core);
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
  return std::unique_ptr<Enforcer>(std::move(enforcer));
}

}  // namespace rauha::bpf
