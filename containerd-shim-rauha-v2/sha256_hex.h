// SHA-256 as lowercase hex, for the names the shim derives (its socket path, exec process ids).
#pragma once

#include <string>
#include <string_view>

namespace rauha::cshim {

std::string Sha256Hex(std::string_view bytes);

}  // namespace rauha::cshim
