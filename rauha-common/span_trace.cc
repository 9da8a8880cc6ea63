#include "rauha-common/span_trace.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace rauha {

namespace {
thread_local SpanTrace* current = nullptr;
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
  for (const auto& [step, ms] : steps_) {
    std::snprintf(buf, sizeof(buf), "; %s %.3f", step, ms);
    line += buf;
  }
  line += "\n";
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
