#include "rauhad/image/reference.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include "rauha-common/strcat.h"
#include "rauhad/image/digest.h"

namespace rauha::image {
namespace {

constexpr size_t kMaxNameLength = 255;  // distribution's NameTotalLengthMax
constexpr size_t kMaxTagLength = 128;

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// path-component := [a-z0-9]+ ( ( [._] | "__" | "-"+ ) [a-z0-9]+ )*
bool IsPathComponent(std::string_view s) {
  size_t i = 0;
  auto alnum_run = [&] {
    size_t start = i;
    while (i < s.size() && IsLowerAlnum(s[i])) ++i;
    return i > start;
  };
  if (!alnum_run()) return false;
  while (i < s.size()) {
    if (s[i] == '.') {
      ++i;
    } else if (s[i] == '_') {
      ++i;
      if (i < s.size() && s[i] == '_') ++i;
    } else if (s[i] == '-') {
      while (i < s.size() && s[i] == '-') ++i;
    } else {
      return false;
    }
    if (!alnum_run()) return false;
  }
  return true;
}

// domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
bool IsDomainComponent(std::string_view s) {
  if (s.empty() || !IsAlnum(s.front()) || !IsAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return IsAlnum(c) || c == '-'; });
}

absl::Status CheckRegistry(std::string_view domain, std::string_view whole) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        StrCat("image reference \"", whole, "\": registry \"", domain, "\" ", why));
  };
  std::string_view host = domain;
  std::string_view port;
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    if (close == std::string_view::npos) return bad("has an unclosed '['");
    std::string addr(host.substr(1, close - 1));
    in6_addr a6;
    if (inet_pton(AF_INET6, addr.c_str(), &a6) != 1) return bad("is not a valid IPv6 address");
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("has text after the IPv6 address");
      port = rest.substr(1);
      if (port.empty()) return bad("has an empty port");
    }
  } else {
    size_t colon = host.find(':');
    if (colon != std::string_view::npos) {
      port = host.substr(colon + 1);
      host = host.substr(0, colon);
      if (port.empty()) return bad("has an empty port");
    }
    size_t start = 0;
    while (true) {
      size_t dot = host.find('.', start);
      if (!IsDomainComponent(host.substr(start, dot - start))) {
        return bad("is not a host name (letters, digits, '-' and '.')");
      }
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
  }
  if (!port.empty()) {
    if (port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoul(std::string(port)) > 65535) {
      return bad("has an invalid port");
    }
  }
  return absl::OkStatus();
}

bool IsTag(std::string_view tag) {
  auto word = [](char c) { return IsAlnum(c) || c == '_'; };
  if (tag.empty() || tag.size() > kMaxTagLength || !word(tag.front())) return false;
  return std::all_of(tag.begin(), tag.end(),
                     [&](char c) { return word(c) || c == '.' || c == '-'; });
}

}  // namespace

std::string Reference::String() const {
  std::string out = Name();
  if (!tag.empty()) out += ":" + tag;
  if (!digest.empty()) out += "@" + digest;
  return out;
}

absl::StatusOr<Reference> ParseReference(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(StrCat("image reference \"", text, "\": ", why));
  };
  if (text.empty()) return absl::InvalidArgumentError("image reference is empty");
  if (text.size() > kMaxNameLength + 1 + kMaxTagLength + 1 + 71) return bad("too long");
  Reference ref;
  std::string_view name = text;
  if (size_t at = text.find('@'); at != std::string_view::npos) {
    name = text.substr(0, at);
    ref.digest = std::string(text.substr(at + 1));
    if (auto st = CheckDigest(ref.digest, "digest"); !st.ok()) {
      return bad(ToStd(st.message()));
    }
  }
  size_t colon = name.rfind(':');
  size_t slash = name.rfind('/');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    ref.tag = std::string(name.substr(colon + 1));
    name = name.substr(0, colon);
    if (!IsTag(ref.tag)) {
      return bad(StrCat("tag \"", ref.tag,
                        "\" is invalid (letters, digits, '_', '.', '-', at most 128, not "
                        "starting with '.' or '-')"));
    }
  }
  if (name.empty()) return bad("the repository name is empty");

  // The first component names a registry when it looks like a host: it has a '.' or a ':', is
  // "localhost", or has upper case (repository names cannot). Otherwise it is Docker Hub.
  std::string_view remainder = name;
  size_t first = name.find('/');
  if (first != std::string_view::npos) {
    std::string_view head = name.substr(0, first);
    bool has_upper = std::any_of(head.begin(), head.end(), [](char c) {
      return std::isupper(static_cast<unsigned char>(c));
    });
    if (head.find_first_of(".:") != std::string_view::npos || head == "localhost" || has_upper) {
      if (auto st = CheckRegistry(head, text); !st.ok()) return st;
      ref.registry = std::string(head);
      remainder = name.substr(first + 1);
    }
  }
  if (ref.registry.empty() || ref.registry == "index.docker.io") ref.registry = kDockerHub;
  ref.repository = std::string(remainder);
  if (ref.registry == kDockerHub && ref.repository.find('/') == std::string::npos) {
    ref.repository = "library/" + ref.repository;
  }
  size_t start = 0;
  while (true) {
    size_t next = ref.repository.find('/', start);
    std::string_view component =
        std::string_view(ref.repository)
            .substr(start, next == std::string::npos ? next : next - start);
    if (!IsPathComponent(component)) {
      return bad(StrCat("repository \"", remainder,
                        "\" is invalid: each '/'-separated part is lowercase letters and digits, "
                        "joined by '.', '_', '__' or '-'"));
    }
    if (next == std::string::npos) break;
    start = next + 1;
  }
  if (ref.Name().size() > kMaxNameLength) return bad("the repository name is longer than 255");
  // A bare 64-hex name is how image ids look; Docker refuses it as a repository name.
  if (std::string_view(ref.repository).substr(0, 8) == "library/" && ref.repository.size() == 72 &&
      std::all_of(ref.repository.begin() + 8, ref.repository.end(),
                  [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); })) {
    return bad("a 64-hex-digit name is an image id, not a repository (write sha256:<hex>)");
  }
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
  return ref;
}

std::string RegistryEndpoint(const std::string& registry) {
  return registry == kDockerHub ? "registry-1.docker.io" : registry;
}

bool IsLoopbackRegistry(const std::string& registry) {
  std::string host = registry;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(1, host.find(']') - 1);
  } else if (size_t colon = host.find(':'); colon != std::string::npos) {
    host = host.substr(0, colon);
  }
  if (host == "localhost") return true;
  in_addr a4;
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6;
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
  return false;
}

}  // namespace rauha::image
