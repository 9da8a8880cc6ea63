// A call's turn at a CallGate: it waits in line at most until its own deadline and leaves the
// line when its client goes away. Calls come over gRPC or over the shim's ttrpc endpoint
// (shim_endpoint.h): CallControl is what both say about a call.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>

#include "rauhad/call_gate.h"

namespace rauha {

struct CallControl {
  std::function<bool()> cancelled;  // true once the client has gone; empty: never
  std::chrono::system_clock::time_point deadline = std::chrono::system_clock::time_point::max();
};

inline CallControl ControlOf(grpc::ServerContextBase* ctx) {
  return CallControl{[ctx] { return ctx->IsCancelled(); }, ctx->deadline()};
}

// No gate: a slot that holds nothing (tests and tools that build services without limits).
inline absl::StatusOr<CallGate::Slot> Admit(CallGate* gate, const CallControl& call) {
  if (gate == nullptr) return CallGate::Slot();
  return gate->Acquire(
      call.cancelled ? call.cancelled : [] { return false; }, call.deadline);
}

inline absl::StatusOr<CallGate::Slot> Admit(CallGate* gate, grpc::ServerContextBase* ctx) {
  if (gate == nullptr) return CallGate::Slot();
  return gate->Acquire([ctx] { return ctx->IsCancelled(); }, ctx->deadline());
}

}  // namespace rauha
