#include "rauha-common/audit/jcs.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"

namespace rauha::audit {
namespace {

constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;

// UTF-16 code units of a UTF-8 string (valid UTF-8: nlohmann checks it on parse and dump).
std::u16string Utf16(const std::string& s) {
  std::u16string out;
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    uint32_t cp = 0;
    size_t len = 1;
    if (c < 0x80) {
      cp = c;
    } else if ((c >> 5) == 0x6) {
      cp = c & 0x1f;
      len = 2;
    } else if ((c >> 4) == 0xe) {
      cp = c & 0x0f;
      len = 3;
    } else {
      cp = c & 0x07;
      len = 4;
    }
    for (size_t k = 1; k < len && i + k < s.size(); ++k) {
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    }
    i += len;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out.push_back(static_cast<char16_t>(0xd800 + (cp >> 10)));
      out.push_back(static_cast<char16_t>(0xdc00 + (cp & 0x3ff)));
    } else {
      out.push_back(static_cast<char16_t>(cp));
    }
  }
  return out;
}

// Length of the UTF-8 sequence at s[i], or 0 if it is not one (overlong forms, surrogates and
// code points above U+10FFFF included).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  auto cont = [&](size_t k) { return i + k < s.size() && (b(k) & 0xc0) == 0x80; };
  unsigned char c = b(0);
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xe0 && b(1) < 0xa0) return 0;   // overlong
    if (c == 0xed && b(1) >= 0xa0) return 0;  // surrogates
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xf0 && b(1) < 0x90) return 0;   // overlong
    if (c == 0xf4 && b(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void AppendString(std::string& out, const std::string& s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

absl::Status Append(std::string& out, const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null:
      out += "null";
      return absl::OkStatus();
    case nlohmann::json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return absl::OkStatus();
    case nlohmann::json::value_t::number_integer: {
      int64_t n = v.get<int64_t>();
      if (n > kMaxSafeInteger || n < -kMaxSafeInteger) {
        return absl::InvalidArgumentError(StrCat("integer ", n, " is outside ±(2^53-1)"));
      }
      out += std::to_string(n);
      return absl::OkStatus();
    }
    case nlohmann::json::value_t::number_unsigned: {
      uint64_t n = v.get<uint64_t>();
      if (n > static_cast<uint64_t>(kMaxSafeInteger)) {
        return absl::InvalidArgumentError(StrCat("integer ", n, " is outside ±(2^53-1)"));
      }
      out += std::to_string(n);
      return absl::OkStatus();
    }
    case nlohmann::json::value_t::number_float:
      return absl::InvalidArgumentError("floating-point numbers are not allowed in records");
    case nlohmann::json::value_t::string:
      if (!IsValidUtf8(v.get_ref<const std::string&>())) {
        return absl::InvalidArgumentError("a string is not UTF-8");
      }
      AppendString(out, v.get_ref<const std::string&>());
      return absl::OkStatus();
    case nlohmann::json::value_t::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& item : v) {
        if (!first) out.push_back(',');
        first = false;
        RAUHA_RETURN_IF_ERROR(Append(out, item));
      }
      out.push_back(']');
      return absl::OkStatus();
    }
    case nlohmann::json::value_t::object: {
      std::vector<std::pair<std::u16string, const std::string*>> keys;
      keys.reserve(v.size());
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (!IsValidUtf8(it.key())) return absl::InvalidArgumentError("a member name is not UTF-8");
        keys.emplace_back(Utf16(it.key()), &it.key());
      }
      std::sort(keys.begin(), keys.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      out.push_back('{');
      bool first = true;
      for (const auto& [utf16, key] : keys) {
        if (!first) out.push_back(',');
        first = false;
        AppendString(out, *key);
        out.push_back(':');
        RAUHA_RETURN_IF_ERROR(Append(out, v.at(*key)));
      }
      out.push_back('}');
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError("binary values are not JSON");
  }
}

}  // namespace

std::string ToValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t n = Utf8SequenceLength(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

absl::StatusOr<std::string> Canonicalize(const nlohmann::json& value) {
  std::string out;
  RAUHA_RETURN_IF_ERROR(Append(out, value));
  return out;
}

absl::StatusOr<nlohmann::json> ParseCanonical(const std::string& text) {
  nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return absl::InvalidArgumentError("not valid JSON (or not UTF-8)");
  auto canonical = Canonicalize(value);
  if (!canonical.ok()) return canonical.status();
  if (*canonical != text) {
    return absl::InvalidArgumentError("not in canonical form (RFC 8785)");
  }
  return value;
}

}  // namespace rauha::audit
