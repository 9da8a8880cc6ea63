#include "rauha-shim/init.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "rauha-shim/process_title.h"

namespace rauha::shim {
namespace {

constexpr uint32_t kMagic = 0x52494e31;  // "RIN1"

uint64_t Micros(const timeval& tv) {
  return static_cast<uint64_t>(tv.tv_sec) * 1000000 + static_cast<uint64_t>(tv.tv_usec);
}

[[noreturn]] void Report(int status_fd, int wait_status) {
  InitReport report;
  report.magic = kMagic;
  report.wait_status = wait_status;
  rusage ru{};
  if (::getrusage(RUSAGE_CHILDREN, &ru) == 0) {
    report.cpu_user_us = Micros(ru.ru_utime);
    report.cpu_system_us = Micros(ru.ru_stime);
    report.max_rss_kb = static_cast<uint64_t>(ru.ru_maxrss);
  }
  while (::write(status_fd, &report, sizeof(report)) < 0 && errno == EINTR) {
  }
  // Exiting as PID 1 makes the kernel SIGKILL every other process in the namespace.
  ::_exit(0);
}

}  // namespace

sigset_t InitSignals() {
  // SIGKILL and SIGSTOP cannot be blocked (the kernel ignores them here); glibc leaves out
  // its two internal real-time signals.
  sigset_t set;
  sigfillset(&set);
  return set;
}

void RunInit(pid_t workload, int status_fd, bool pid_one) {
  SetProcessTitle("rauha-init");
  // The init is a copy of the shim's memory (other tasks' results included). Not dumpable:
  // /proc/1/mem, /proc/1/environ and ptrace need CAP_SYS_PTRACE, which tasks do not get.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  // The output pipes reach EOF when the workload and its children are done, not when the
  // init exits; the setup error pipe when the workload execs.
  ::dup2(0, 1);
  ::dup2(0, 2);
  ::close(3);
  // Every signal stays blocked and is taken with sigwaitinfo. A blocked signal is never
  // dropped by the kernel's PID-1 rule (it checks the mask before the handler), and
  // forwarding and reaping happen one at a time, so a signal can never be forwarded to a pid
  // that was just reaped and reused.
  sigset_t set = InitSignals();
  while (true) {
    while (true) {
      int status = 0;
      pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid == workload) Report(status_fd, status);
      if (pid == 0 || (pid < 0 && errno != EINTR)) break;
    }
    siginfo_t info;
    int sig = ::sigwaitinfo(&set, &info);
    if (sig == SIGTERM && info.si_code == SI_QUEUE &&
        info.si_value.sival_int == kTerminateAllValue) {
      // Every process here but the init itself: a workload's children and daemons too.
      ::kill(pid_one ? -1 : workload, SIGTERM);
    } else if (sig > 0 && sig != SIGCHLD) {
      ::kill(workload, sig);
    }
  }
}

std::optional<InitReport> ReadInitReport(int status_fd) {
  InitReport report;
  ssize_t n;
  do {
    n = ::read(status_fd, &report, sizeof(report));
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof(report)) || report.magic != kMagic) return std::nullopt;
  return report;
}

}  // namespace rauha::shim
