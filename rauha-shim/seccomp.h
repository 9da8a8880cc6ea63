// The seccomp filter of a task's workload. Built in the shim (libseccomp, where a bad
// syscall name is still an "invalid_argument" reply) as a BPF program that the workload's
// process installs with one raw seccomp() call just before execve: the task's init stays
// unfiltered so it can keep reaping and forwarding signals.
//
// Default action ALLOW. Denied (user notification: the shim answers EPERM and records an
// event, seccomp_notify.h; plain EPERM where the kernel or libseccomp lacks it) for what a
// sandboxed workload never needs and what widens its reach into the kernel: the mount family,
// pivot_root, kexec, reboot, module loading, bpf, perf_event_open, the keyring, open_by_handle_at,
// userfaultfd, namespace creation and setns (clone with a CLONE_NEW* flag), clock and swap
// settings, syslog, acct, iopl/ioperm, quotactl, io_uring, ... plus the task's own list. clone3
// returns ENOSYS: its flags sit in a struct seccomp cannot read, and libc falls back to clone,
// whose flags it can. The x86 (int 0x80) and x32 ABIs carry the same rules, so the list cannot be
// bypassed through another ABI.
#pragma once

#include <linux/filter.h>

#include <cstdint>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rauha::shim {

struct SeccompProgram {
  std::vector<sock_filter> filter;
  int denied = 0;       // distinct syscall names refused outright (clone and clone3 aside)
  bool notify = false;  // denials are SECCOMP_RET_USER_NOTIF (else SECCOMP_RET_ERRNO(EPERM))
  std::string summary;  // "seccomp: 52 syscalls denied, ..." for TaskResult.layers
  std::string warning;  // for TaskResult.warnings when !notify
};

// The names the shim always denies (for documentation and tests).
const std::vector<std::string>& DefaultSeccompDenyList();

// InvalidArgument naming an unknown syscall in `extra_deny`. Programs are cached by their
// extra list: tasks of one zone share one.
absl::StatusOr<std::shared_ptr<const SeccompProgram>> BuildSeccompProgram(
    const std::vector<std::string>& extra_deny);

// In the workload's process, after no_new_privs (or with CAP_SYS_ADMIN). errno-style status.
// Returns the notification listener (close-on-exec) when program.notify, else -1.
absl::StatusOr<int> InstallSeccompProgram(const SeccompProgram& program);

// "unshare" for a notification's (arch, nr); "syscall <nr>" when libseccomp does not know it.
std::string SyscallName(uint32_t arch, int nr);

}  // namespace rauha::shim
