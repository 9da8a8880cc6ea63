// SIGINT and SIGTERM for a CLI whose work is a blocking gRPC call. InstallSignalWatcher()
// blocks both in every thread (it must run first in main, before gRPC starts its threads, which
// inherit the mask) and waits for them with sigwait(2) on one thread of its own:
// - while a CancelOnSignal scope is alive, the first signal cancels its call
//   (ClientContext::TryCancel: rauhad sees the cancellation, kills the task and removes its
//   temporary zone) and is remembered; a second signal exits at once;
// - otherwise the process exits at once with 128 + N, as if the signal had killed it.
#pragma once

#include <string>

#include "grpcpp/client_context.h"

namespace rauha::cli {

void InstallSignalWatcher();

// "SIGINT" for SIGINT; the number for signals without a name.
std::string SignalName(int signo);

class CancelOnSignal {
 public:
  explicit CancelOnSignal(grpc::ClientContext* context);
  ~CancelOnSignal();
  CancelOnSignal(const CancelOnSignal&) = delete;
  CancelOnSignal& operator=(const CancelOnSignal&) = delete;

  // The signal that cancelled the call, 0 if none did.
  int signal() const;
};

}  // namespace rauha::cli
