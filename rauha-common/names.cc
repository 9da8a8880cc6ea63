#include "rauha-common/names.h"

#include <cstdio>

#include "rauha-common/strcat.h"

namespace rauha {

absl::Status ValidateSecretName(std::string_view name) {
  constexpr std::string_view kRule =
      "a secret name is 1 to 64 letters, digits and '_', not starting with a digit (it names "
      "the task's environment variable), e.g. GITHUB_TOKEN";
  if (name.empty()) return absl::InvalidArgumentError(StrCat("secret name is empty; ", kRule));
  if (name.size() > kMaxSecretNameBytes) {
    return absl::InvalidArgumentError(
        StrCat("secret name is ", name.size(), " bytes long; ", kRule));
  }
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) {
      return absl::InvalidArgumentError(
          StrCat("secret name has ", (c >= '0' && c <= '9') ? "a leading digit" : "a character",
                 " not allowed at byte ", i, "; ", kRule));
    }
  }
  static constexpr std::string_view kReserved[] = {"PATH",
                                                   "HOME",
                                                   "LANG",
                                                   "HTTP_PROXY",
                                                   "HTTPS_PROXY",
                                                   "NO_PROXY",
                                                   "http_proxy",
                                                   "https_proxy",
                                                   "no_proxy",
                                                   "SSL_CERT_FILE",
                                                   "SSL_CERT_DIR",
                                                   "REQUESTS_CA_BUNDLE",
                                                   "NODE_EXTRA_CA_CERTS",
                                                   "CURL_CA_BUNDLE"};
  for (std::string_view r : kReserved) {
    if (name == r) {
      return absl::InvalidArgumentError(
          StrCat("secret name ", name,
                 " is a variable rauhad sets in every task's environment; choose another name"));
    }
  }
  if (name.starts_with("RAUHA_")) {
    return absl::InvalidArgumentError(
        StrCat("secret name ", name, ": RAUHA_* variables are rauhad's own; choose another name"));
  }
  return absl::OkStatus();
}

absl::Status ValidateZoneName(std::string_view name) {
  constexpr std::string_view kRule =
      "a zone name is 1 to 128 bytes, is not \".\" or \"..\", and has no '/', '\\', NUL or "
      "control character";
  if (name.empty()) return absl::InvalidArgumentError(StrCat("zone name is empty; ", kRule));
  if (name.size() > kMaxZoneNameBytes) {
    return absl::InvalidArgumentError(StrCat("zone name is ", name.size(), " bytes long; ", kRule));
  }
  if (name == "." || name == "..") {
    return absl::InvalidArgumentError(StrCat("zone name \"", name, "\" is reserved; ", kRule));
  }
  for (char c : name) {
    if (c == '/' || c == '\\' || c == '\0') {
      return absl::InvalidArgumentError(StrCat(
          "zone name contains ", c == '\0' ? std::string("NUL") : std::string(1, c), "; ", kRule));
    }
  }
  if (std::string found = FindControlCharacter(name); !found.empty()) {
    return absl::InvalidArgumentError(
        StrCat("zone name contains the control character ", found, "; ", kRule));
  }
  return absl::OkStatus();
}

std::string FindControlCharacter(std::string_view text) {
  char buf[48];
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    unsigned code = 0;
    if (c < 0x20 || c == 0x7f) {
      code = c;
    } else if (c == 0xc2 && i + 1 < text.size() &&
               static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
      code = static_cast<unsigned char>(text[i + 1]);
    } else {
      continue;
    }
    std::snprintf(buf, sizeof(buf), "U+%04X at byte %zu", code, i);
    return buf;
  }
  return "";
}

absl::Status RefuseControlCharacters(std::string_view field, std::string_view text) {
  std::string found = FindControlCharacter(text);
  if (found.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      StrCat(field, " contains the control character ", found, "; remove it"));
}

}  // namespace rauha
