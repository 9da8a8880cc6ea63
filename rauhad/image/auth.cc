#include "rauhad/image/auth.h"

#include <openssl/evp.h>

#include <cctype>
#include <vector>

#include "nlohmann/json.hpp"
#include "rauha-common/strcat.h"

namespace rauha::image {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::optional<std::string> Base64Decode(std::string_view in) {
  std::string clean;
  for (char c : in) {
    if (!std::isspace(static_cast<unsigned char>(c))) clean.push_back(c);
  }
  if (clean.size() % 4 != 0) return std::nullopt;
  std::vector<unsigned char> out(clean.size() / 4 * 3 + 1);
  int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(clean.data()),
                          static_cast<int>(clean.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding as zero bytes.
  size_t pad = 0;
  if (!clean.empty() && clean.back() == '=') ++pad;
  if (clean.size() > 1 && clean[clean.size() - 2] == '=') ++pad;
  return std::string(reinterpret_cast<char*>(out.data()), static_cast<size_t>(n) - pad);
}

// "https://index.docker.io/v1/" -> "index.docker.io"
std::string HostOfKey(std::string key) {
  if (auto p = key.find("://"); p != std::string::npos) key = key.substr(p + 3);
  if (auto p = key.find('/'); p != std::string::npos) key = key.substr(0, p);
  return Lower(key);
}

bool IsHub(const std::string& host) {
  return host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io";
}

}  // namespace

absl::StatusOr<Challenge> ParseChallenge(std::string_view header) {
  size_t i = 0;
  auto skip_space = [&] {
    while (i < header.size() && (header[i] == ' ' || header[i] == '\t')) ++i;
  };
  skip_space();
  size_t start = i;
  while (i < header.size() && header[i] != ' ') ++i;
  Challenge c;
  c.scheme = Lower(std::string(header.substr(start, i - start)));
  if (c.scheme.empty()) return absl::InvalidArgumentError("empty WWW-Authenticate challenge");
  while (i < header.size()) {
    skip_space();
    size_t key_start = i;
    while (i < header.size() && header[i] != '=' && header[i] != ',' && header[i] != ' ') ++i;
    std::string key = Lower(std::string(header.substr(key_start, i - key_start)));
    if (i >= header.size() || header[i] != '=') {
      // A second challenge starts ("Bearer ..., Basic realm=..."); the first is ours.
      break;
    }
    ++i;
    std::string value;
    if (i < header.size() && header[i] == '"') {
      ++i;
      while (i < header.size() && header[i] != '"') {
        if (header[i] == '\\' && i + 1 < header.size()) ++i;
        value.push_back(header[i++]);
      }
      if (i >= header.size()) {
        return absl::InvalidArgumentError(
            StrCat("WWW-Authenticate: unterminated quoted value of ", key));
      }
      ++i;
    } else {
      while (i < header.size() && header[i] != ',') value.push_back(header[i++]);
    }
    if (!key.empty()) c.params[key] = value;
    skip_space();
    if (i < header.size() && header[i] == ',') ++i;
  }
  return c;
}

absl::StatusOr<std::optional<Credentials>> FindCredentials(std::string_view auths_json,
                                                           const std::string& registry) {
  auto doc = nlohmann::json::parse(auths_json, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object())
    return absl::InvalidArgumentError("registry auth file is not a JSON object");
  if (!doc.contains("auths")) return std::optional<Credentials>();
  const auto& auths = doc["auths"];
  if (!auths.is_object())
    return absl::InvalidArgumentError("registry auth file: \"auths\" is not an object");
  std::string want = Lower(registry);
  for (const auto& [key, entry] : auths.items()) {
    std::string host = HostOfKey(key);
    if (host != want && !(IsHub(host) && IsHub(want))) continue;
    if (!entry.is_object()) continue;
    Credentials creds;
    if (entry.contains("auth") && entry["auth"].is_string()) {
      auto decoded = Base64Decode(entry["auth"].get<std::string>());
      size_t colon = decoded ? decoded->find(':') : std::string::npos;
      if (colon == std::string::npos) {
        return absl::InvalidArgumentError(
            StrCat("registry auth file: \"auth\" of ", key, " is not base64 of user:password"));
      }
      creds.username = decoded->substr(0, colon);
      creds.password = decoded->substr(colon + 1);
    } else {
      creds.username = entry.value("username", "");
      creds.password = entry.value("password", "");
    }
    if (creds.username.empty()) continue;
    return std::optional<Credentials>(std::move(creds));
  }
  return std::optional<Credentials>();
}

}  // namespace rauha::image
