// A gRPC call's turn at a CallGate: it waits in line at most until its own deadline and
// leaves the line when its client goes away.
#pragma once

#include <grpcpp/grpcpp.h>

#include "rauhad/call_gate.h"

namespace rauha {

// No gate: a slot that holds nothing (tests and tools that build services without limits).
inline absl::StatusOr<CallGate::Slot> Admit(CallGate* gate, grpc::ServerContextBase* ctx) {
  if (gate == nullptr) return CallGate::Slot();
  return gate->Acquire([ctx] { return ctx->IsCancelled(); }, ctx->deadline());
}

}  // namespace rauha
