// Zone policy: the TOML file format of API.md, loaded into a validated model.
//
// Tables, in canonical order, and their keys (every key optional unless noted):
//   [zone]          name (string), type ("non-global" | "privileged")
//   [admission]     mode ("enforce" | "audit")   -- ours; "audit" admits a zone whose controls
//                                                   cannot all be enforced, reporting the gap
//   [capabilities]  allowed ([CAP_* names])
//   [resources]     cpu_shares (int 2..262144), memory_limit ("4Gi", "512Mi", "1G", bytes as
//                   int or string), io_weight (int 1..10000), pids_max (int >= 1)
//   [network]       mode ("isolated" | "bridged" | "host"), allowed_zones ([zone names]),
//                   allowed_egress / allowed_ingress (["CIDR:port"], port 0 = any)
//   [filesystem]    root (string), shared_layers (bool), writable_paths ([absolute paths])
//   [devices]       allowed (["/dev/..."])
//   [exec]          allowed / denied ([absolute path prefixes]) -- ours; a program may be
//                   executed only beneath an allowed prefix (empty: anywhere) and never beneath
//                   a denied one ("/usr/bin/curl" denies that file, "/opt/tools" a tree)
//   [syscalls]      deny ([syscall names known to libseccomp])
// Lists keep the order written; duplicates are dropped (after normalising paths and rules).
// Unknown tables or keys, wrong types and bad values are errors that name the source, line
// and column: "standard.toml:12:15: resources.pids_max must be at least 1, got 0".
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace rauha::policy {

enum class ZoneType { kNonGlobal, kPrivileged };
enum class NetworkMode { kIsolated, kBridged, kHost };
enum class AdmissionMode { kEnforce, kAudit };

// "CIDR:port": 10.0.0.0/8:443, 0.0.0.0/0:0, [::]/0:443 or ::/0:443 (IPv6 may be bracketed).
// A bare address is one host: "10.0.0.1:80" is 10.0.0.1/32:80, "[::1]:80" is [::1]/128:80
// (an IPv6 address without a prefix must be bracketed). Host bits beyond the prefix
// ("10.0.0.1/8:80") are refused, as is a missing port. Canonical text: "10.0.0.0/8:443",
// "[::]/0:443".
struct NetRule {
  std::string text;     // as written, canonicalised ("10.0.0.0/8:443")
  int family = 4;       // 4 or 6
  std::string address;  // network address, e.g. "10.0.0.0"
  int prefix_len = 0;
  uint16_t port = 0;  // 0 = any
};

struct Policy {
  struct Zone {
    std::string name;
    ZoneType type = ZoneType::kNonGlobal;
  } zone;
  struct Admission {
    AdmissionMode mode = AdmissionMode::kEnforce;
  } admission;
  struct Capabilities {
    std::vector<std::string> allowed;  // upper-case CAP_* names, as given (duplicates removed)
  } capabilities;
  struct Resources {
    std::optional<uint64_t> cpu_shares;
    std::optional<uint64_t> memory_limit_bytes;
    std::string memory_limit_text;  // as written ("4Gi"), for canonical output
    std::optional<uint32_t> io_weight;
    std::optional<uint64_t> pids_max;
  } resources;
  struct Network {
    NetworkMode mode = NetworkMode::kIsolated;
    std::vector<std::string> allowed_zones;
    std::vector<NetRule> allowed_egress;
    std::vector<NetRule> allowed_ingress;
  } network;
  struct Filesystem {
    std::string root;
    bool shared_layers = true;
    std::vector<std::string> writable_paths;  // absolute, normalised ("/var/log")
  } filesystem;
  struct Devices {
    std::vector<std::string> allowed;  // "/dev/null", ...
  } devices;
  struct Syscalls {
    std::vector<std::string> deny;
  } syscalls;
  struct Exec {
    std::vector<std::string> allowed;  // absolute, normalised prefixes; empty: anywhere
    std::vector<std::string> denied;
  } exec;
};

// The largest policy text accepted (a real one is 1-2 KB).
inline constexpr size_t kMaxPolicyBytes = 64 * 1024;

// Parses and validates a policy. `source` names it in errors (a file path, or "<inline>").
// Errors are InvalidArgument: "<source>:<line>:<column>: <what is wrong and what is allowed>".
// Before the TOML parser sees the text (prescan.h): at most kMaxPolicyBytes, keys of at most
// 8 dotted parts, arrays and inline tables nested at most 8 deep, and no code point of
// U+00A1..U+0499, U+2C5E..U+3057 and U+FB26..U+FEFE anywhere, comments included (toml++ 3.3
// overflows its stack on deep keys and has undefined behaviour on those code points); inside
// strings they can be written as \u escapes.
absl::StatusOr<Policy> ParsePolicy(std::string_view toml, std::string_view source = "<inline>");

// Reads `path` and parses it; a missing or unreadable file is InvalidArgument too.
absl::StatusOr<Policy> LoadPolicyFile(const std::string& path);

// Canonical TOML in the layout of the shipped presets: tables in the order documented above,
// `key = value` with one space each side, arrays of strings on one line. Parsing the output
// gives back an equal policy.
std::string ToCanonicalToml(const Policy& policy);

// "4Gi" -> 4294967296, "512Mi", "64Ki", "1G" (10^9), "500M", "1K", "1024". Rejects 0,
// negatives, overflow and unknown suffixes with InvalidArgument.
absl::StatusOr<uint64_t> ParseMemorySize(std::string_view text);

absl::StatusOr<NetRule> ParseNetRule(std::string_view text);

std::string_view ToString(ZoneType type);       // "non-global" | "privileged"
std::string_view ToString(NetworkMode mode);    // "isolated" | "bridged" | "host"
std::string_view ToString(AdmissionMode mode);  // "enforce" | "audit"

// The policy used when a zone is created without one (what policies/standard.toml says):
// isolated network, the standard capability set and limits. Always valid on this machine.
const Policy& DefaultPolicy();

// Every CAP_* name this build knows, in kernel order (CAP_CHOWN = 0, ...).
const std::vector<std::string_view>& KnownCapabilities();

// The number of a known capability name ("CAP_KILL" -> 5), nullopt for anything else.
std::optional<int> CapabilityNumber(std::string_view name);

}  // namespace rauha::policy
