#include "containerd-shim-rauha-v2/log.h"

#include <unistd.h>

namespace rauha::cshim {

void Log(const std::string& line) {
  std::string out = "containerd-shim-rauha-v2[" + std::to_string(::getpid()) + "]: " + line + "\n";
  (void)!::write(STDERR_FILENO, out.data(), out.size());
}

}  // namespace rauha::cshim
