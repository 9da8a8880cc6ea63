#include "rauhad/isolation_checks.h"

#include <arpa/inet.h>

#include <map>

#include "rauha-common/strcat.h"

namespace rauha {
namespace {

// Per probe: words one of which an event's object or hook holds when the attempt caused it.
const std::map<std::string, std::vector<std::string>>& EventKeys() {
  static const auto* keys = new std::map<std::string, std::vector<std::string>>{
      {"mount", {"mount"}},
      {"namespace", {"unshare", "clone", "userns_create"}},
      {"setns", {"setns"}},
      {"bpf", {"bpf"}},
      {"perf_event_open", {"perf_event_open"}},
      {"kernel_module", {"init_module", "kernel_read_file", "kernel_load_data"}},
      {"keyring", {"add_key", "keyctl"}},
      {"filesystem.write", {"file_open", "/etc/.rauha-probe", "/usr/.rauha-probe"}},
      {"signal.init", {"task_kill", "signal"}},
      {"ptrace.init", {"ptrace"}},
      {"network.egress", {"connect", "192.0.2.1"}},
      {"network.raw_socket", {"sock_create"}},
      {"sysctl.write", {"sysctl"}},
      {"device.mknod", {"cgroup/dev", "mknod"}},
      {"cgroup.escape", {"cgroup.procs"}},
  };
  return *keys;
}

std::string LayerFromErrno(const std::string& err) {
  if (err == "EROFS") return "namespace (read-only mount; no event)";
  if (err == "ENOENT") return "namespace (not in the task's root; no event)";
  if (err == "ENETUNREACH" || err == "EHOSTUNREACH") return "namespace (no route; no event)";
  if (err == "EPERM" || err == "EACCES") return "capabilities or landlock (no event)";
  return "unknown (no event)";
}

// The egress probe's target (rauha-shim/probe.cc).
constexpr char kEgressProbeAddress[] = "192.0.2.1";
constexpr uint16_t kEgressProbePort = 9;

// The allowed_egress rule that covers the egress probe's target, or nullptr.
const policy::NetRule* EgressRuleCoveringProbe(const policy::Policy& pol) {
  in_addr target{};
  ::inet_pton(AF_INET, kEgressProbeAddress, &target);
  for (const auto& r : pol.network.allowed_egress) {
    if (r.family != 4 || (r.port != 0 && r.port != kEgressProbePort)) continue;
    in_addr net{};
    if (::inet_pton(AF_INET, r.address.c_str(), &net) != 1) continue;
    uint32_t mask = r.prefix_len == 0 ? 0 : htonl(~uint32_t{0} << (32 - r.prefix_len));
    if ((target.s_addr & mask) == (net.s_addr & mask)) return &r;
  }
  return nullptr;
}

// Why the policy itself allows what probe `name` attempts ("" when it does not).
std::string AllowedByPolicy(const std::string& name, const policy::Policy& pol) {
  auto has_cap = [&](std::string_view cap) {
    for (const auto& c : pol.capabilities.allowed)
      if (c == cap) return true;
    return false;
  };
  if (name == "network.raw_socket" && has_cap("CAP_NET_RAW"))
    return "[capabilities].allowed has CAP_NET_RAW";
  if (name == "network.egress" && pol.network.mode == policy::NetworkMode::kHost)
    return "the zone uses the host network";
  if (name == "network.egress" && pol.network.mode == policy::NetworkMode::kBridged) {
    if (const policy::NetRule* r = EgressRuleCoveringProbe(pol))
      return StrCat("allowed_egress has ", r->text, ", which covers ", kEgressProbeAddress, ":",
                    kEgressProbePort);
  }
  if (name == "filesystem.write") {
    for (const auto& w : pol.filesystem.writable_paths)
      if (w == "/" || w == "/etc" || w == "/usr") return StrCat("writable_paths has ", w);
  }
  return "";
}

}  // namespace

std::vector<std::string> ProbesToSkip(const policy::Policy& policy) {
  if (AllowedByPolicy("network.egress", policy).empty()) return {};
  return {"network.egress"};
}

std::vector<IsolationCheckView> ProbeChecks(const ProbeOutcome& outcome,
                                            const policy::Policy& policy) {
  std::vector<IsolationCheckView> checks;
  for (const auto& p : outcome.probes) {
    if (std::string why = AllowedByPolicy(p.name, policy); !why.empty()) {
      checks.push_back({StrCat("try.", p.name), true,
                        StrCat("not a refusal to check: the policy allows it (", why, "); ",
                               p.skipped   ? "not attempted, nothing sent"
                               : p.refused ? StrCat("refused anyway: ", p.detail)
                                           : StrCat("it succeeded: ", p.detail))});
      continue;
    }
    std::string layer;
    auto keys = EventKeys().find(p.name);
    if (keys != EventKeys().end()) {
      for (const auto& e : outcome.events) {
        for (const auto& k : keys->second) {
          if (e.object.find(k) != std::string::npos || e.hook.find(k) != std::string::npos) {
            layer = StrCat(e.layer, " (", e.hook, " event)");
            break;
          }
        }
        if (!layer.empty()) break;
      }
    }
    if (layer.empty() && p.refused) layer = LayerFromErrno(p.errno_name);
    std::string detail = p.refused ? StrCat("refused by ", layer, ": ", p.detail)
                                   : StrCat("NOT refused: ", p.detail);
    checks.push_back({StrCat("try.", p.name), p.refused, std::move(detail)});
  }
  return checks;
}

}  // namespace rauha
