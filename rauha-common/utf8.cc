#include "rauha-common/utf8.h"

namespace rauha {
namespace {

// The length of the valid sequence at s[i], or 0 when none starts there; then `*valid_bytes`
// is how many bytes from s[i] on could begin a valid sequence (0 when s[i] cannot).
size_t SequenceAt(std::string_view s, size_t i, size_t* valid_bytes) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  *valid_bytes = 0;
  if (c < 0x80) return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;  // no overlong forms
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;  // no overlong forms
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  *valid_bytes = 1;
  for (size_t k = 1; k < len; ++k) {
    if (i + k >= s.size()) return 0;
    unsigned char cc = b(i + k);
    unsigned char min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xBF;
    if (cc < min || cc > max) return 0;
    *valid_bytes = k + 1;
  }
  return len;
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t ignored;
    size_t n = SequenceAt(s, i, &ignored);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string ToValidUtf8(std::string_view s) {
  if (IsValidUtf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 16);
  for (size_t i = 0; i < s.size();) {
    size_t valid = 0;
    size_t n = SequenceAt(s, i, &valid);
    if (n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");  // U+FFFD for the maximal invalid subpart
      i += valid > 0 ? valid : 1;
    }
  }
  return out;
}

size_t WithoutIncompleteTail(std::string_view s) {
  // A sequence is at most 4 bytes: look for its lead byte among the last 3.
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    size_t i = s.size() - back;
    unsigned char c = static_cast<unsigned char>(s[i]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: the lead is further back
    size_t valid = 0;
    if (c >= 0xC2 && SequenceAt(s, i, &valid) == 0 && valid == back) return i;
    return s.size();
  }
  return s.size();
}

}  // namespace rauha
