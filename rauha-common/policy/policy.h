// Zone policy: the TOML file format of API.md, loaded into a validated model.
//
// Tables, in canonical order, and their keys. Every table and key is optional: one left out
// takes the default policy's value (policies/standard.toml, built in as DefaultPolicy()),
// shown after "default", so that no zone is unbounded by accident. A list written replaces
// the default's list (it does not add to it).
//   [zone]          name (string; default "": the one key not taken from the default)
//                   type ("non-global" | "privileged"; default "non-global")
//                   userns (bool; default true) -- ours; the zone runs in its own user
//                   namespace (root inside is an unprivileged host id) where the kernel allows;
//                   privileged zones never do. Written in canonical TOML only when false.
//   [admission]     mode ("enforce" | "audit"; default "enforce") -- ours; "audit" admits a
//                   zone whose controls cannot all be enforced, reporting the gap
//   [capabilities]  allowed ([CAP_* names]; default CAP_NET_BIND_SERVICE, CAP_CHOWN,
//                   CAP_SETUID, CAP_SETGID, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_KILL: not
//                   CAP_NET_RAW, as in Podman and Kubernetes' restricted profile; ping works
//                   through ICMP sockets, net.ipv4.ping_group_range being open in the zone's
//                   own network namespace)
//   [resources]     cpu_shares (int 2..262144; default 1024), memory_limit ("4Gi", "512Mi",
//                   "1G", bytes as int or string, or "max" = unbounded; default "4Gi"),
//                   io_weight (int 1..10000; default 100), pids_max (int >= 1 or "max";
//                   default 512), cpu_quota_us (int 1000..2^40 or "max"; default "max": the
//                   zone's CPU time per cpu_period_us) and cpu_period_us (int
//                   1000..1000000; default 100000) -- ours; written only when a quota is set
//   [network]       mode ("isolated" | "bridged" | "host"; default "isolated"), allowed_zones
//                   ([zone names]), allowed_egress / allowed_ingress (["CIDR:port"], or
//                   "CIDR" / an address without a port = every port; port 0 = every port);
//                   each default []. "host" only with [zone] type = "privileged".
//                   allowed_hosts ([host rules]; default []) -- ours; names the egress proxy
//                   lets the zone reach. egress_bytes_max (bytes as int, a size string "1Gi",
//                   or "max" = unbounded; default "max") -- ours; what the egress proxy relays
//                   for the zone in all, both directions: past it the zone's proxy
//                   connections are closed and new ones refused. Written only when set.
//   [filesystem]    root (string; default ""), shared_layers (bool; default true),
//                   writable_paths ([absolute paths]; default ["/tmp", "/var/tmp"])
//   [devices]       allowed (["/dev/..."]; default []) -- added to BaselineDevices(), which
//                   every zone has whatever its policy says
//   [exec]          allowed / denied ([absolute path prefixes]; default []) -- ours; a program
//                   may be executed only beneath an allowed prefix (empty: anywhere) and never
//                   beneath a denied one ("/usr/bin/curl" denies that file, "/opt/tools" a tree)
//   [syscalls]      deny ([syscall names known to libseccomp]; default mount, umount2,
//                   pivot_root, kexec_load, reboot)
//   [secrets.NAME]  -- ours; one table per secret rauhad stores (`rauha secret set NAME`):
//                   hosts ([host rules as allowed_hosts], required, each reachable through
//                   [network] allowed_hosts), header (an HTTP header name; default
//                   "Authorization"), format (the header's value, "{}" once where the secret
//                   goes; default "Bearer {}"). Tasks get NAME=<a placeholder>; the egress proxy
//                   puts the secret in that header for those hosts only. Default: none.
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
// Without ":port" (or with port 0) a rule covers every port and protocol: "0.0.0.0/0",
// "10.1.2.3", "::/0", "[2001:db8::1]". A bare address is one host: "10.0.0.1:80" is
// 10.0.0.1/32:80, "[::1]:80" is [::1]/128:80 (an IPv6 address without a prefix must be
// bracketed: "::1:80" could be either). Host bits beyond the prefix ("10.0.0.1/8:80") are
// refused. Canonical text: "10.0.0.0/8:443", "[::]/0:0".
struct NetRule {
  std::string text;     // as written, canonicalised ("10.0.0.0/8:443")
  int family = 4;       // 4 or 6
  std::string address;  // network address, e.g. "10.0.0.0"
  int prefix_len = 0;
  uint16_t port = 0;  // 0 = any
};

// [network] allowed_hosts: a host name the egress proxy may connect to, "pypi.org:443",
// "*.githubusercontent.com:443" (any name below it, not itself), "api.example.com" (ports 80 and
// 443), or an address: IPv4 ("169.254.169.254:80") or IPv6 in brackets ("[fd00::1]:443"); a
// rule naming an address is the only way to let the proxy reach one it otherwise refuses. Names
// are lower-cased; canonical text "name:port" or "name", "[v6]:port" or "[v6]" (host: the
// address in inet_ntop's canonical text, without brackets).
struct HostRule {
  std::string text;  // canonical
  std::string host;  // lower case, without "*."
  bool wildcard = false;
  uint16_t port = 0;  // 0 = 80 and 443
};

// [secrets.NAME]: what the egress proxy does with a stored secret for this zone's tasks.
struct SecretRule {
  std::string name;  // ValidateSecretName; the tasks' environment variable
  std::vector<HostRule> hosts;
  std::string header = "Authorization";
  std::string format = "Bearer {}";  // exactly one "{}"
};

struct Policy {
  struct Zone {
    std::string name;
    ZoneType type = ZoneType::kNonGlobal;
    bool userns = true;
  } zone;
  struct Admission {
    AdmissionMode mode = AdmissionMode::kEnforce;
  } admission;
  struct Capabilities {
    std::vector<std::string> allowed;  // upper-case CAP_* names, as given (duplicates removed)
  } capabilities;
  // After ParsePolicy every field is set except an unbounded memory_limit or pids_max
  // ("max"), which is nullopt.
  struct Resources {
    std::optional<uint64_t> cpu_shares;
    std::optional<uint64_t> memory_limit_bytes;  // nullopt: unbounded ("max")
    std::string memory_limit_text;               // as written ("4Gi"), for canonical output
    std::optional<uint32_t> io_weight;
    std::optional<uint64_t> pids_max;      // nullopt: unbounded ("max")
    std::optional<uint64_t> cpu_quota_us;  // nullopt: no quota ("max")
    uint64_t cpu_period_us = 100000;
  } resources;
  struct Network {
    NetworkMode mode = NetworkMode::kIsolated;
    std::vector<std::string> allowed_zones;
    std::vector<NetRule> allowed_egress;
    std::vector<NetRule> allowed_ingress;
    std::vector<HostRule> allowed_hosts;
    std::optional<uint64_t> egress_bytes_max;  // nullopt: unbounded ("max")
    std::string egress_bytes_max_text;         // as written ("1Gi"), for canonical output
  } network;
  struct Filesystem {
    std::string root;
    bool shared_layers = true;
    std::vector<std::string> writable_paths;  // absolute, normalised ("/var/log")
  } filesystem;
  struct Devices {
    std::vector<std::string> allowed;  // BaselineDevices() first, then the policy's own
  } devices;
  struct Syscalls {
    std::vector<std::string> deny;
  } syscalls;
  struct Exec {
    std::vector<std::string> allowed;  // absolute, normalised prefixes; empty: anywhere
    std::vector<std::string> denied;
  } exec;
  std::vector<SecretRule> secrets;  // by name
};

// A header name (an HTTP token: letters, digits and !#$%&'*+-.^_`|~), at most 64 bytes.
absl::Status ValidateHeaderName(std::string_view name);
// A [secrets] format: printable ASCII or tab, at most 1024 bytes, "{}" exactly once.
absl::Status ValidateSecretFormat(std::string_view format);

// Where the zone a policy is for has its network, which decides whether its [network] rules
// can take effect (the warnings of ParsePolicy). Only rauhad knows it, per zone.
enum class NetworkPlacement {
  // A network namespace of the zone's own (isolated, bridged) or the host's: the rules act
  // per network.mode, only in a bridged zone.
  kOwn,
  // A network namespace the zone joined (CreateZoneRequest.network_namespace: a Kubernetes
  // pod's, made by CNI), with mode "isolated": rauhad enforces allowed_ingress and
  // allowed_zones in the zone's nftables table inside that namespace and allowed_egress through
  // cgroup-bpf, so none of them is without effect there.
  kJoined,
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
// `warnings`, when given, receives located notes about what the policy states but cannot
// take effect ("<source>:5:18: network.allowed_egress has no effect: ...") in a zone whose
// network is `placement`; the policy is valid all the same.
absl::StatusOr<Policy> ParsePolicy(std::string_view toml, std::string_view source = "<inline>",
                                   std::vector<std::string>* warnings = nullptr,
                                   NetworkPlacement placement = NetworkPlacement::kOwn);

// Reads `path` and parses it; a missing or unreadable file is InvalidArgument too.
absl::StatusOr<Policy> LoadPolicyFile(const std::string& path,
                                      std::vector<std::string>* warnings = nullptr,
                                      NetworkPlacement placement = NetworkPlacement::kOwn);

// Canonical TOML in the layout of the shipped presets: tables in the order documented above,
// `key = value` with one space each side, arrays of strings on one line. Parsing the output
// gives back an equal policy.
std::string ToCanonicalToml(const Policy& policy);

// "4Gi" -> 4294967296, "512Mi", "64Ki", "1G" (10^9), "500M", "1K", "1024". Rejects 0,
// negatives, overflow and unknown suffixes with InvalidArgument.
absl::StatusOr<uint64_t> ParseMemorySize(std::string_view text);

absl::StatusOr<NetRule> ParseNetRule(std::string_view text);
absl::StatusOr<HostRule> ParseHostRule(std::string_view text);
// `host` (lower case) on `port` is what `rule` allows.
bool HostRuleAllows(const HostRule& rule, std::string_view host, uint16_t port);

std::string_view ToString(ZoneType type);       // "non-global" | "privileged"
std::string_view ToString(NetworkMode mode);    // "isolated" | "bridged" | "host"
std::string_view ToString(AdmissionMode mode);  // "enforce" | "audit"

// The policy used when a zone is created without one (what policies/standard.toml says):
// isolated network, the standard capability set and limits. Always valid on this machine.
// Its values are also what every policy gets for the keys it leaves out.
const Policy& DefaultPolicy();

// The devices every zone has, as OCI runtimes give every container: /dev/null, zero, full,
// random, urandom, tty, and a private /dev/pts with /dev/ptmx. The shim's /dev and the
// cgroup-bpf device program both follow Policy::devices.allowed, which starts with these.
const std::vector<std::string>& BaselineDevices();

namespace internal {
// ParsePolicy, taking the keys left out from `base` (DefaultPolicy() parses over Policy{}).
absl::StatusOr<Policy> ParsePolicyOver(std::string_view toml, std::string_view source,
                                       const Policy& base, std::vector<std::string>* warnings,
                                       NetworkPlacement placement = NetworkPlacement::kOwn);
}  // namespace internal

// Every CAP_* name this build knows, in kernel order (CAP_CHOWN = 0, ...).
const std::vector<std::string_view>& KnownCapabilities();

// The number of a known capability name ("CAP_KILL" -> 5), nullopt for anything else.
std::optional<int> CapabilityNumber(std::string_view name);

}  // namespace rauha::policy
