// Log lines for the shim: "<UTC time> rauha-shim[<zone>]: <message>\n" on stderr, or appended
// to the --log file. rauhad gives the shim a log file as stderr, so no buffering is needed.
#pragma once

#include <string_view>

namespace rauha::shim {

// Where log lines go from now on; "" keeps stderr. Returns false if the file cannot be opened
// (lines then stay on stderr).
bool OpenLog(std::string_view path, std::string_view zone);
void Log(std::string_view message);

}  // namespace rauha::shim
