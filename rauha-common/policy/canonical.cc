#include <cstdio>

#include "rauha-common/policy/policy.h"
#include "rauha-common/strcat.h"

namespace rauha::policy {
namespace {

// A TOML basic string. Input comes from a parsed document (valid UTF-8), so only quotes,
// backslashes and control characters need escaping.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

template <typename T, typename F>
std::string Array(const std::vector<T>& items, F text) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += Quote(text(items[i]));
  }
  out += "]";
  return out;
}

std::string Strings(const std::vector<std::string>& items) {
  return Array(items, [](const std::string& s) -> std::string_view { return s; });
}

std::string Rules(const std::vector<NetRule>& items) {
  return Array(items, [](const NetRule& r) -> std::string_view { return r.text; });
}

void Line(std::string& out, std::string_view key, std::string_view value) {
  out += StrCat(key, " = ", value, "\n");
}

}  // namespace

std::string ToCanonicalToml(const Policy& p) {
  std::string out = "[zone]\n";
  if (!p.zone.name.empty()) Line(out, "name", Quote(p.zone.name));
  Line(out, "type", Quote(ToString(p.zone.type)));

  if (p.admission.mode == AdmissionMode::kAudit) {
    out += "\n[admission]\n";
    Line(out, "mode", Quote(ToString(p.admission.mode)));
  }

  out += "\n[capabilities]\n";
  Line(out, "allowed", Strings(p.capabilities.allowed));

  out += "\n[resources]\n";
  const auto& r = p.resources;
  if (r.cpu_shares) Line(out, "cpu_shares", StrCat(*r.cpu_shares));
  if (r.memory_limit_bytes) {
    Line(out, "memory_limit",
         Quote(r.memory_limit_text.empty() ? StrCat(*r.memory_limit_bytes) : r.memory_limit_text));
  }
  if (r.io_weight) Line(out, "io_weight", StrCat(*r.io_weight));
  if (r.pids_max) Line(out, "pids_max", StrCat(*r.pids_max));

  out += "\n[network]\n";
  Line(out, "mode", Quote(ToString(p.network.mode)));
  Line(out, "allowed_zones", Strings(p.network.allowed_zones));
  Line(out, "allowed_egress", Rules(p.network.allowed_egress));
  Line(out, "allowed_ingress", Rules(p.network.allowed_ingress));

  out += "\n[filesystem]\n";
  if (!p.filesystem.root.empty()) Line(out, "root", Quote(p.filesystem.root));
  Line(out, "shared_layers", p.filesystem.shared_layers ? "true" : "false");
  Line(out, "writable_paths", Strings(p.filesystem.writable_paths));

  out += "\n[devices]\n";
  Line(out, "allowed", Strings(p.devices.allowed));

  out += "\n[syscalls]\n";
  Line(out, "deny", Strings(p.syscalls.deny));
  return out;
}

}  // namespace rauha::policy
