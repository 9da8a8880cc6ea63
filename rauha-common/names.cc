#include "rauha-common/names.h"

#include "rauha-common/strcat.h"

namespace rauha {

absl::Status ValidateZoneName(std::string_view name) {
  constexpr std::string_view kRule =
      "a zone name is 1 to 128 bytes, is not \".\" or \"..\", and has no '/', '\\' or NUL";
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
  return absl::OkStatus();
}

}  // namespace rauha
