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
std::function<void()> cancel_active;  // guarded by mu; set while a call may be cancelled
std::atomic<int> cancelled_by{0};
std::function<void(int)> forward;  // guarded by mu
std::function<void()> on_resize;   // guarded by mu
bool forwarded = false;            // guarded by mu
std::function<bool(int)> proxy;    // guarded by mu
std::atomic<void (*)()> before_exit{nullptr};

sigset_t WatchedSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  // Those a foreground container may want (ProxySignals); else they end the CLI as before.
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGQUIT);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGUSR2);
  // Blocked in every thread so that only the watcher sees it (its default action is to
  // ignore it, so nothing else changes).
  sigaddset(&set, SIGWINCH);
  return set;
}

void Watch() {
  const sigset_t set = WatchedSignals();
  for (;;) {
    int signo = 0;
    if (sigwait(&set, &signo) != 0) continue;
    std::lock_guard<std::mutex> lock(mu);
    if (signo == SIGWINCH) {
      if (on_resize) on_resize();
      continue;
    }
    if (proxy && proxy(signo)) continue;
    const bool cancels = signo == SIGINT || signo == SIGTERM;
    if (cancels && forward && !forwarded) {
      forwarded = true;
      forward(signo);
      continue;
    }
    if (cancels && cancel_active && cancelled_by.load() == 0) {
      cancelled_by.store(signo);
      cancel_active();
      continue;
    }
    // Nothing to cancel (or asked twice): behave like the default action, minus the core.
    if (auto fn = before_exit.load()) fn();
    std::fflush(stdout);
    _exit(128 + signo);
  }
}

}  // namespace

void StartSignalWatcher() {
  static std::once_flag started;
  std::call_once(started, [] {
    const sigset_t set = WatchedSignals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::thread(Watch).detach();
  });
}

std::string SignalName(int signo) {
  const char* abbrev = sigabbrev_np(signo);
  return abbrev != nullptr ? std::string("SIG") + abbrev : std::to_string(signo);
}

CancelOnSignal::CancelOnSignal(grpc::ClientContext* context)
    : CancelOnSignal([context] { context->TryCancel(); }) {}

CancelOnSignal::CancelOnSignal(std::function<void()> cancel) {
  StartSignalWatcher();
  std::lock_guard<std::mutex> lock(mu);
  cancel_active = std::move(cancel);
}

CancelOnSignal::~CancelOnSignal() {
  std::lock_guard<std::mutex> lock(mu);
  cancel_active = nullptr;
}

int CancelOnSignal::signal() const { return cancelled_by.load(); }

ForwardSignals::ForwardSignals(grpc::ClientContext* context, std::function<void(int)> fwd,
                               std::function<void()> resize) {
  StartSignalWatcher();
  std::lock_guard<std::mutex> lock(mu);
  cancel_active = [context] { context->TryCancel(); };
  forward = std::move(fwd);
  on_resize = std::move(resize);
  forwarded = false;
}

ForwardSignals::~ForwardSignals() {
  std::lock_guard<std::mutex> lock(mu);
  cancel_active = nullptr;
  forward = nullptr;
  on_resize = nullptr;
}

int ForwardSignals::signal() const { return cancelled_by.load(); }

ProxySignals::ProxySignals(std::function<bool(int)> fn) {
  StartSignalWatcher();
  std::lock_guard<std::mutex> lock(mu);
  proxy = std::move(fn);
}

ProxySignals::~ProxySignals() {
  std::lock_guard<std::mutex> lock(mu);
  proxy = nullptr;
}

void SetBeforeSignalExit(void (*fn)()) {
  if (fn != nullptr) StartSignalWatcher();
  before_exit.store(fn);
}

}  // namespace rauha::cli
