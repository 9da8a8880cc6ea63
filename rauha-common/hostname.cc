#include "rauha-common/hostname.h"

#include <cstdint>
#include <cstdio>

namespace rauha {
namespace {

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// 8 hex digits of the 32-bit FNV-1a hash: fixed forever, since hostnames must not change
// between releases for the same zone.
std::string Hash8(std::string_view s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s) {
    h ^= c;
    h *= 16777619u;
  }
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", h);
  return buf;
}

}  // namespace

bool IsHostname(std::string_view s) {
  if (s.empty() || s.size() > kMaxHostname) return false;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    if (!IsHostnameLabel(s.substr(start, dot == std::string_view::npos ? dot : dot - start))) {
      return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool IsHostnameLabel(std::string_view s) {
  if (s.empty() || s.size() > kMaxHostnameLabel || s.front() == '-' || s.back() == '-') {
    return false;
  }
  for (char c : s) {
    if (!IsAlnum(c) && c != '-') return false;
  }
  return true;
}

std::string ZoneHostname(std::string_view zone_name) {
  if (IsHostnameLabel(zone_name)) return std::string(zone_name);
  constexpr size_t kStemMax = kMaxHostnameLabel - 9;  // room for "-" + 8 hex digits
  std::string stem;
  for (char c : zone_name) {
    if (IsAlnum(c)) {
      stem += c;
    } else if (!stem.empty() && stem.back() != '-') {
      stem += '-';
    }
  }
  if (stem.size() > kStemMax) stem.resize(kStemMax);
  while (!stem.empty() && stem.back() == '-') stem.pop_back();
  if (stem.empty()) stem = "zone";
  return stem + "-" + Hash8(zone_name);
}

}  // namespace rauha
