// Pinned enforcement: what an enforcer whose process is killed (kill -9, no destructor runs)
// leaves enforcing, and what the next Load with the same pin directory adopts. The first
// loader is a forked child that attaches zones and is SIGKILLed, as rauhad would be.
//
// Probes run in a fresh network namespace inside the zone's cgroup: a connect to TEST-NET-1 is
// refused there with EPERM by cgroup/connect4 and fails with ENETUNREACH without it, so no
// packet can leave the machine either way.
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ebpf/rauha_bpf.h"
#include "gtest/gtest.h"
#include "rauha-common/strcat.h"
#include "rauhad/linux/bpf/enforcer.h"
#include "rauhad/linux/bpf/pin_dir.h"
#include "tests/ebpf/ebpf_helpers.h"

namespace rauha::bpf {
namespace {

struct TestZone {
  std::string dir;
  ZoneRules rules;
  std::string Procs() const { return dir + "/cgroup.procs"; }
};

// Everything a test made, removed even when it fails half-way: the loader child, the pins, the
// cgroups, files.
struct Leftovers {
  ~Leftovers() {
    if (child > 0) {
      ::kill(child, SIGKILL);
      ::waitpid(child, nullptr, 0);
    }
    if (!pin_dir.empty()) (void)RemovePinTree(pin_dir);
    for (const std::string& d : cgroups) {
      for (int i = 0; i < 200 && ::rmdir(d.c_str()) < 0 && errno == EBUSY; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (const std::string& f : files) ::unlink(f.c_str());
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) ::rmdir(it->c_str());
  }
  pid_t child = -1;
  std::string pin_dir;
  std::vector<std::string> cgroups, files, dirs;
};

std::string PinDirFor(const char* what) {
  return StrCat(kBpffsMount, "/rauha-ebpf-test-", ::getpid(), "-", what);
}

absl::StatusOr<TestZone> MakeTestZone(const std::string& name, Leftovers* left) {
  RAUHA_ASSIGN_OR_RETURN(std::string own, OwnV2Dir());
  TestZone z;
  z.dir = StrCat(own, "/", name, "-", ::getpid());
  if (::mkdir(z.dir.c_str(), 0755) != 0) return ErrnoStatus(errno, StrCat("mkdir ", z.dir));
  left->cgroups.push_back(z.dir);
  struct stat st {};
  if (::stat(z.dir.c_str(), &st) != 0) return ErrnoStatus(errno, StrCat("stat ", z.dir));
  z.rules.zone_id = name;
  z.rules.cgroup_id = st.st_ino;
  z.rules.capabilities_allowed = ~0ull;
  return z;
}

// Forks a loader that loads an enforcer pinned in `pin_dir`, attaches `zones` and reports;
// then SIGKILLs it. Returns the byte it reported: 'L' loaded with LSM programs, 'C' loaded
// with cgroup programs only; anything else is a failure.
char RunKilledLoader(const std::string& pin_dir, bool try_lsm, const std::vector<TestZone>& zones,
                     Leftovers* left) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return 'p';
  pid_t pid = ::fork();
  if (pid < 0) return 'f';
  if (pid == 0) {
    ::close(fds[0]);
    Enforcer::Options options;
    options.try_lsm = try_lsm;
    options.pin_dir = pin_dir;
    absl::StatusOr<std::unique_ptr<Enforcer>> e = Enforcer::Load(options);
    char verdict = 'E';
    std::vector<std::unique_ptr<ZoneAttachment>> attachments;
    if (e.ok()) {
      verdict = (*e)->lsm_loaded() ? 'L' : 'C';
      for (const TestZone& z : zones) {
        absl::StatusOr<std::unique_ptr<ZoneAttachment>> a = (*e)->AttachZone(z.dir, z.rules);
        if (!a.ok()) {
          std::fprintf(stderr, "loader: %s\n", std::string(a.status().message()).c_str());
          verdict = 'A';
          break;
        }
        attachments.push_back(std::move(*a));
      }
    } else {
      std::fprintf(stderr, "loader: %s\n", std::string(e.status().message()).c_str());
    }
    if (::write(fds[1], &verdict, 1) != 1) ::_exit(1);
    for (;;) ::pause();  // until the SIGKILL: no destructor runs
  }
  left->child = pid;
  ::close(fds[1]);
  char verdict = 'r';
  if (::read(fds[0], &verdict, 1) != 1) verdict = 'r';
  ::close(fds[0]);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  left->child = -1;
  return verdict;
}

int DeniedConnectInFreshNetns() {
  if (::unshare(CLONE_NEWNET) != 0) return 255;
  return ConnectTo(AF_INET, "192.0.2.1", 9);
}

// Ids of the kernel's objects of one kind (links or programs) that exist now.
std::set<uint32_t> LinkIds(bpf_link_type type) {
  std::set<uint32_t> out;
  uint32_t id = 0;
  while (bpf_link_get_next_id(id, &id) == 0) {
    int fd = bpf_link_get_fd_by_id(id);
    if (fd < 0) continue;
    bpf_link_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.type == type) out.insert(id);
    ::close(fd);
  }
  return out;
}

// Ids of the programs pinned below `dir`/progs.
std::set<uint32_t> PinnedProgramIds(const std::string& dir) {
  std::set<uint32_t> out;
  for (const std::string& name : ListPins(dir + "/progs")) {
    int fd = bpf_obj_get(StrCat(dir, "/progs/", name).c_str());
    if (fd < 0) continue;
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) out.insert(info.id);
    ::close(fd);
  }
  return out;
}

bool ProgramExists(uint32_t id) {
  int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

// The kernel frees an unpinned object only after an RCU grace period: wait for it (bounded).
template <typename Pred>
bool Eventually(Pred pred) {
  for (int i = 0; i < 300; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

TEST(EnforcerPinning, KilledLoaderLeavesZonesEnforcedAndTheNextLoadAdoptsThem) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  Leftovers left;
  std::string pin = PinDirFor("cgroup");
  left.pin_dir = pin;
  absl::StatusOr<TestZone> kept = MakeTestZone("pin-kept", &left);
  ASSERT_TRUE(kept.ok()) << kept.status();
  absl::StatusOr<TestZone> gone = MakeTestZone("pin-gone", &left);
  ASSERT_TRUE(gone.ok()) << gone.status();
  uint64_t kept_id = kept->rules.cgroup_id, gone_id = gone->rules.cgroup_id;

  ASSERT_EQ(RunKilledLoader(pin, /*try_lsm=*/false, {*kept, *gone}, &left), 'C');
  // The loader is dead and its fds closed: only the pins hold the links.
  EXPECT_EQ(CountCgroupLinks(kept_id), 9) << "connect4/6, sendmsg4/6, bind4/6, sock_create, dev, "
                                             "sysctl stay attached";
  EXPECT_EQ(CountCgroupLinks(gone_id), 9);
  EXPECT_EQ(ListPins(StrCat(pin, "/zones/", kept_id)).size(), 9u);
  EXPECT_EQ(RunChild(kept->Procs(), DeniedConnectInFreshNetns), EPERM)
      << "a connect in the zone is refused while no enforcer process runs";
  std::set<uint32_t> old_programs = PinnedProgramIds(pin);
  EXPECT_EQ(old_programs.size(), 9u);

  EventLog log;
  std::set<uint32_t> new_programs;
  {
    Enforcer::Options options;
    options.try_lsm = false;
    options.pin_dir = pin;
    absl::StatusOr<std::unique_ptr<Enforcer>> e = Enforcer::Load(options);
    ASSERT_TRUE(e.ok()) << e.status();
    (*e)->SetSink([&log](EnforcementEvent ev) { log.Add(std::move(ev)); });
    EXPECT_NE((*e)->pin_detail().find("2 zones' links to adopt"), std::string::npos)
        << (*e)->pin_detail();
    {
      absl::StatusOr<std::unique_ptr<ZoneAttachment>> a = (*e)->AttachZone(kept->dir, kept->rules);
      ASSERT_TRUE(a.ok()) << a.status();
      EXPECT_EQ((*a)->adopted_links(), 9);
      EXPECT_EQ(CountCgroupLinks(kept_id), 9) << "adopted, not attached twice";
      new_programs = PinnedProgramIds(pin);
      EXPECT_EQ(new_programs.size(), 9u);
      (*e)->FinishAdoption();
      // The zone nobody claimed (deleted while no rauhad ran) is gone from the kernel.
      EXPECT_EQ(CountCgroupLinks(gone_id), 0);
      EXPECT_FALSE(Exists(StrCat(pin, "/zones/", gone_id)));
      EXPECT_TRUE((*e)->Counters(gone_id).hooks.empty());
      EXPECT_TRUE(Eventually([&] {
        for (uint32_t id : old_programs)
          if (ProgramExists(id)) return false;
        return true;
      })) << "the links run the programs loaded now; the old ones are gone";

      EXPECT_EQ(RunChild(kept->Procs(), DeniedConnectInFreshNetns), EPERM);
      (*e)->Drain();
      std::vector<EnforcementEvent> events = log.Take("pin-kept");
      ASSERT_EQ(events.size(), 2u)
          << "the denial made while no enforcer ran waited in the pinned ring buffer";
      for (const EnforcementEvent& ev : events) {
        EXPECT_EQ(ev.hook, "cgroup/connect4");
        EXPECT_EQ(ev.cgroup_id, kept_id);
      }
      ZoneCounters counters = (*e)->Counters(kept_id);
      ASSERT_EQ(counters.hooks.size(), 1u);
      EXPECT_EQ(counters.hooks[0].denied, 2u) << "the counters map was adopted too";
      EXPECT_EQ(counters.lost, 0u);
    }
    // The zone went: its links and pins with it, at once.
    EXPECT_EQ(CountCgroupLinks(kept_id), 0);
    EXPECT_FALSE(Exists(StrCat(pin, "/zones/", kept_id)));
    EXPECT_TRUE(Exists(pin)) << "the instance's maps and programs stay while it runs";
  }
  // No zone left: the enforcer took everything with it.
  EXPECT_FALSE(Exists(pin));
  EXPECT_TRUE(Eventually([&] {
    for (uint32_t id : new_programs)
      if (ProgramExists(id)) return false;
    return true;
  })) << "no program of the instance is left in the kernel";
  left.pin_dir.clear();
}

// A rauhad of another build finds maps laid out differently (here: the zone map with another
// value size): it makes new maps, and the zones' pinned links move to its programs, which read
// the new maps, in one update each.
TEST(EnforcerPinning, MapsThatDoNotFitAreReplacedAndTheLinksMoveToTheNewPrograms) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  Leftovers left;
  std::string pin = PinDirFor("layout");
  left.pin_dir = pin;
  absl::StatusOr<TestZone> z = MakeTestZone("pin-layout", &left);
  ASSERT_TRUE(z.ok()) << z.status();
  uint64_t id = z->rules.cgroup_id;
  ASSERT_EQ(RunKilledLoader(pin, /*try_lsm=*/false, {*z}, &left), 'C');

  std::string maps_dir;
  for (const std::string& name : ListPins(pin))
    if (name.rfind("maps-", 0) == 0) maps_dir = StrCat(pin, "/", name);
  ASSERT_FALSE(maps_dir.empty());
  std::string zones_pin = maps_dir + "/zones";
  ASSERT_EQ(::unlink(zones_pin.c_str()), 0);
  LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
  int other = bpf_map_create(BPF_MAP_TYPE_HASH, "rauha_zones", 8, 16, 4, &opts);
  ASSERT_GE(other, 0) << std::strerror(errno);
  ASSERT_EQ(bpf_obj_pin(other, zones_pin.c_str()), 0) << std::strerror(errno);
  ::close(other);
  std::set<uint32_t> old_programs = PinnedProgramIds(pin);

  {
    Enforcer::Options options;
    options.try_lsm = false;
    options.pin_dir = pin;
    absl::StatusOr<std::unique_ptr<Enforcer>> e = Enforcer::Load(options);
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ((*e)->pin_detail().find("maps, global links"), std::string::npos)
        << "the maps were not adopted: " << (*e)->pin_detail();
    absl::StatusOr<std::unique_ptr<ZoneAttachment>> a = (*e)->AttachZone(z->dir, z->rules);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ((*a)->adopted_links(), 9);
    EXPECT_EQ(CountCgroupLinks(id), 9);
    (*e)->FinishAdoption();
    EXPECT_TRUE(Eventually([&] {
      for (uint32_t p : old_programs)
        if (ProgramExists(p)) return false;
      return true;
    })) << "no link runs a program of the old layout any more";
    EXPECT_EQ(RunChild(z->Procs(), DeniedConnectInFreshNetns), EPERM)
        << "the new programs find the zone in the new zone map";
    int fd = bpf_obj_get(zones_pin.c_str());
    ASSERT_GE(fd, 0);
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    ASSERT_EQ(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
    ::close(fd);
    EXPECT_EQ(info.value_size, sizeof(rauha_zone)) << "the pin now names the new map";
  }
  EXPECT_FALSE(Exists(pin));
  left.pin_dir.clear();
}

TEST(EnforcerPinning, UnpinnedEnforcerPinsNothing) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  Leftovers left;
  absl::StatusOr<TestZone> z = MakeTestZone("pin-none", &left);
  ASSERT_TRUE(z.ok()) << z.status();
  Enforcer::Options options;
  options.try_lsm = false;
  absl::StatusOr<std::unique_ptr<Enforcer>> e = Enforcer::Load(options);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_NE((*e)->pin_detail().find("not pinned"), std::string::npos) << (*e)->pin_detail();
  absl::StatusOr<std::unique_ptr<ZoneAttachment>> a = (*e)->AttachZone(z->dir, z->rules);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)->adopted_links(), 0);
  EXPECT_EQ(CountCgroupLinks(z->rules.cgroup_id), 9);
}

TEST(EnforcerPinning, PinDirOutsideBpffsIsReportedAndNothingIsPinned) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  Leftovers left;
  std::string dir = StrCat("/tmp/rauha-ebpf-notbpffs-", ::getpid());
  left.dirs.push_back(dir);
  Enforcer::Options options;
  options.try_lsm = false;
  options.pin_dir = dir;
  absl::StatusOr<std::unique_ptr<Enforcer>> e = Enforcer::Load(options);
  ASSERT_TRUE(e.ok()) << "an unusable pin directory costs persistence, not enforcement: "
                      << e.status();
  EXPECT_NE((*e)->pin_detail().find("not on a bpf filesystem"), std::string::npos)
      << (*e)->pin_detail();
  EXPECT_TRUE(ListPins(dir).empty());
}

// ---- LSM programs (the qemu guest; skipped where the kernel refuses them) ----------------------

TEST(LsmPinned, KilledLoaderLeavesLsmHooksEnforcingAndTheNextLoadKeepsThem) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  Leftovers left;
  std::string pin = PinDirFor("lsm");
  left.pin_dir = pin;
  absl::StatusOr<TestZone> z = MakeTestZone("pin-lsm", &left);
  ASSERT_TRUE(z.ok()) << z.status();
  std::string writable = StrCat("/tmp/rauha-ebpf-pin-w-", ::getpid());
  std::string other = StrCat("/tmp/rauha-ebpf-pin-o-", ::getpid());
  for (const std::string& d : {writable, other}) {
    ASSERT_EQ(::mkdir(d.c_str(), 0755), 0) << d;
    left.dirs.push_back(d);
  }
  std::string bad = other + "/f";
  std::ofstream(bad) << "x\n";
  left.files.push_back(bad);
  z->rules.writable_paths = {writable};
  auto armed_write = [bad] {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 255;
    int fd = ::open(bad.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd >= 0) ::close(fd);
    return Errno(fd);
  };

  std::set<uint32_t> before = LinkIds(BPF_LINK_TYPE_TRACING);
  char verdict = RunKilledLoader(pin, /*try_lsm=*/true, {*z}, &left);
  if (verdict == 'C') SKIP_OR_FAIL("LSM programs do not load on this kernel");
  ASSERT_EQ(verdict, 'L');
  std::set<uint32_t> pinned = LinkIds(BPF_LINK_TYPE_TRACING);
  for (uint32_t id : before) pinned.erase(id);
  EXPECT_FALSE(pinned.empty());
  EXPECT_EQ(ListPins(pin + "/global").size(), pinned.size()) << "every LSM link is pinned";
  EXPECT_EQ(RunChild(z->Procs(), armed_write), EPERM)
      << "lsm/file_open refuses the write while no enforcer process runs";

  EventLog log;
  {
    Enforcer::Options options;
    options.pin_dir = pin;
    absl::StatusOr<std::unique_ptr<Enforcer>> e = Enforcer::Load(options);
    ASSERT_TRUE(e.ok()) << e.status();
    ASSERT_TRUE((*e)->lsm_loaded()) << (*e)->lsm_detail();
    (*e)->SetSink([&log](EnforcementEvent ev) { log.Add(std::move(ev)); });
    std::set<uint32_t> now = LinkIds(BPF_LINK_TYPE_TRACING);
    for (uint32_t id : before) now.erase(id);
    EXPECT_EQ(now, pinned) << "the same object's LSM links are kept: none added, none replaced";
    {
      absl::StatusOr<std::unique_ptr<ZoneAttachment>> a = (*e)->AttachZone(z->dir, z->rules);
      ASSERT_TRUE(a.ok()) << a.status();
      EXPECT_EQ((*a)->adopted_links(), 9);
      (*e)->FinishAdoption();
      EXPECT_EQ(RunChild(z->Procs(), armed_write), EPERM);
      (*e)->Drain();
      std::vector<EnforcementEvent> events = log.Take("pin-lsm");
      ASSERT_EQ(events.size(), 2u) << "the denial made while no enforcer ran, then this one";
      for (const EnforcementEvent& ev : events) EXPECT_EQ(ev.hook, "lsm/file_open");
    }
  }
  EXPECT_FALSE(Exists(pin));
  EXPECT_TRUE(Eventually([&] {
    std::set<uint32_t> now = LinkIds(BPF_LINK_TYPE_TRACING);
    for (uint32_t id : pinned)
      if (now.count(id)) return false;
    return true;
  })) << "the LSM links went with the last zone";
  left.pin_dir.clear();
}

}  // namespace
}  // namespace rauha::bpf
