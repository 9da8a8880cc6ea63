// The cost of enforcement on the hottest path a zone has: open+close of a file on tmpfs.
//
//   openclose_bench [--layers fallback|lsm] [--pairs N] [--runs R] [--dir D]
//                  [--shim-layers both|landlock|seccomp]
//   openclose_bench --events [--layers fallback|lsm] [--seconds S]
//
// Four cells: a process outside any zone and one inside a zone's cgroup v2 directory, each with
// nothing loaded and with enforcement loaded. "Enforcement" is what a zone task really gets on
// the chosen path:
//   fallback (hosts refusing LSM programs): the enforcer's cgroup-bpf programs attached to the
//     zone cgroup (Enforcer::Load with try_lsm=false + AttachZone) and, inside, rauha-shim's
//     Landlock ruleset and seccomp filter applied to the measuring process, as before a
//     workload's execve;
//   lsm (e.g. the qemu guest of tests/ebpf-vm): Enforcer::Load with the LSM programs + AttachZone.
// Each sample is a fresh child process doing N pairs; runs are interleaved (every cell once per
// round, enforcement loaded and unloaded each round) so drift hits every cell alike. Reports
// the median ns/pair of R samples and the change against the same cell with nothing loaded.
// Under `run-in-vm.sh --icount` the guest clock counts instructions (1 ns = 1 instruction).
//
// --events: a child in the zone cgroup calls connect() to 192.0.2.1:9 (denied: isolated
// network) in a loop for S seconds; every denial is an event. Reports the events delivered to
// the sink (SetSink) per second, from the child's start to the end of Drain(), and the events
// lost; exit 1 if any was lost or delivered != denied.
//
// Root; creates and removes <cgroup2 mount><own v2 cgroup>/rauha-bench-PID and D/rauha-bench-PID.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/landlock_abi.h"
#include "rauha-common/strcat.h"
#include "rauha-shim/landlock.h"
#include "rauha-shim/seccomp.h"
#include "rauha-shim/task_plan.h"
#ifdef RAUHA_BENCH_HAVE_ENFORCER
#include "rauhad/linux/bpf/enforcer.h"
#endif

namespace {

using rauha::ErrnoStatus;
using rauha::StrCat;

constexpr long kTmpfsMagic = 0x01021994;

struct Flags {
  std::string layers = "fallback";
  long pairs = 1000000;
  int runs = 5;
  std::string dir;
  bool events = false;
  double seconds = 3;
  bool landlock = true;  // --shim-layers: which of the shim's layers the inside cell applies
  bool seccomp = true;
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr,
               "openclose_bench: %s\nusage: openclose_bench [--layers fallback|lsm] [--pairs N] "
               "[--runs R] [--dir D] [--shim-layers both|landlock|seccomp]\n       openclose_bench "
               "--events [--layers fallback|lsm] "
               "[--seconds S]\n",
               why);
  std::exit(2);
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(StrCat(a, " needs a value").c_str());
      return argv[++i];
    };
    if (a == "--layers") {
      f.layers = value();
      if (f.layers != "fallback" && f.layers != "lsm") Usage("--layers: fallback or lsm");
    } else if (a == "--pairs") {
      f.pairs = std::atol(value().c_str());
    } else if (a == "--runs") {
      f.runs = std::atoi(value().c_str());
    } else if (a == "--dir") {
      f.dir = value();
    } else if (a == "--shim-layers") {
      const std::string v = value();
      if (v != "both" && v != "landlock" && v != "seccomp")
        Usage("--shim-layers: both, landlock or seccomp");
      f.landlock = v != "seccomp";
      f.seccomp = v != "landlock";
    } else if (a == "--events") {
      f.events = true;
    } else if (a == "--seconds") {
      f.seconds = std::atof(value().c_str());
    } else {
      Usage(StrCat("unknown argument ", a).c_str());
    }
  }
  if (f.pairs <= 0 || f.runs <= 0 || f.seconds <= 0) Usage("counts must be positive");
  return f;
}

int64_t NowNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// <mount point of cgroup2> + <this process's v2 cgroup>.
absl::StatusOr<std::string> OwnCgroupV2Dir() {
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line, mount;
  while (std::getline(mountinfo, line)) {
    const size_t dash = line.find(" - ");
    if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0) continue;
    std::istringstream fields(line);
    std::string id, parent, devno, root;
    fields >> id >> parent >> devno >> root >> mount;
    break;
  }
  if (mount.empty()) {
    return absl::FailedPreconditionError("no cgroup2 mount in /proc/self/mountinfo: mount one");
  }
  std::ifstream cgroup("/proc/self/cgroup");
  while (std::getline(cgroup, line)) {
    if (line.rfind("0::", 0) == 0) return mount + (line.substr(3) == "/" ? "" : line.substr(3));
  }
  return absl::FailedPreconditionError("no 0:: line in /proc/self/cgroup");
}

absl::StatusOr<std::string> TmpfsDir(const std::string& wanted) {
  std::vector<std::string> candidates =
      wanted.empty() ? std::vector<std::string>{"/dev/shm", "/tmp"} : std::vector{wanted};
  for (const auto& d : candidates) {
    struct statfs sfs {};
    if (::statfs(d.c_str(), &sfs) == 0 && sfs.f_type == kTmpfsMagic) return d;
  }
  return absl::FailedPreconditionError(
      StrCat("no tmpfs among ", wanted.empty() ? "/dev/shm, /tmp" : wanted, ": pass --dir"));
}

// The zone: one v2 cgroup below ours. Removed on destruction (after its processes exited).
struct Zone {
  std::string cgroup;
  uint64_t cgroup_id = 0;
  ~Zone() {
    if (!cgroup.empty()) ::rmdir(cgroup.c_str());
  }
};

absl::Status MakeZone(Zone& zone) {
  RAUHA_ASSIGN_OR_RETURN(std::string own, OwnCgroupV2Dir());
  zone.cgroup = StrCat(own, "/rauha-bench-", ::getpid());
  if (::mkdir(zone.cgroup.c_str(), 0755) < 0) {
    const int err = errno;
    zone.cgroup.clear();
    return ErrnoStatus(err, StrCat("mkdir ", own, "/rauha-bench-", ::getpid()));
  }
  struct stat st {};
  if (::stat(zone.cgroup.c_str(), &st) < 0) return ErrnoStatus(errno, "stat " + zone.cgroup);
  zone.cgroup_id = st.st_ino;  // a cgroup v2 id is its directory's inode number
  return absl::OkStatus();
}

// Child side: join the zone (write our pid to cgroup.procs); false on failure.
bool JoinZone(const std::string& cgroup) {
  rauha::UniqueFd fd(::open((cgroup + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
  return fd && ::write(fd.get(), "0", 1) == 1;
}

// What a zone task's process gets from the shim before execve: no_new_privs, Landlock, seccomp.
bool ApplyShimLayers(const Flags& flags, const rauha::shim::SeccompProgram& seccomp) {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return false;
  rauha::shim::TaskPlan plan;
  plan.landlock_abi = flags.landlock ? rauha::LandlockAbi() : 0;
  if (plan.landlock_abi > 0 && !rauha::shim::ApplyLandlock(plan).ok()) return false;
  return !flags.seccomp || rauha::shim::InstallSeccompProgram(seccomp).ok();
}

struct Cell {
  const char* name;
  bool inside;
  bool enforced;
  std::vector<double> samples;  // ns/pair
};

// One sample in a child: returns ns/pair, or a negative value if the child failed.
double Sample(const Flags& flags, const std::string& file, const Zone& zone, const Cell& cell,
              const rauha::shim::SeccompProgram* shim_layers) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) < 0) return -1;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipefd[0]);
    double result = -1;
    if ((!cell.inside || JoinZone(zone.cgroup)) &&
        (shim_layers == nullptr || ApplyShimLayers(flags, *shim_layers))) {
      const char* path = file.c_str();
      long failed = 0;
      const int64_t start = NowNs();
      for (long i = 0; i < flags.pairs; ++i) {
        const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
          ++failed;
          continue;
        }
        ::close(fd);
      }
      const int64_t end = NowNs();
      if (failed == 0) result = static_cast<double>(end - start) / static_cast<double>(flags.pairs);
    }
    (void)!::write(pipefd[1], &result, sizeof result);
    ::_exit(0);
  }
  ::close(pipefd[1]);
  if (pid < 0) {
    ::close(pipefd[0]);
    return -1;
  }
  double result = -1;
  if (::read(pipefd[0], &result, sizeof result) != sizeof result) result = -1;
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return result;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#ifdef RAUHA_BENCH_HAVE_ENFORCER
struct Loaded {
  std::unique_ptr<rauha::bpf::Enforcer> enforcer;
  std::unique_ptr<rauha::bpf::ZoneAttachment> attachment;
};

absl::StatusOr<Loaded> LoadEnforcement(const Flags& flags, const Zone& zone,
                                       std::function<void(rauha::EnforcementEvent)> sink) {
  Loaded l;
  rauha::bpf::Enforcer::Options options;
  options.try_lsm = flags.layers == "lsm";
  RAUHA_ASSIGN_OR_RETURN(l.enforcer, rauha::bpf::Enforcer::Load(options));
  if (flags.layers == "lsm" && !l.enforcer->lsm_loaded()) {
    return absl::FailedPreconditionError(
        StrCat("--layers lsm: LSM programs not loaded here: ", l.enforcer->lsm_detail()));
  }
  if (sink) l.enforcer->SetSink(std::move(sink));
  rauha::bpf::ZoneRules rules;
  rules.zone_id = "bench";
  rules.cgroup_id = zone.cgroup_id;
  rules.writable_paths = {"/tmp", "/dev/shm"};
  RAUHA_ASSIGN_OR_RETURN(l.attachment, l.enforcer->AttachZone(zone.cgroup, rules));
  return l;
}
#endif

int OpenClose(const Flags& flags) {
#ifndef RAUHA_BENCH_HAVE_ENFORCER
  if (flags.layers == "lsm") {
    std::fprintf(stderr,
                 "openclose_bench: built without the eBPF enforcer: --layers lsm "
                 "cannot run\n");
    return 1;
  }
#endif
  absl::StatusOr<std::string> dir = TmpfsDir(flags.dir);
  if (!dir.ok()) {
    std::fprintf(stderr, "openclose_bench: %s\n", rauha::ToStd(dir.status().message()).c_str());
    return 1;
  }
  const std::string file = StrCat(*dir, "/rauha-bench-", ::getpid());
  {
    rauha::UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) {
      std::perror(("openclose_bench: create " + file).c_str());
      return 1;
    }
  }
  Zone zone;
  absl::Status made = MakeZone(zone);
  if (!made.ok()) {
    ::unlink(file.c_str());
    std::fprintf(stderr, "openclose_bench: %s\n", rauha::ToStd(made.message()).c_str());
    return 1;
  }
  std::shared_ptr<const rauha::shim::SeccompProgram> seccomp;
  if (flags.layers == "fallback") {
    absl::StatusOr<std::shared_ptr<const rauha::shim::SeccompProgram>> built =
        rauha::shim::BuildSeccompProgram({});
    if (!built.ok()) {
      ::unlink(file.c_str());
      std::fprintf(stderr, "openclose_bench: %s\n", rauha::ToStd(built.status().message()).c_str());
      return 1;
    }
    seccomp = *built;
  }

  std::vector<Cell> cells = {{"outside, nothing loaded", false, false, {}},
                             {"inside,  nothing loaded", true, false, {}},
                             {"outside, enforcement", false, true, {}},
                             {"inside,  enforcement", true, true, {}}};
  std::string what;
  int rc = 0;
  for (int run = 0; run < flags.runs && rc == 0; ++run) {
#ifdef RAUHA_BENCH_HAVE_ENFORCER
    Loaded loaded;  // loaded before the first enforced cell, unloaded at the end of the round
#endif
    for (Cell& cell : cells) {
      if (cell.enforced && what.empty()) {
#ifdef RAUHA_BENCH_HAVE_ENFORCER
        absl::StatusOr<Loaded> l = LoadEnforcement(flags, zone, nullptr);
        if (!l.ok()) {
          std::fprintf(stderr, "openclose_bench: %s\n", rauha::ToStd(l.status().message()).c_str());
          rc = 1;
          break;
        }
        loaded = std::move(*l);
        what = flags.layers == "lsm" ? "LSM programs (" + loaded.enforcer->lsm_detail() + ")"
                                     : StrCat("cgroup-bpf", flags.landlock ? " + Landlock" : "",
                                              flags.seccomp ? " + seccomp" : "");
#else
        what = "Landlock + seccomp (no eBPF enforcer built)";
#endif
      }
      const bool shim = cell.enforced && cell.inside && flags.layers == "fallback";
      const double ns = Sample(flags, file, zone, cell, shim ? seccomp.get() : nullptr);
      if (ns < 0) {
        std::fprintf(stderr, "openclose_bench: sample failed (%s)\n", cell.name);
        rc = 1;
        break;
      }
      cell.samples.push_back(ns);
    }
    if (run + 1 < flags.runs) what.clear();
  }
  ::unlink(file.c_str());
  if (rc != 0) return rc;

  std::printf("open+close of a file on %s, %d x %ld pairs, median ns/pair; layers %s: %s\n",
              dir->c_str(), flags.runs, flags.pairs, flags.layers.c_str(), what.c_str());
  std::printf("%-26s %12s %9s %8s\n", "cell", "ns/pair", "vs none", "spread");
  for (size_t i = 0; i < cells.size(); ++i) {
    const double m = Median(cells[i].samples);
    char delta[32] = "";
    if (cells[i].enforced) {
      std::snprintf(delta, sizeof delta, "%+.1f%%", (m / Median(cells[i - 2].samples) - 1) * 100);
    }
    // Spread: (max - min) / median of the samples, how far to trust the delta.
    const auto [lo, hi] = std::minmax_element(cells[i].samples.begin(), cells[i].samples.end());
    std::printf("%-26s %12.1f %9s %7.1f%%\n", cells[i].name, m, delta, (*hi - *lo) / m * 100);
  }
  return 0;
}

int Events(const Flags& flags) {
#ifndef RAUHA_BENCH_HAVE_ENFORCER
  std::fprintf(stderr, "openclose_bench: built without the eBPF enforcer: --events cannot run\n");
  return 1;
#else
  Zone zone;
  absl::Status made = MakeZone(zone);
  if (!made.ok()) {
    std::fprintf(stderr, "openclose_bench: %s\n", rauha::ToStd(made.message()).c_str());
    return 1;
  }
  std::atomic<uint64_t> delivered{0}, foreign{0};
  const uint64_t id = zone.cgroup_id;
  uint64_t denied = 0, lost = 0;
  double seconds = 0;
  {
    absl::StatusOr<Loaded> loaded = LoadEnforcement(flags, zone, [&](rauha::EnforcementEvent e) {
      (e.cgroup_id == id ? delivered : foreign).fetch_add(1, std::memory_order_relaxed);
    });
    if (!loaded.ok()) {
      std::fprintf(stderr, "openclose_bench: %s\n",
                   rauha::ToStd(loaded.status().message()).c_str());
      return 1;
    }
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) < 0) return 1;
    const int64_t start = NowNs();
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(pipefd[0]);
      uint64_t count = 0;
      if (JoinZone(zone.cgroup)) {
        const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(9);
        ::inet_pton(AF_INET, "192.0.2.1", &to.sin_addr);
        const int64_t end = NowNs() + static_cast<int64_t>(flags.seconds * 1e9);
        while (s >= 0 && NowNs() < end) {
          for (int i = 0; i < 64; ++i) {
            if (::connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to) < 0 && errno == EPERM) {
              ++count;
            }
          }
        }
      }
      (void)!::write(pipefd[1], &count, sizeof count);
      ::_exit(0);
    }
    ::close(pipefd[1]);
    if (::read(pipefd[0], &denied, sizeof denied) != sizeof denied) denied = 0;
    ::close(pipefd[0]);
    ::waitpid(pid, nullptr, 0);
    loaded->enforcer->Drain();
    seconds = static_cast<double>(NowNs() - start) / 1e9;
    lost = loaded->enforcer->TotalLost();
  }
  const uint64_t got = delivered.load();
  std::printf(
      "events: layers %s, %.2f s: %lu connect() denied in the zone, %lu events delivered "
      "(%.0f events/s), %lu lost, %lu from elsewhere\n",
      flags.layers.c_str(), seconds, static_cast<unsigned long>(denied),
      static_cast<unsigned long>(got), static_cast<double>(got) / seconds,
      static_cast<unsigned long>(lost), static_cast<unsigned long>(foreign.load()));
  if (denied == 0 || got != denied || lost != 0) {
    std::fprintf(stderr,
                 "openclose_bench: events incomplete (denied %lu, delivered %lu, lost %lu)\n",
                 static_cast<unsigned long>(denied), static_cast<unsigned long>(got),
                 static_cast<unsigned long>(lost));
    return 1;
  }
  return 0;
#endif
}

}  // namespace

int main(int argc, char** argv) {
  const Flags flags = ParseFlags(argc, argv);
  return flags.events ? Events(flags) : OpenClose(flags);
}
