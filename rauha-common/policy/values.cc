#include "rauha-common/policy/values.h"

#include <linux/limits.h>
#include <seccomp.h>

#include "rauha-common/policy/policy.h"
#include "rauha-common/strcat.h"

namespace rauha::policy::internal {
namespace {

absl::StatusOr<std::string> NormalisePath(std::string_view path, std::string_view kind) {
  auto fail = [&](std::string_view what) {
    return absl::InvalidArgumentError(StrCat(kind, " \"", path, "\" ", what));
  };
  if (path.find('\0') != std::string_view::npos) return fail("contains NUL");
  if (path.empty() || path[0] != '/') return fail("is not absolute; it must start with '/'");
  if (path.size() >= PATH_MAX) return fail(StrCat("is longer than ", PATH_MAX - 1, " bytes"));
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t end = path.find('/', i);
    if (end == std::string_view::npos) end = path.size();
    std::string_view part = path.substr(i, end - i);
    i = end;
    if (part.empty() || part == ".") continue;
    // ".." is refused, not resolved: after bind mounts and symlinks in the image its
    // target is not what the text suggests.
    if (part == "..") return fail("contains \"..\"; write the path without it");
    out += StrCat("/", part);
  }
  // Not `out = "/"`: GCC 12 warns falsely (-Wrestrict, PR 105329) on that assignment.
  if (out.empty()) return std::string(1, '/');
  return out;
}

}  // namespace

absl::StatusOr<std::string> NormaliseWritablePath(std::string_view path) {
  return NormalisePath(path, "path");
}

absl::StatusOr<std::string> NormaliseDevicePath(std::string_view path) {
  auto normal = NormalisePath(path, "device");
  if (!normal.ok()) return normal.status();
  if (normal->size() <= 5 || normal->compare(0, 5, "/dev/") != 0) {
    return absl::InvalidArgumentError(StrCat(
        "device \"", path, "\" is not under /dev/; write a device node such as \"/dev/null\""));
  }
  return normal;
}

absl::Status ValidateSyscallName(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("syscall name is empty");
  if (name.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(StrCat("syscall name \"", name, "\" contains NUL"));
  }
  std::string copy(name);
  if (seccomp_syscall_resolve_name(copy.c_str()) == __NR_SCMP_ERROR) {
    return absl::InvalidArgumentError(
        StrCat("unknown syscall \"", name,
               "\"; use a Linux syscall name libseccomp knows, such as \"mount\" or \"ptrace\""));
  }
  return absl::OkStatus();
}

absl::Status ValidateCapabilityName(std::string_view name) {
  if (CapabilityNumber(name)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      StrCat("unknown capability \"", name,
             "\"; use an upper-case name of linux/capability.h such as \"CAP_CHOWN\" or "
             "\"CAP_NET_BIND_SERVICE\""));
}

}  // namespace rauha::policy::internal
