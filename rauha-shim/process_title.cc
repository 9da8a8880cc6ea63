#include "rauha-shim/process_title.h"

#include <sys/prctl.h>

#include <algorithm>
#include <cstring>

namespace rauha::shim {
namespace {

char* area_start = nullptr;
size_t area_size = 0;

}  // namespace

void RememberArgvArea(int argc, char** argv) {
  if (argc <= 0 || argv[0] == nullptr) return;
  area_start = argv[0];
  char* end = argv[0] + std::strlen(argv[0]) + 1;
  // The kernel lays the strings out back to back; stop at anything else rather than write
  // over memory that is not ours.
  for (int i = 1; i < argc && argv[i] == end; ++i) end += std::strlen(argv[i]) + 1;
  area_size = static_cast<size_t>(end - area_start);
}

void SetProcessTitle(const char* title) {
  if (area_start != nullptr) {
    size_t n = std::min(std::strlen(title), area_size - 1);
    std::memcpy(area_start, title, n);
    // The last byte stays NUL, so /proc/<pid>/cmdline ends at the area's end (the kernel
    // reads on into the environment only when that byte is not NUL).
    std::memset(area_start + n, 0, area_size - n);
  }
  ::prctl(PR_SET_NAME, title, 0, 0, 0);
}

}  // namespace rauha::shim
