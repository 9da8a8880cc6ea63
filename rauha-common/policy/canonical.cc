#include <cstdio>

#include "rauha-common/policy/policy.h"
#include "rauha-common/strcat.h"

namespace rauha::policy {
namespace {

// Decodes the UTF-8 sequence at text[i], advancing i; U+FFFD for a malformed one.
char32_t NextCodePoint(std::string_view text, size_t& i) {
  unsigned char lead = static_cast<unsigned char>(text[i++]);
  if (lead < 0x80) return lead;
  size_t extra = (lead >> 5) == 0x6 ? 1 : (lead >> 4) == 0xe ? 2 : (lead >> 3) == 0x1e ? 3 : 0;
  if (extra == 0 || i + extra > text.size()) return 0xfffd;
  char32_t cp = lead & (0x3f >> extra);
  for (size_t k = 0; k < extra; ++k) {
    unsigned char b = static_cast<unsigned char>(text[i + k]);
    if ((b & 0xc0) != 0x80) return 0xfffd;
    cp = (cp << 6) | (b & 0x3f);
  }
  i += extra;
  bool overlong = cp < (extra == 1 ? 0x80u : extra == 2 ? 0x800u : 0x10000u);
  if (overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0xfffd;
  return cp;
}

// A TOML basic string in plain ASCII: quotes, backslashes, control characters and every
// non-ASCII code point are escaped. ASCII-only output also keeps clear of the code points
// toml++ 3.3 mishandles (see policy.cc), so the output always parses back.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    char32_t cp = NextCodePoint(s, i);
    char buf[16];
    if (cp == '"' || cp == '\\') {
      out += '\\';
      out += static_cast<char>(cp);
    } else if (cp < 0x20 || cp == 0x7f || (cp > 0x7f && cp <= 0xffff)) {
      std::snprintf(buf, sizeof(buf), "\\u%04X", static_cast<unsigned>(cp));
      out += buf;
    } else if (cp > 0xffff) {
      std::snprintf(buf, sizeof(buf), "\\U%08X", static_cast<unsigned>(cp));
      out += buf;
    } else {
      out += static_cast<char>(cp);
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
  if (!p.zone.userns) Line(out, "userns", "false");

  if (p.admission.mode == AdmissionMode::kAudit) {
    out += "\n[admission]\n";
    Line(out, "mode", Quote(ToString(p.admission.mode)));
  }

  out += "\n[capabilities]\n";
  Line(out, "allowed", Strings(p.capabilities.allowed));

  out += "\n[resources]\n";
  const auto& r = p.resources;
  if (r.cpu_shares) Line(out, "cpu_shares", StrCat(*r.cpu_shares));
  // Unbounded is written out ("max"): a key left out would mean the default's limit.
  if (r.memory_limit_bytes) {
    Line(out, "memory_limit",
         Quote(r.memory_limit_text.empty() || r.memory_limit_text == "max"
                   ? StrCat(*r.memory_limit_bytes)
                   : r.memory_limit_text));
  } else {
    Line(out, "memory_limit", Quote("max"));
  }
  if (r.io_weight) Line(out, "io_weight", StrCat(*r.io_weight));
  Line(out, "pids_max", r.pids_max ? StrCat(*r.pids_max) : Quote("max"));
  if (r.cpu_quota_us) Line(out, "cpu_quota_us", StrCat(*r.cpu_quota_us));
  if (r.cpu_quota_us || r.cpu_period_us != 100000) {
    Line(out, "cpu_period_us", StrCat(r.cpu_period_us));
  }

  out += "\n[network]\n";
  Line(out, "mode", Quote(ToString(p.network.mode)));
  Line(out, "allowed_zones", Strings(p.network.allowed_zones));
  Line(out, "allowed_egress", Rules(p.network.allowed_egress));
  Line(out, "allowed_ingress", Rules(p.network.allowed_ingress));
  // Ours, and only when used (the public policies have no such key).
  if (!p.network.allowed_hosts.empty()) {
    std::vector<std::string> hosts;
    for (const auto& h : p.network.allowed_hosts) hosts.push_back(h.text);
    Line(out, "allowed_hosts", Strings(hosts));
  }
  if (p.network.egress_bytes_max) {
    const std::string& text = p.network.egress_bytes_max_text;
    Line(out, "egress_bytes_max",
         Quote(text.empty() || text == "max" ? StrCat(*p.network.egress_bytes_max) : text));
  }

  out += "\n[filesystem]\n";
  if (!p.filesystem.root.empty()) Line(out, "root", Quote(p.filesystem.root));
  Line(out, "shared_layers", p.filesystem.shared_layers ? "true" : "false");
  Line(out, "writable_paths", Strings(p.filesystem.writable_paths));

  out += "\n[devices]\n";
  Line(out, "allowed", Strings(p.devices.allowed));

  out += "\n[syscalls]\n";
  Line(out, "deny", Strings(p.syscalls.deny));

  // Ours, and only when used: the shipped presets and public policies have no [exec] table.
  if (!p.exec.allowed.empty() || !p.exec.denied.empty()) {
    out += "\n[exec]\n";
    Line(out, "allowed", Strings(p.exec.allowed));
    Line(out, "denied", Strings(p.exec.denied));
  }

  for (const auto& secret : p.secrets) {
    out += StrCat("\n[secrets.", secret.name, "]\n");
    std::vector<std::string> hosts;
    for (const auto& h : secret.hosts) hosts.push_back(h.text);
    Line(out, "hosts", Strings(hosts));
    Line(out, "header", Quote(secret.header));
    Line(out, "format", Quote(secret.format));
  }
  return out;
}

}  // namespace rauha::policy
