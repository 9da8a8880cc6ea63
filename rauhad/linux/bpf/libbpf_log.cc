#include "rauhad/linux/bpf/libbpf_log.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <mutex>

namespace rauha::bpf {
namespace {

thread_local std::vector<std::string>* t_capture = nullptr;

int Print(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  // Verifier logs arrive as one message of many KiB.
  va_list again;
  va_copy(again, args);
  int n = std::vsnprintf(nullptr, 0, format, again);
  va_end(again);
  if (n < 0) return 0;
  std::string line(static_cast<size_t>(n) + 1, '\0');
  std::vsnprintf(line.data(), line.size(), format, args);
  line.resize(static_cast<size_t>(n));
  while (!line.empty() && line.back() == '\n') line.pop_back();
  if (IsMemlockHint(line)) return 0;
  if (t_capture != nullptr) {
    t_capture->push_back(std::move(line));
    return 0;
  }
  std::fprintf(stderr, "rauhad: libbpf: %s\n", line.c_str());
  return 0;
}

}  // namespace

bool IsMemlockHint(const std::string& line) {
  return line.find("RLIMIT_MEMLOCK") != std::string::npos ||
         line.find("ulimit -l") != std::string::npos;
}

void InstallLibbpfLog() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(Print); });
}

LibbpfCapture::LibbpfCapture() : previous_(t_capture) { t_capture = &lines_; }
LibbpfCapture::~LibbpfCapture() { t_capture = previous_; }

}  // namespace rauha::bpf
