// rauha::StrCat: absl::StrCat for our types. Debian's Abseil has its own absl::string_view
// (not std::string_view), so absl::StrCat will not take std::string_view; this one takes
// both, plus strings, chars and numbers.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>

#include "absl/strings/string_view.h"

namespace rauha {
namespace strcat_internal {

inline void Append(std::string& out, std::string_view s) { out.append(s); }
inline void Append(std::string& out, const std::string& s) { out.append(s); }
inline void Append(std::string& out, const char* s) { out.append(s ? s : "(null)"); }
inline void Append(std::string& out, char c) { out.push_back(c); }
#if !defined(ABSL_USES_STD_STRING_VIEW)
inline void Append(std::string& out, absl::string_view s) { out.append(s.data(), s.size()); }
#endif
template <typename T>
requires(std::is_arithmetic_v<T> && !std::is_same_v<T, char> &&
         !std::is_same_v<T, bool>) void Append(std::string& out, T v) {
  out.append(std::to_string(v));
}
inline void Append(std::string& out, bool b) { out.append(b ? "true" : "false"); }

}  // namespace strcat_internal

template <typename... Args>
std::string StrCat(const Args&... args) {
  std::string out;
  (strcat_internal::Append(out, args), ...);
  return out;
}

// std::string from absl's string_view (Status::message()).
inline std::string ToStd(absl::string_view s) { return std::string(s.data(), s.size()); }

}  // namespace rauha
