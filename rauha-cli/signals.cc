#include "rauha-cli/signals.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

namespace rauha::cli {
namespace {

std::mutex mu;
grpc::ClientContext* active = nullptr;  // guarded by mu
std::atomic<int> cancelled_by{0};

sigset_t WatchedSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

void Watch() {
  const sigset_t set = WatchedSignals();
  for (;;) {
    int signo = 0;
    if (sigwait(&set, &signo) != 0) continue;
    std::lock_guard<std::mutex> lock(mu);
    if (active != nullptr && cancelled_by.load() == 0) {
      cancelled_by.store(signo);
      active->TryCancel();
      continue;
    }
    // Nothing to cancel (or asked twice): behave like the default action, minus the core.
    std::fflush(stdout);
    _exit(128 + signo);
  }
}

}  // namespace

void InstallSignalWatcher() {
  const sigset_t set = WatchedSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread(Watch).detach();
}

std::string SignalName(int signo) {
  const char* abbrev = sigabbrev_np(signo);
  return abbrev != nullptr ? std::string("SIG") + abbrev : std::to_string(signo);
}

CancelOnSignal::CancelOnSignal(grpc::ClientContext* context) {
  std::lock_guard<std::mutex> lock(mu);
  active = context;
}

CancelOnSignal::~CancelOnSignal() {
  std::lock_guard<std::mutex> lock(mu);
  active = nullptr;
}

int CancelOnSignal::signal() const { return cancelled_by.load(); }

}  // namespace rauha::cli
