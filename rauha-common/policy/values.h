// Checks for single policy values, independent of TOML: each returns the normalised value
// or InvalidArgument saying what is wrong and what is allowed (no field name, no location;
// the parser adds both).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace rauha::policy::internal {

// Absolute, no ".." component, no NUL, at most PATH_MAX; "//", "/./" and a trailing '/'
// are folded: "/var//log/" -> "/var/log".
absl::StatusOr<std::string> NormaliseWritablePath(std::string_view path);

// As NormaliseWritablePath, and below /dev/: "/dev/null".
absl::StatusOr<std::string> NormaliseDevicePath(std::string_view path);

// A name libseccomp resolves on this machine's native architecture ("mount", "umount2").
absl::Status ValidateSyscallName(std::string_view name);

// One of KnownCapabilities() ("CAP_CHOWN").
absl::Status ValidateCapabilityName(std::string_view name);

}  // namespace rauha::policy::internal
