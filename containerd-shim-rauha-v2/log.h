// The shim's log: lines to stderr, which `serve` points at <bundle>/shim.log (containerd
// reads nothing from a daemonized shim's stdio).
#pragma once

#include <string>

namespace rauha::cshim {

void Log(const std::string& line);

}  // namespace rauha::cshim
