// SIGINT and SIGTERM for a CLI whose work is a blocking gRPC call. StartSignalWatcher()
// blocks them (and SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH) in every thread (it must run
// before the process starts any other thread, e.g. gRPC's, which inherit the mask) and waits
// for them with sigwait(2) on one thread of its own:
// - while a CancelOnSignal scope is alive, the first signal cancels its call
//   (ClientContext::TryCancel: rauhad sees the cancellation, kills the task and removes its
//   temporary zone) and is remembered; a second signal exits at once;
// - while a ForwardSignals scope is alive (a streaming task), the first signal goes to the task
//   and the second cancels the call; SIGWINCH (also blocked and waited for) reports a resize;
// - while a ProxySignals scope is alive (rauha run's --sig-proxy), every one of them but
//   SIGWINCH goes to the container, as often as it comes;
// - otherwise the process exits at once with 128 + N, as if the signal had killed it (after
//   the SetBeforeSignalExit function, e.g. restoring the terminal's mode). SIGHUP, SIGQUIT,
//   SIGUSR1 and SIGUSR2 always do that outside a ProxySignals scope.
#pragma once

#include <functional>
#include <string>

#include "grpcpp/client_context.h"

namespace rauha::cli {

// Started by the commands that talk to rauhad, before they connect (MakeStub in commands.h,
// `rauha sandbox`), not for every command: the thread's start and its end at exit were ~0.1 ms
// of CPU of `rauha version` (eval/bench/README.md, "The CLI's floor"). A command without it
// (version, policy validate, audit verify/tail/show) keeps the default actions: a signal
// ends it as it ends any process. Starts once; the scopes below start it too.
void StartSignalWatcher();

// "SIGINT" for SIGINT; the number for signals without a name.
std::string SignalName(int signo);

class CancelOnSignal {
 public:
  explicit CancelOnSignal(grpc::ClientContext* context);
  // A call of another transport (the ttrpc fast path): `cancel` ends it, on the watcher's
  // thread.
  explicit CancelOnSignal(std::function<void()> cancel);
  ~CancelOnSignal();
  CancelOnSignal(const CancelOnSignal&) = delete;
  CancelOnSignal& operator=(const CancelOnSignal&) = delete;

  // The signal that cancelled the call, 0 if none did.
  int signal() const;
};

// For a call whose task runs live (rauha sandbox --stream / -t): SIGINT and SIGTERM go to
// `forward` the first time (the CLI sends them on to the task, which decides), the next one
// cancels the call as CancelOnSignal does; each SIGWINCH calls `on_resize`. Both run on the
// watcher's thread.
class ForwardSignals {
 public:
  ForwardSignals(grpc::ClientContext* context, std::function<void(int)> forward,
                 std::function<void()> on_resize);
  ~ForwardSignals();
  ForwardSignals(const ForwardSignals&) = delete;
  ForwardSignals& operator=(const ForwardSignals&) = delete;

  // The signal that cancelled the call, 0 if none did.
  int signal() const;
};

// For a foreground container that the CLI follows (docker's --sig-proxy): each SIGINT,
// SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 is given to `proxy` (on the watcher's
// thread), which sends it on and returns true. When it returns false (the container is no
// longer running, rauhad cannot be reached), the signal is handled as if there were no proxy.
class ProxySignals {
 public:
  explicit ProxySignals(std::function<bool(int)> proxy);
  ~ProxySignals();
  ProxySignals(const ProxySignals&) = delete;
  ProxySignals& operator=(const ProxySignals&) = delete;
};

// Runs on the watcher's thread just before it exits the process on a signal (null: nothing).
void SetBeforeSignalExit(void (*fn)());

}  // namespace rauha::cli
