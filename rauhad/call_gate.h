// Admission for calls that cost rauhad memory or CPU (policy parsing, zone set-up and
// tear-down, isolation probes, running tasks): at most `running_max` run at once, at most
// `waiting_max` more wait in FIFO order, and any further call is refused with
// RESOURCE_EXHAUSTED and a message saying why. Without a bound, 16 concurrent CreateZone
// calls with a 3.6 MiB policy took rauhad to 1.7 GB.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <set>
#include <string>

#include "absl/status/statusor.h"

namespace rauha {

class CallGate {
 public:
  // `what` names the calls in messages, e.g. "zone operations". `on_idle` runs (outside the
  // gate's lock) each time the last running call leaves and none waits: the moment to return
  // a burst's memory to the system.
  CallGate(std::string what, uint32_t running_max, uint32_t waiting_max,
           std::function<void()> on_idle = {});

  // Held while a call runs; releasing it admits the next waiting call.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept : gate_(other.gate_) { other.gate_ = nullptr; }
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot();

   private:
    friend class CallGate;
    explicit Slot(CallGate* gate) : gate_(gate) {}
    CallGate* gate_ = nullptr;
  };

  // A slot now, or after waiting in line. RESOURCE_EXHAUSTED when the line is full;
  // CANCELLED when `cancelled()` turns true while waiting; DEADLINE_EXCEEDED at `deadline`.
  absl::StatusOr<Slot> Acquire(const std::function<bool()>& cancelled,
                               std::chrono::system_clock::time_point deadline =
                                   std::chrono::system_clock::time_point::max());

  uint32_t running();
  uint32_t waiting();

 private:
  void Release();

  const std::string what_;
  const uint32_t running_max_;
  const uint32_t waiting_max_;
  const std::function<void()> on_idle_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint32_t running_ = 0;
  std::list<uint64_t> line_;    // waiting callers' tickets, FIFO: the head runs next
  std::set<uint64_t> granted_;  // tickets handed a released slot, not yet awake
  uint64_t next_ticket_ = 0;
};

}  // namespace rauha
