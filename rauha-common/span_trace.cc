#include "rauha-common/span_trace.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace rauha {

namespace {
thread_local SpanTrace* current = nullptr;

bool CpuEnabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("RAUHA_TRACE_SPANS_CPU");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return enabled;
}

double ThreadCpuMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

void Append(std::string& line, const std::vector<std::pair<const char*, double>>& steps,
            const char* prefix) {
  char buf[96];
  for (const auto& [step, ms] : steps) {
    std::snprintf(buf, sizeof(buf), "; %s%s %.3f", prefix, step, ms);
    line += buf;
  }
}
}  // namespace

bool SpanTrace::Enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("RAUHA_TRACE_SPANS");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return enabled;
}

SpanTrace::SpanTrace(std::string who, std::string what) : enabled_(Enabled()) {
  if (!enabled_) return;
  who_ = std::move(who);
  what_ = std::move(what);
  start_ = last_ = std::chrono::steady_clock::now();
  outer_ = current;
  current = this;
  cpu_ = CpuEnabled();
  if (cpu_) cpu_start_ = cpu_last_ = ThreadCpuMs();
}

void SpanTrace::TallyCurrent(const char* name, double ms) {
  SpanTrace* t = current;
  if (t == nullptr || !t->enabled_) return;
  for (auto& [n, total] : t->tallies_) {
    if (std::strcmp(n, name) == 0) {
      total += ms;
      return;
    }
  }
  t->tallies_.emplace_back(name, ms);
}

void SpanTrace::MarkCurrent(const char* step) {
  if (current != nullptr) current->Mark(step);
}

void SpanTrace::MarkCurrentAt(const char* step, std::chrono::steady_clock::time_point at) {
  if (current != nullptr) current->MarkAt(step, at);
}

void SpanTrace::Mark(const char* step) {
  if (!enabled_) return;
  MarkAt(step, std::chrono::steady_clock::now());
}

void SpanTrace::MarkAt(const char* step, std::chrono::steady_clock::time_point at) {
  if (!enabled_) return;
  steps_.emplace_back(step, std::chrono::duration<double, std::milli>(at - last_).count());
  last_ = at;
  if (cpu_) {
    double cpu = ThreadCpuMs();
    cpu_steps_.emplace_back(step, cpu - cpu_last_);
    cpu_last_ = cpu;
  }
}

SpanTrace::~SpanTrace() {
  if (!enabled_) return;
  if (current == this) current = outer_;
  auto now = std::chrono::steady_clock::now();
  std::string line = who_ + " spans " + what_ + ": total ";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.3f ms",
                std::chrono::duration<double, std::milli>(now - start_).count());
  line += buf;
  Append(line, steps_, "");
  Append(line, tallies_, "tally_");
  line += "\n";
  if (cpu_) {
    std::snprintf(buf, sizeof(buf), "%.3f ms", ThreadCpuMs() - cpu_start_);
    line += who_ + " spans " + what_ + "_cpu: total " + buf;
    Append(line, cpu_steps_, "");
    line += "\n";
  }
  // RAUHA_TRACE_SPANS_FILE: appended to that file (one write per line) rather than stderr, so
  // the lines of processes whose logs are removed with them (a zone's shim) are kept.
  static const char* file = std::getenv("RAUHA_TRACE_SPANS_FILE");
  if (file != nullptr && file[0] == '/') {
    int fd = ::open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
      (void)::write(fd, line.data(), line.size());
      ::close(fd);
      return;
    }
  }
  std::fputs(line.c_str(), stderr);
}

}  // namespace rauha
