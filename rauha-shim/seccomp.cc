#include "rauha-shim/seccomp.h"

#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/strcat.h"

namespace rauha::shim {
namespace {

constexpr uint64_t kNamespaceFlags[] = {CLONE_NEWNS,  CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
                                        CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};
// Bounds the cache: a zone has one list, so this is only reached by a shim whose caller sends
// a different list with every task.
constexpr size_t kMaxCached = 16;

// Frees the libseccomp context on every path.
struct Ctx {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  ~Ctx() {
    if (ctx != nullptr) seccomp_release(ctx);
  }
};

absl::Status SeccompError(int rc, std::string_view what) {
  return ErrnoStatus(-rc, StrCat("seccomp: ", what));
}

// libseccomp 2.5 exports only to a file descriptor.
absl::StatusOr<std::vector<sock_filter>> Export(scmp_filter_ctx ctx) {
  UniqueFd fd(static_cast<int>(::syscall(SYS_memfd_create, "rauha-seccomp", MFD_CLOEXEC)));
  if (!fd) return ErrnoStatus(errno, "seccomp: memfd_create for the filter");
  if (int rc = seccomp_export_bpf(ctx, fd.get()); rc < 0) return SeccompError(rc, "export");
  struct stat st;
  if (::fstat(fd.get(), &st) < 0) return ErrnoStatus(errno, "seccomp: fstat the filter");
  size_t size = static_cast<size_t>(st.st_size);
  if (size == 0 || size % sizeof(sock_filter) != 0 || size / sizeof(sock_filter) > BPF_MAXINSNS) {
    return absl::InternalError(StrCat("seccomp: exported filter has ", size, " bytes"));
  }
  std::vector<sock_filter> filter(size / sizeof(sock_filter));
  if (::pread(fd.get(), filter.data(), size, 0) != static_cast<ssize_t>(size)) {
    return ErrnoStatus(errno, "seccomp: read the exported filter");
  }
  return filter;
}

absl::StatusOr<std::shared_ptr<const SeccompProgram>> Build(
    const std::vector<std::string>& extra_deny) {
  std::set<std::string> deny;
  for (const auto& name : DefaultSeccompDenyList()) {
    // A default name this libseccomp does not know on this architecture has no number to
    // call: nothing to deny.
    if (seccomp_syscall_resolve_name(name.c_str()) != __NR_SCMP_ERROR) deny.insert(name);
  }
  for (const auto& name : extra_deny) {
    if (seccomp_syscall_resolve_name(name.c_str()) == __NR_SCMP_ERROR) {
      return absl::InvalidArgumentError(
          StrCat("task.seccomp_deny: unknown syscall \"", name,
                 "\" (expected a name libseccomp knows, such as chmod)"));
    }
    deny.insert(name);
  }
  // clone3 is refused with ENOSYS whatever the list says (EPERM would stop libc's fallback).
  deny.erase("clone3");
  bool clone_denied = deny.contains("clone");
  // Denials go to the shim as user notifications (it answers EPERM and records an event);
  // without kernel or libseccomp support they are plain EPERM, unseen.
  bool notify = seccomp_api_get() >= 5;
  uint32_t deny_action = notify ? SCMP_ACT_NOTIFY : SCMP_ACT_ERRNO(EPERM);

  Ctx c;
  if (c.ctx == nullptr) return absl::InternalError("seccomp: seccomp_init failed");
  // A binary tree of syscall numbers instead of a linear list: every syscall of the workload
  // runs the filter, allowed ones included, and with ~55 denied names the list walk was the
  // larger part of the filter's cost (level 2 needs libseccomp >= 2.5).
  if (int rc = seccomp_attr_set(c.ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2); rc < 0) {
    return SeccompError(rc, "set the binary-tree optimisation");
  }
  std::string abis = "native";
  if (seccomp_arch_native() == SCMP_ARCH_X86_64) {
    abis = "x86_64, x86, x32";
    for (uint32_t arch : {SCMP_ARCH_X86, SCMP_ARCH_X32}) {
      int rc = seccomp_arch_add(c.ctx, arch);
      if (rc < 0 && rc != -EEXIST) return SeccompError(rc, "add the x86/x32 ABIs");
    }
  }
  for (const auto& name : deny) {
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (int rc = seccomp_rule_add(c.ctx, deny_action, nr, 0); rc < 0) {
      return SeccompError(rc, StrCat("deny ", name));
    }
  }
  if (!clone_denied) {
    // One rule per flag: libseccomp can test "all bits of a mask set", not "any bit set".
    for (uint64_t flag : kNamespaceFlags) {
      int rc = seccomp_rule_add(c.ctx, deny_action, SCMP_SYS(clone), 1,
                                SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag));
      if (rc < 0) return SeccompError(rc, "deny clone with namespace flags");
    }
  }
  if (int rc = seccomp_rule_add(c.ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0); rc < 0) {
    return SeccompError(rc, "clone3 -> ENOSYS");
  }
  auto filter = Export(c.ctx);
  if (!filter.ok()) return filter.status();
  auto program = std::make_shared<SeccompProgram>();
  program->filter = *std::move(filter);
  program->denied = static_cast<int>(deny.size());
  program->notify = notify;
  program->summary =
      StrCat("seccomp: ", program->denied, " syscalls denied",
             clone_denied ? "" : ", clone with namespace flags denied", ", clone3 ENOSYS (ABIs ",
             abis, "; ", program->filter.size(), " BPF instructions; denials ",
             notify ? "reported by user notification" : "not reported: EPERM only", ")");
  if (!notify) {
    program->warning = StrCat(
        "seccomp user notification unavailable (libseccomp API level ", seccomp_api_get(),
        ", needs 5 and a kernel with SECCOMP_FILTER_FLAG_NEW_LISTENER): denied syscalls fail "
        "with EPERM and produce no enforcement events");
  }
  return std::shared_ptr<const SeccompProgram>(std::move(program));
}

}  // namespace

const std::vector<std::string>& DefaultSeccompDenyList() {
  static const std::vector<std::string> kList = {
      // mounts and the root
      "mount", "umount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsconfig",
      "fsmount", "fspick", "mount_setattr",
      // the kernel itself
      "kexec_load", "kexec_file_load", "reboot", "init_module", "finit_module", "delete_module",
      "bpf", "perf_event_open", "lookup_dcookie", "nfsservctl", "_sysctl", "uselib",
      // keyrings
      "keyctl", "add_key", "request_key",
      // files by handle (escapes a bind mount's view), userfaultfd (kernel-race exploit aid)
      "open_by_handle_at", "userfaultfd",
      // namespaces
      "unshare", "setns",
      // clocks
      "settimeofday", "stime", "clock_settime", "clock_settime64", "clock_adjtime",
      "clock_adjtime64", "adjtimex",
      // host administration
      "swapon", "swapoff", "syslog", "acct", "iopl", "ioperm", "quotactl", "quotactl_fd", "vhangup",
      // io_uring: its operations bypass seccomp
      "io_uring_setup", "io_uring_enter", "io_uring_register"};
  return kList;
}

absl::StatusOr<std::shared_ptr<const SeccompProgram>> BuildSeccompProgram(
    const std::vector<std::string>& extra_deny) {
  static std::map<std::vector<std::string>, std::shared_ptr<const SeccompProgram>> cache;
  auto it = cache.find(extra_deny);
  if (it != cache.end()) return it->second;
  auto program = Build(extra_deny);
  if (!program.ok()) return program.status();
  if (cache.size() >= kMaxCached) cache.clear();
  cache.emplace(extra_deny, *program);
  return program;
}

absl::StatusOr<int> InstallSeccompProgram(const SeccompProgram& program) {
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(program.filter.size());
  prog.filter = const_cast<sock_filter*>(program.filter.data());
  unsigned int flags = program.notify ? SECCOMP_FILTER_FLAG_NEW_LISTENER : 0;
  long rc = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
  if (rc < 0) return ErrnoStatus(errno, "seccomp: install the filter");
  return program.notify ? static_cast<int>(rc) : -1;
}

std::string SyscallName(uint32_t arch, int nr) {
  char* name = seccomp_syscall_resolve_num_arch(arch, nr);
  if (name == nullptr) return StrCat("syscall ", nr);
  std::string out = name;
  ::free(name);
  return out;
}

}  // namespace rauha::shim
