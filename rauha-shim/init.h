// The init of a task's pid namespace: a forked copy of the task's child (after every limit
// is in place) that stays PID 1 while its own child execs the workload. The kernel drops
// signals a PID 1 does not handle, and orphans are reparented to it, so a workload as PID 1
// would ignore SIGTERM and leave zombies; this init forwards signals to the workload and
// reaps everything. When the workload exits it writes one InitReport to the status pipe and
// exits 0, and the kernel kills what is left of the namespace. An init that dies without
// writing one was SIGKILLed (kill request, timeout, OOM): the task ended by SIGKILL.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace rauha::shim {

// One write of this struct (well under PIPE_BUF, so atomic) on the status pipe. Both ends
// are the same binary, so the layout needs no encoding.
struct InitReport {
  uint32_t magic = 0;
  int32_t wait_status = 0;   // as from waitpid
  uint64_t cpu_user_us = 0;  // getrusage(RUSAGE_CHILDREN) once the workload was reaped
  uint64_t cpu_system_us = 0;
  uint64_t max_rss_kb = 0;
};

// The shim's "terminate the task" request: SIGTERM sent to the init with sigqueue's si_code
// (SI_QUEUE) and this value. The init then sends SIGTERM to every process of its namespace
// (kill(-1)), not only to the workload as it does with any other signal.
inline constexpr int kTerminateAllValue = 0x52544541;  // "RTEA"

// The signals the init waits for: every signal it can block (it forwards all but SIGCHLD).
// RunChild blocks these before forking, so nothing sent in between is lost.
sigset_t InitSignals();

// Runs in the task's child after fork: `workload` is the workload's pid, fd 0 is /dev/null,
// fds 1-2 the output pipes, fd 3 the setup error pipe, `status_fd` the status pipe. Never
// returns.
// `pid_one` false: an exec's waiter, outside its container's pid namespace; "terminate all"
// then signals only the workload (kill(-1) would reach the shim's namespace).
[[noreturn]] void RunInit(pid_t workload, int status_fd, bool pid_one = true);

// The shim's side, after the init was reaped: its report, or nullopt if it wrote none.
std::optional<InitReport> ReadInitReport(int status_fd);

}  // namespace rauha::shim
