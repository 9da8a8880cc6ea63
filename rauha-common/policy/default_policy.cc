#include <cstdio>
#include <cstdlib>

#include "rauha-common/policy/policy.h"
#include "rauha-common/strcat.h"

namespace rauha::policy {
namespace {

// Must stay identical in meaning to policies/standard.toml; policy_test.cc compares them.
constexpr std::string_view kDefaultPolicyToml = R"toml(
[zone]
name = "standard"
type = "non-global"
userns = true

[capabilities]
allowed = [
    "CAP_NET_BIND_SERVICE",
    "CAP_CHOWN",
    "CAP_SETUID",
    "CAP_SETGID",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_KILL",
]

[resources]
cpu_shares = 1024
memory_limit = "4Gi"
io_weight = 100
pids_max = 512

[network]
mode = "isolated"
allowed_zones = []
allowed_egress = []
allowed_ingress = []

[filesystem]
shared_layers = true
writable_paths = ["/tmp", "/var/tmp"]

[devices]
allowed = []

[syscalls]
deny = ["mount", "umount2", "pivot_root", "kexec_load", "reboot"]
)toml";

}  // namespace

const Policy& DefaultPolicy() {
  static const Policy* const policy = [] {
    // Over an empty base: this is the policy others take their left-out keys from.
    auto parsed =
        internal::ParsePolicyOver(kDefaultPolicyToml, "<built-in default policy>", {}, nullptr);
    if (!parsed.ok()) {
      // Only a build whose libseccomp lacks a syscall the default names can get here.
      std::fprintf(stderr, "rauha: the built-in default policy is invalid: %s\n",
                   ToStd(parsed.status().message()).c_str());
      std::abort();
    }
    return new Policy(*std::move(parsed));
  }();
  return *policy;
}

}  // namespace rauha::policy
