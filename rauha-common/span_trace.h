// Timing spans of one request, for finding where a call's time goes (eval/bench/README.md,
// "Where a pooled sandbox call's time goes"). Off unless the process was started with
// RAUHA_TRACE_SPANS=1 in its environment: then each SpanTrace prints one line to stderr when it
// ends, "<who> spans <what>: total T ms; step1 a; step2 b; ...", each step's time being since
// the previous mark (or the start); with RAUHA_TRACE_SPANS_FILE=/path, appended to that file
// instead. Off, a mark costs one branch. RAUHA_TRACE_SPANS_CPU=1 adds each step's CPU time.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace rauha {

class SpanTrace {
 public:
  // `who` and `what` name the process and the request ("rauhad", "RunSandbox <task id>").
  SpanTrace(std::string who, std::string what);
  ~SpanTrace();
  SpanTrace(const SpanTrace&) = delete;
  SpanTrace& operator=(const SpanTrace&) = delete;

  void Mark(const char* step);
  // A step that ended at `at` (taken by another process on the same steady clock).
  void MarkAt(const char* step, std::chrono::steady_clock::time_point at);
  // Marks the innermost SpanTrace alive on this thread, if any (for code the trace's owner
  // calls, without passing it along).
  static void MarkCurrent(const char* step);
  static void MarkCurrentAt(const char* step, std::chrono::steady_clock::time_point at);
  // Adds `ms` to the tally `name` of the innermost SpanTrace of this thread: time spent in
  // something that happens inside several steps (an audit record's signature), printed after
  // the steps as "; tally_<name> T" (it does not move the marks).
  static void TallyCurrent(const char* name, double ms);
  bool enabled() const { return enabled_; }
  // Whether RAUHA_TRACE_SPANS=1 was set at the first call (read once per process).
  static bool Enabled();

 private:
  bool enabled_;
  std::string who_, what_;
  std::chrono::steady_clock::time_point start_, last_;
  std::vector<std::pair<const char*, double>> steps_;    // ms
  std::vector<std::pair<const char*, double>> tallies_;  // ms
  // With RAUHA_TRACE_SPANS_CPU=1 too: this thread's CPU time per step, printed as a second
  // line "<who> spans <what>_cpu: ..." (what of each step was CPU and what was waiting).
  bool cpu_ = false;
  double cpu_start_ = 0, cpu_last_ = 0;
  std::vector<std::pair<const char*, double>> cpu_steps_;  // ms
  SpanTrace* outer_ = nullptr;
};

}  // namespace rauha
