// Where libbpf's messages go. Warnings reach rauhad's log (stderr) as "rauhad: libbpf: ...";
// debug lines are dropped; libbpf 1.1's "try raising RLIMIT_MEMLOCK / ulimit -l" hint is wrong
// on kernels >= 5.11 (memory is charged to the cgroup) and is never shown. While a
// LibbpfCapture is alive on a thread, that thread's messages are collected instead (start-up
// probes, whose expected failures are summarised rather than printed).
#pragma once

#include <string>
#include <vector>

namespace rauha::bpf {

// Idempotent; safe from any thread.
void InstallLibbpfLog();

class LibbpfCapture {
 public:
  LibbpfCapture();
  ~LibbpfCapture();
  LibbpfCapture(const LibbpfCapture&) = delete;
  LibbpfCapture& operator=(const LibbpfCapture&) = delete;
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  std::vector<std::string> lines_;
  std::vector<std::string>* previous_;
};

// True for libbpf lines that only give the misleading memlock advice.
bool IsMemlockHint(const std::string& line);

}  // namespace rauha::bpf
