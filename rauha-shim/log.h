// Log lines for the shim: "<UTC time> rauha-shim[<zone>]: <message>\n" on stderr, or appended
// to the --log file, which is created with the first line (a shim that logs nothing, as on a
// sandbox call that goes well, leaves no file). No buffering: each line is one writev.
#pragma once

#include <string_view>

namespace rauha::shim {

// Where log lines go from now on; "" keeps stderr. The file is opened (created) at the first
// line; if that fails, lines go to stderr.
void SetLogFile(std::string_view path, std::string_view zone);
void Log(std::string_view message);

}  // namespace rauha::shim
