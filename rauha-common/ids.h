// Random identifiers for zones and tasks (RFC 4122 version-4 UUID text, from getrandom).
#pragma once

#include <string>

namespace rauha {

std::string NewUuid();

}  // namespace rauha
