// TOML -> Policy. The only file that includes toml++: it is compiled without exceptions
// (TOML_EXCEPTIONS 0 gives toml::parse_result), and that setting must not differ between
// translation units that include the header.
#define TOML_EXCEPTIONS 0
#include <toml++/toml.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <optional>

#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/names.h"
#include "rauha-common/policy/policy.h"
#include "rauha-common/policy/prescan.h"
#include "rauha-common/policy/values.h"
#include "rauha-common/strcat.h"

namespace rauha::policy {
namespace {

constexpr std::string_view kTables =
    "[zone], [admission], [capabilities], [resources], [network], [filesystem], [devices], "
    "[syscalls], [exec], [secrets.NAME]";

// The kernel refuses pids.max at or above PID_MAX_LIMIT + 1 (kernel/cgroup/pids.c).
constexpr int64_t kMaxPids = 4 * 1024 * 1024;

std::string_view TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

template <typename T>
void AppendUnique(std::vector<T>& list, T value) {
  if (std::find(list.begin(), list.end(), value) == list.end()) list.push_back(std::move(value));
}

class Parser {
 public:
  Parser(std::string_view source, const Policy& base, std::vector<std::string>* warnings,
         NetworkPlacement placement)
      : source_(source), policy_(base), warnings_(warnings), placement_(placement) {
    policy_.zone.name.clear();  // a label of the policy written, never inherited
  }

  absl::StatusOr<Policy> Parse(std::string_view text) {
    if (auto bad = internal::Prescan(text)) {
      return absl::InvalidArgumentError(
          StrCat(source_, ":", bad->line, ":", bad->column, ": ", bad->message));
    }
    toml::parse_result result = toml::parse(text, std::string(source_));
    if (!result) {
      const toml::parse_error& err = result.error();
      return Error(err.source(), StrCat("invalid TOML: ", std::string_view(err.description())));
    }
    const toml::table& root = result.table();
    // Tables first, then the checks that span tables ([network] may come before [zone]).
    for (auto&& [key, node] : root) {
      RAUHA_RETURN_IF_ERROR(ParseTable(key, node));
    }
    if (policy_.network.mode == NetworkMode::kHost && policy_.zone.type != ZoneType::kPrivileged) {
      return Error(host_mode_at_,
                   "network.mode \"host\" is only for privileged zones: on the host's network "
                   "a zone shares the host's interfaces, addresses, ports and loopback services, "
                   "and no zone network rule (nftables, cgroup-bpf) applies to it; use "
                   "\"isolated\", or \"bridged\" with allowed_egress rules, or set [zone] type = "
                   "\"privileged\" for a trusted workload");
    }
    RAUHA_RETURN_IF_ERROR(CheckSecretHosts());
    std::vector<std::string> devices = BaselineDevices();
    for (auto& d : policy_.devices.allowed) AppendUnique(devices, std::move(d));
    policy_.devices.allowed = std::move(devices);
    if (warnings_) WarnAboutRulesWithoutEffect();
    return std::move(policy_);
  }

 private:
  using Handler = std::function<absl::Status(const toml::node&, std::string_view field)>;

  absl::Status Error(const toml::source_region& where, std::string_view message) const {
    // toml++ positions are 1-based; 0 means "unknown", which only the document itself has.
    uint32_t line = std::max<uint32_t>(where.begin.line, 1);
    uint32_t column = std::max<uint32_t>(where.begin.column, 1);
    return absl::InvalidArgumentError(StrCat(source_, ":", line, ":", column, ": ", message));
  }

  absl::Status ParseTable(const toml::key& key, const toml::node& node) {
    const std::string_view name = key.str();
    std::map<std::string_view, Handler> handlers;
    if (name == "secrets") return SecretsTable(node);
    if (name == "zone") {
      handlers = {{"name", [this](auto& n, auto f) { return ZoneName(n, f); }},
                  {"type", [this](auto& n, auto f) { return ZoneTypeKey(n, f); }},
                  {"userns", [this](auto& n, auto f) { return Bool(n, f, policy_.zone.userns); }}};
    } else if (name == "admission") {
      handlers = {{"mode", [this](auto& n, auto f) { return AdmissionModeKey(n, f); }}};
    } else if (name == "capabilities") {
      handlers = {{"allowed", [this](auto& n, auto f) { return Capabilities(n, f); }}};
    } else if (name == "resources") {
      handlers = {{"cpu_shares",
                   [this](auto& n, auto f) {
                     return Integer(n, f, 2, 262144,
                                    [this](int64_t v) { policy_.resources.cpu_shares = v; });
                   }},
                  {"memory_limit", [this](auto& n, auto f) { return MemoryLimit(n, f); }},
                  {"io_weight",
                   [this](auto& n, auto f) {
                     return Integer(n, f, 1, 10000, [this](int64_t v) {
                       policy_.resources.io_weight = static_cast<uint32_t>(v);
                     });
                   }},
                  {"pids_max", [this](auto& n, auto f) { return PidsMax(n, f); }},
                  {"cpu_quota_us", [this](auto& n, auto f) { return CpuQuota(n, f); }},
                  {"cpu_period_us", [this](auto& n, auto f) {
                     return Integer(n, f, 1000, 1000000, [this](int64_t v) {
                       policy_.resources.cpu_period_us = static_cast<uint64_t>(v);
                     });
                   }}};
    } else if (name == "network") {
      handlers = {
          {"mode", [this](auto& n, auto f) { return NetworkModeKey(n, f); }},
          {"allowed_zones",
           [this](auto& n, auto f) {
             NoteRules(n, f);
             return AllowedZones(n, f);
           }},
          {"allowed_egress",
           [this](auto& n, auto f) { return Rules(n, f, policy_.network.allowed_egress); }},
          {"allowed_ingress",
           [this](auto& n, auto f) { return Rules(n, f, policy_.network.allowed_ingress); }},
          {"allowed_hosts", [this](auto& n, auto f) { return HostRules(n, f); }},
          {"egress_bytes_max", [this](auto& n, auto f) { return EgressBytesMax(n, f); }}};
    } else if (name == "filesystem") {
      handlers = {{"root", [this](auto& n, auto f) { return Root(n, f); }},
                  {"shared_layers", [this](auto& n, auto f) { return SharedLayers(n, f); }},
                  {"writable_paths", [this](auto& n, auto f) { return WritablePaths(n, f); }}};
    } else if (name == "devices") {
      handlers = {{"allowed", [this](auto& n, auto f) { return Devices(n, f); }}};
    } else if (name == "syscalls") {
      handlers = {{"deny", [this](auto& n, auto f) { return Syscalls(n, f); }}};
    } else if (name == "exec") {
      handlers = {
          {"allowed", [this](auto& n, auto f) { return ExecPaths(n, f, policy_.exec.allowed); }},
          {"denied", [this](auto& n, auto f) { return ExecPaths(n, f, policy_.exec.denied); }}};
    } else {
      return Error(key.source(), StrCat(node.is_table() ? "unknown table [" : "unknown key \"",
                                        name, node.is_table() ? "]" : "\"",
                                        "; a policy has only the tables ", kTables));
    }
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      return Error(node.source(),
                   StrCat("\"", name, "\" must be a table ([", name, "]), got ", TypeName(node)));
    }
    for (auto&& [k, v] : *table) {
      auto it = handlers.find(k.str());
      if (it == handlers.end()) {
        std::string allowed;
        for (const auto& [known, unused] : handlers) {
          if (!allowed.empty()) allowed += ", ";
          allowed += known;
        }
        return Error(k.source(),
                     StrCat("unknown key ", name, ".", k.str(), "; [", name, "] allows ", allowed));
      }
      RAUHA_RETURN_IF_ERROR(it->second(v, StrCat(name, ".", k.str())));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> String(const toml::node& node, std::string_view field) {
    const auto* s = node.as_string();
    if (s == nullptr) {
      return Error(node.source(), StrCat(field, " must be a string, got ", TypeName(node)));
    }
    return s->get();
  }

  // Calls `each` with every element of a string array, with its field name "x.y[i]".
  absl::Status StringArray(const toml::node& node, std::string_view field,
                           const std::function<absl::Status(const std::string&, const toml::node&,
                                                            std::string_view)>& each) {
    const toml::array* array = node.as_array();
    if (array == nullptr) {
      return Error(node.source(),
                   StrCat(field, " must be an array of strings, got ", TypeName(node)));
    }
    for (size_t i = 0; i < array->size(); ++i) {
      const toml::node& element = (*array)[i];
      std::string element_field = StrCat(field, "[", i, "]");
      RAUHA_ASSIGN_OR_RETURN(std::string value, String(element, element_field));
      RAUHA_RETURN_IF_ERROR(each(value, element, element_field));
    }
    return absl::OkStatus();
  }

  // A value check from values.h, located at `node`.
  absl::Status Check(const absl::Status& status, const toml::node& node, std::string_view field) {
    if (status.ok()) return status;
    return Error(node.source(), StrCat(field, ": ", ToStd(status.message())));
  }

  absl::Status Integer(const toml::node& node, std::string_view field, int64_t min, int64_t max,
                       const std::function<void(int64_t)>& set) {
    const auto* i = node.as_integer();
    if (i == nullptr) {
      return Error(node.source(), StrCat(field, " must be an integer, got ", TypeName(node)));
    }
    int64_t v = i->get();
    if (v < min || v > max) {
      return Error(node.source(),
                   StrCat(field, " must be ", v < min ? "at least " : "at most ",
                          v < min ? min : max, " (allowed ", min, "..", max, "), got ", v));
    }
    set(v);
    return absl::OkStatus();
  }

  template <typename Enum, size_t N>
  absl::Status Choice(const toml::node& node, std::string_view field,
                      const std::pair<std::string_view, Enum> (&choices)[N], Enum& out) {
    RAUHA_ASSIGN_OR_RETURN(std::string value, String(node, field));
    std::string allowed;
    for (const auto& [text, e] : choices) {
      if (value == text) {
        out = e;
        return absl::OkStatus();
      }
      if (!allowed.empty()) allowed += ", ";
      allowed += StrCat("\"", text, "\"");
    }
    return Error(node.source(),
                 StrCat(field, " must be one of ", allowed, ", got \"", value, "\""));
  }

  absl::Status ZoneName(const toml::node& node, std::string_view field) {
    RAUHA_ASSIGN_OR_RETURN(std::string name, String(node, field));
    RAUHA_RETURN_IF_ERROR(Check(ValidateZoneName(name), node, field));
    policy_.zone.name = std::move(name);
    return absl::OkStatus();
  }

  absl::Status ZoneTypeKey(const toml::node& node, std::string_view field) {
    static constexpr std::pair<std::string_view, ZoneType> kChoices[] = {
        {"non-global", ZoneType::kNonGlobal}, {"privileged", ZoneType::kPrivileged}};
    return Choice(node, field, kChoices, policy_.zone.type);
  }

  absl::Status AdmissionModeKey(const toml::node& node, std::string_view field) {
    static constexpr std::pair<std::string_view, AdmissionMode> kChoices[] = {
        {"enforce", AdmissionMode::kEnforce}, {"audit", AdmissionMode::kAudit}};
    return Choice(node, field, kChoices, policy_.admission.mode);
  }

  absl::Status NetworkModeKey(const toml::node& node, std::string_view field) {
    static constexpr std::pair<std::string_view, NetworkMode> kChoices[] = {
        {"isolated", NetworkMode::kIsolated},
        {"bridged", NetworkMode::kBridged},
        {"host", NetworkMode::kHost}};
    host_mode_at_ = node.source();
    return Choice(node, field, kChoices, policy_.network.mode);
  }

  absl::Status Capabilities(const toml::node& node, std::string_view field) {
    policy_.capabilities.allowed.clear();
    return StringArray(node, field, [this](const std::string& v, auto& n, auto f) {
      RAUHA_RETURN_IF_ERROR(Check(internal::ValidateCapabilityName(v), n, f));
      AppendUnique(policy_.capabilities.allowed, v);
      return absl::OkStatus();
    });
  }

  absl::Status PidsMax(const toml::node& node, std::string_view field) {
    if (const auto* s = node.as_string(); s != nullptr && s->get() == "max") {
      policy_.resources.pids_max.reset();
      return absl::OkStatus();
    }
    if (node.is_string()) {
      return Error(node.source(),
                   StrCat(field, " must be an integer (1..", kMaxPids,
                          ") or \"max\" (unbounded), got \"", node.as_string()->get(), "\""));
    }
    return Integer(node, field, 1, kMaxPids, [this](int64_t v) { policy_.resources.pids_max = v; });
  }

  absl::Status CpuQuota(const toml::node& node, std::string_view field) {
    constexpr int64_t kMaxQuota = int64_t{1} << 40;
    if (const auto* s = node.as_string(); s != nullptr && s->get() == "max") {
      policy_.resources.cpu_quota_us.reset();
      return absl::OkStatus();
    }
    if (node.is_string()) {
      return Error(node.source(), StrCat(field, " must be an integer (1000..", kMaxQuota,
                                         " microseconds) or \"max\" (no quota), got \"",
                                         node.as_string()->get(), "\""));
    }
    return Integer(node, field, 1000, kMaxQuota,
                   [this](int64_t v) { policy_.resources.cpu_quota_us = v; });
  }

  absl::Status MemoryLimit(const toml::node& node, std::string_view field) {
    auto& r = policy_.resources;
    if (const auto* s = node.as_string(); s != nullptr && s->get() == "max") {
      r.memory_limit_bytes.reset();
      r.memory_limit_text = "max";
      return absl::OkStatus();
    }
    if (const auto* i = node.as_integer()) {
      if (i->get() < 1) {
        return Error(node.source(), StrCat(field, " must be at least 1 byte, got ", i->get()));
      }
      r.memory_limit_bytes = static_cast<uint64_t>(i->get());
      r.memory_limit_text = StrCat(i->get());
      return absl::OkStatus();
    }
    if (!node.is_string()) {
      return Error(node.source(),
                   StrCat(field,
                          " must be a size string such as \"4Gi\", an integer number "
                          "of bytes or \"max\" (unbounded), got ",
                          TypeName(node)));
    }
    std::string text = node.as_string()->get();
    auto bytes = ParseMemorySize(text);
    RAUHA_RETURN_IF_ERROR(Check(bytes.status(), node, field));
    r.memory_limit_bytes = *bytes;
    r.memory_limit_text = std::move(text);
    return absl::OkStatus();
  }

  absl::Status EgressBytesMax(const toml::node& node, std::string_view field) {
    auto& n = policy_.network;
    if (const auto* s = node.as_string(); s != nullptr && s->get() == "max") {
      n.egress_bytes_max.reset();
      n.egress_bytes_max_text = "max";
      return absl::OkStatus();
    }
    if (const auto* i = node.as_integer()) {
      if (i->get() < 1) {
        return Error(node.source(), StrCat(field, " must be at least 1 byte, got ", i->get()));
      }
      n.egress_bytes_max = static_cast<uint64_t>(i->get());
      n.egress_bytes_max_text = StrCat(i->get());
      return absl::OkStatus();
    }
    if (!node.is_string()) {
      return Error(node.source(),
                   StrCat(field,
                          " must be a size string such as \"1Gi\", an integer number "
                          "of bytes or \"max\" (unbounded), got ",
                          TypeName(node)));
    }
    std::string text = node.as_string()->get();
    auto bytes = ParseMemorySize(text);
    RAUHA_RETURN_IF_ERROR(Check(bytes.status(), node, field));
    n.egress_bytes_max = *bytes;
    n.egress_bytes_max_text = std::move(text);
    return absl::OkStatus();
  }

  absl::Status AllowedZones(const toml::node& node, std::string_view field) {
    policy_.network.allowed_zones.clear();
    return StringArray(node, field, [this](const std::string& v, auto& n, auto f) {
      RAUHA_RETURN_IF_ERROR(Check(ValidateZoneName(v), n, f));
      AppendUnique(policy_.network.allowed_zones, v);
      return absl::OkStatus();
    });
  }

  void NoteRules(const toml::node& node, std::string_view field) {
    if (const toml::array* a = node.as_array(); a != nullptr && !a->empty()) {
      rules_at_.emplace_back(std::string(field), node.source());
    }
  }

  absl::Status Rules(const toml::node& node, std::string_view field, std::vector<NetRule>& out) {
    NoteRules(node, field);
    out.clear();
    return StringArray(node, field, [this, &out](const std::string& v, auto& n, auto f) {
      auto rule = ParseNetRule(v);
      RAUHA_RETURN_IF_ERROR(Check(rule.status(), n, f));
      bool seen = std::any_of(out.begin(), out.end(),
                              [&](const NetRule& r) { return r.text == rule->text; });
      if (!seen) out.push_back(*std::move(rule));
      return absl::OkStatus();
    });
  }

  absl::Status HostRules(const toml::node& node, std::string_view field) {
    auto& out = policy_.network.allowed_hosts;
    out.clear();
    return StringArray(node, field, [this, &out](const std::string& v, auto& n, auto f) {
      auto rule = ParseHostRule(v);
      RAUHA_RETURN_IF_ERROR(Check(rule.status(), n, f));
      bool seen = std::any_of(out.begin(), out.end(),
                              [&](const HostRule& r) { return r.text == rule->text; });
      if (!seen) out.push_back(*std::move(rule));
      return absl::OkStatus();
    });
  }

  absl::Status Root(const toml::node& node, std::string_view field) {
    RAUHA_ASSIGN_OR_RETURN(std::string root, String(node, field));
    auto normal = internal::NormaliseWritablePath(root);
    RAUHA_RETURN_IF_ERROR(Check(normal.status(), node, field));
    policy_.filesystem.root = *std::move(normal);
    return absl::OkStatus();
  }

  absl::Status Bool(const toml::node& node, std::string_view field, bool& out) {
    const auto* b = node.as_boolean();
    if (b == nullptr) {
      return Error(node.source(), StrCat(field, " must be true or false, got ", TypeName(node)));
    }
    out = b->get();
    return absl::OkStatus();
  }

  absl::Status SharedLayers(const toml::node& node, std::string_view field) {
    return Bool(node, field, policy_.filesystem.shared_layers);
  }

  absl::Status WritablePaths(const toml::node& node, std::string_view field) {
    policy_.filesystem.writable_paths.clear();
    return StringArray(node, field, [this](const std::string& v, auto& n, auto f) {
      auto path = internal::NormaliseWritablePath(v);
      RAUHA_RETURN_IF_ERROR(Check(path.status(), n, f));
      AppendUnique(policy_.filesystem.writable_paths, *std::move(path));
      return absl::OkStatus();
    });
  }

  absl::Status Devices(const toml::node& node, std::string_view field) {
    policy_.devices.allowed.clear();
    return StringArray(node, field, [this](const std::string& v, auto& n, auto f) {
      auto path = internal::NormaliseDevicePath(v);
      RAUHA_RETURN_IF_ERROR(Check(path.status(), n, f));
      AppendUnique(policy_.devices.allowed, *std::move(path));
      return absl::OkStatus();
    });
  }

  absl::Status Syscalls(const toml::node& node, std::string_view field) {
    policy_.syscalls.deny.clear();
    return StringArray(node, field, [this](const std::string& v, auto& n, auto f) {
      RAUHA_RETURN_IF_ERROR(Check(internal::ValidateSyscallName(v), n, f));
      AppendUnique(policy_.syscalls.deny, v);
      return absl::OkStatus();
    });
  }

  absl::Status ExecPaths(const toml::node& node, std::string_view field,
                         std::vector<std::string>& out) {
    out.clear();
    return StringArray(node, field, [this, &out](const std::string& v, auto& n, auto f) {
      auto path = internal::NormaliseWritablePath(v);
      RAUHA_RETURN_IF_ERROR(Check(path.status(), n, f));
      AppendUnique(out, *std::move(path));
      return absl::OkStatus();
    });
  }

  // [secrets.NAME] tables: written ones replace the base's (a policy states all its secrets).
  absl::Status SecretsTable(const toml::node& node) {
    const toml::table* table = node.as_table();
    if (table == nullptr) {
      return Error(node.source(),
                   StrCat("\"secrets\" must hold tables ([secrets.NAME]), got ", TypeName(node)));
    }
    policy_.secrets.clear();
    for (auto&& [k, v] : *table) {
      RAUHA_RETURN_IF_ERROR(Check(ValidateSecretName(k.str()), v, StrCat("secrets.", k.str())));
      const toml::table* secret = v.as_table();
      const std::string field = StrCat("secrets.", k.str());
      if (secret == nullptr) {
        return Error(v.source(), StrCat(field, " must be a table ([", field,
                                        "] with hosts, header, format), got ", TypeName(v)));
      }
      SecretRule rule;
      rule.name = std::string(k.str());
      bool has_hosts = false;
      for (auto&& [sk, sv] : *secret) {
        const std::string sub = StrCat(field, ".", sk.str());
        if (sk.str() == "hosts") {
          has_hosts = true;
          RAUHA_RETURN_IF_ERROR(
              StringArray(sv, sub, [this, &rule](const std::string& h, auto& n, auto f) {
                auto host = ParseHostRule(h);
                RAUHA_RETURN_IF_ERROR(Check(host.status(), n, f));
                bool seen = std::any_of(rule.hosts.begin(), rule.hosts.end(),
                                        [&](const HostRule& r) { return r.text == host->text; });
                if (!seen) rule.hosts.push_back(*std::move(host));
                secret_hosts_at_[rule.name].push_back(n.source());
                return absl::OkStatus();
              }));
          if (rule.hosts.empty()) {
            return Error(sv.source(), StrCat(sub, " is empty: name the hosts the secret is for"));
          }
        } else if (sk.str() == "header") {
          RAUHA_ASSIGN_OR_RETURN(rule.header, String(sv, sub));
          RAUHA_RETURN_IF_ERROR(Check(ValidateHeaderName(rule.header), sv, sub));
        } else if (sk.str() == "format") {
          RAUHA_ASSIGN_OR_RETURN(rule.format, String(sv, sub));
          RAUHA_RETURN_IF_ERROR(Check(ValidateSecretFormat(rule.format), sv, sub));
        } else {
          return Error(sk.source(),
                       StrCat("unknown key ", sub, "; [", field, "] allows hosts, header, format"));
        }
      }
      if (!has_hosts) {
        return Error(v.source(), StrCat(field,
                                        " has no hosts: say where the secret may go, e.g. hosts = "
                                        "[\"api.example.com\"]"));
      }
      policy_.secrets.push_back(std::move(rule));
    }
    std::sort(policy_.secrets.begin(), policy_.secrets.end(),
              [](const SecretRule& a, const SecretRule& b) { return a.name < b.name; });
    return absl::OkStatus();
  }

  // A secret's hosts are reached through the egress proxy only: each must be one the zone's
  // [network] allowed_hosts lets the proxy reach, on every port the secret's rule covers.
  absl::Status CheckSecretHosts() {
    for (const auto& secret : policy_.secrets) {
      for (size_t i = 0; i < secret.hosts.size(); ++i) {
        const HostRule& h = secret.hosts[i];
        std::vector<uint16_t> ports =
            h.port ? std::vector<uint16_t>{h.port} : std::vector<uint16_t>{80, 443};
        bool covered = true;
        for (uint16_t port : ports) {
          bool any = false;
          for (const auto& a : policy_.network.allowed_hosts) {
            if (h.wildcard) {
              // Every name below h.host must be below (or, for a non-wildcard, equal) a.
              any = a.wildcard && (a.host == h.host || h.host.ends_with(StrCat(".", a.host))) &&
                    (a.port == 0 ? (port == 80 || port == 443) : a.port == port);
            } else {
              any = HostRuleAllows(a, h.host, port);
            }
            if (any) break;
          }
          covered = covered && any;
        }
        if (!covered) {
          const auto& at = secret_hosts_at_[secret.name];
          toml::source_region where = i < at.size() ? at[i] : toml::source_region{};
          return Error(where, StrCat("secrets.", secret.name, ".hosts: \"", h.text,
                                     "\" is not reachable through the egress proxy: add it to "
                                     "[network] allowed_hosts"));
        }
      }
    }
    return absl::OkStatus();
  }

  // Rules only a bridged zone's nftables chains and cgroup-bpf programs enforce, or, in a
  // namespace the zone joined (a pod's), its own nftables table there and cgroup-bpf.
  void WarnAboutRulesWithoutEffect() {
    const NetworkMode mode = policy_.network.mode;
    if (mode == NetworkMode::kBridged) return;
    if (mode == NetworkMode::kIsolated && placement_ == NetworkPlacement::kJoined) return;
    const std::string why =
        mode == NetworkMode::kIsolated
            ? "the zone's network is \"isolated\" (loopback only: nothing leaves it, nothing "
              "reaches it); rules apply to \"bridged\" zones and to zones that join a pod's "
              "network namespace"
            : "the zone uses the host's network, where no zone rule applies; rules apply to "
              "\"bridged\" zones";
    for (const auto& [field, where] : rules_at_) {
      uint32_t line = std::max<uint32_t>(where.begin.line, 1);
      uint32_t column = std::max<uint32_t>(where.begin.column, 1);
      warnings_->push_back(
          StrCat(source_, ":", line, ":", column, ": ", field, " has no effect: ", why));
    }
  }

  std::string source_;
  Policy policy_;
  std::vector<std::string>* warnings_;
  NetworkPlacement placement_;
  toml::source_region host_mode_at_;
  // Where each secret's hosts were written (by secret name, in order), for CheckSecretHosts.
  std::map<std::string, std::vector<toml::source_region>> secret_hosts_at_;
  // Non-empty rule lists of [network] as written, for the warnings.
  std::vector<std::pair<std::string, toml::source_region>> rules_at_;
};

}  // namespace

absl::StatusOr<Policy> ParsePolicy(std::string_view toml, std::string_view source,
                                   std::vector<std::string>* warnings, NetworkPlacement placement) {
  return Parser(source, DefaultPolicy(), warnings, placement).Parse(toml);
}

namespace internal {
absl::StatusOr<Policy> ParsePolicyOver(std::string_view toml, std::string_view source,
                                       const Policy& base, std::vector<std::string>* warnings,
                                       NetworkPlacement placement) {
  return Parser(source, base, warnings, placement).Parse(toml);
}
}  // namespace internal

const std::vector<std::string>& BaselineDevices() {
  static const std::vector<std::string> kDevices = {"/dev/null",   "/dev/zero",    "/dev/full",
                                                    "/dev/random", "/dev/urandom", "/dev/tty",
                                                    "/dev/pts",    "/dev/ptmx"};
  return kDevices;
}

absl::StatusOr<Policy> LoadPolicyFile(const std::string& path, std::vector<std::string>* warnings,
                                      NetworkPlacement placement) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return absl::InvalidArgumentError(
        StrCat("policy file ", path, ": ", std::strerror(errno), "; check the path"));
  }
  std::string text;
  char buf[16384];
  while (true) {
    ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::InvalidArgumentError(
          StrCat("reading policy file ", path, ": ", std::strerror(errno)));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    // Enough to let ParsePolicy say where the size limit is crossed, and no more: a device or
    // a huge file named by mistake is not slurped.
    if (text.size() > kMaxPolicyBytes) break;
  }
  return ParsePolicy(text, path, warnings, placement);
}

}  // namespace rauha::policy
