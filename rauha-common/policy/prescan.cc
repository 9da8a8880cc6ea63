#include "rauha-common/policy/prescan.h"

#include <algorithm>
#include <cstdio>

#include "rauha-common/policy/policy.h"
#include "rauha-common/strcat.h"

namespace rauha::policy::internal {
namespace {

bool TomlppMishandles(char32_t cp) {
  return (cp >= 0xa1 && cp <= 0x499) || (cp >= 0x2c5e && cp <= 0x3057) ||
         (cp >= 0xfb26 && cp <= 0xfefe);
}

// Walks the text one code point at a time, counting lines and columns as toml++ does.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  std::optional<PrescanError> Run() {
    if (text_.size() > kMaxPolicyBytes) {
      // Located where the limit is crossed, so the message points into the file.
      check_code_points_ = false;
      while (pos_ < kMaxPolicyBytes) Next();
      return Fail(StrCat("the policy is longer than ", kMaxPolicyBytes,
                         " bytes, the most accepted (a policy needs a few kilobytes)"));
    }
    while (!AtEnd() && !error_) {
      char c = text_[pos_];
      if (c == '#') {
        while (!AtEnd() && text_[pos_] != '\n') Next();
      } else if (c == '"' || c == '\'') {
        String(c);
      } else if (c == '.') {
        MarkRun();
        if (++dots_ >= kMaxKeyParts) {
          line_ = run_line_;
          column_ = run_column_;
          return Fail(StrCat("a key has more than ", kMaxKeyParts,
                             " dotted parts; a policy's keys have two ([table] and key)"));
        }
        Next();
      } else if (c == '[' || c == '{') {
        if (++depth_ > kMaxNesting) {
          return Fail(StrCat("arrays and inline tables nest more than ", kMaxNesting,
                             " deep; a policy needs one level (a list of strings)"));
        }
        Next();
        StartRun();
      } else if (c == ']' || c == '}') {
        if (depth_ > 0) --depth_;
        Next();
        StartRun();
      } else if (c == '=' || c == ',' || c == '\n') {
        Next();
        StartRun();
      } else {
        if (c != ' ' && c != '\t') MarkRun();
        Next();
      }
    }
    return error_;
  }

 private:
  bool AtEnd() const { return pos_ >= text_.size(); }

  std::optional<PrescanError> Fail(std::string message) {
    if (!error_) error_ = PrescanError{line_, column_, std::move(message)};
    return error_;
  }

  // A new run of key parts begins after any character that cannot be inside a dotted key.
  void StartRun() {
    dots_ = 0;
    in_run_ = false;
  }

  // Remembers where a run of key parts starts, for the error.
  void MarkRun() {
    if (in_run_) return;
    in_run_ = true;
    run_line_ = line_;
    run_column_ = column_;
  }

  // Advances over one code point (malformed UTF-8 is toml++'s to report: decode only what is
  // there) and refuses the ones toml++ mishandles.
  void Next() {
    unsigned char lead = static_cast<unsigned char>(text_[pos_]);
    size_t length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xe ? 3 : 4;
    char32_t cp = length == 1   ? lead
                  : length == 2 ? (lead & 0x1f)
                  : length == 3 ? (lead & 0x0f)
                                : (lead & 0x07);
    for (size_t k = 1; k < length && pos_ + k < text_.size(); ++k) {
      cp = (cp << 6) | (static_cast<unsigned char>(text_[pos_ + k]) & 0x3f);
    }
    if (check_code_points_ && TomlppMishandles(cp) && !error_) {
      char hex[16];
      std::snprintf(hex, sizeof(hex), "U+%04X", static_cast<unsigned>(cp));
      Fail(StrCat("character ", hex,
                  " is not accepted in a policy file (the TOML parser mishandles U+00A1..U+0499, "
                  "U+2C5E..U+3057 and U+FB26..U+FEFE); inside a string write it as a \\u escape"));
    }
    if (cp == '\n') {
      ++line_;
      column_ = 1;
    } else {
      ++column_;
    }
    pos_ += length;
  }

  size_t QuotesAt(char quote) const {
    size_t n = 0;
    while (pos_ + n < text_.size() && text_[pos_ + n] == quote) ++n;
    return n;
  }

  // Skips a string that starts at pos_. A string is one key part (or a value): the run goes on.
  void String(char quote) {
    MarkRun();
    const bool escapes = quote == '"';
    if (QuotesAt(quote) >= 3) {
      for (int i = 0; i < 3; ++i) Next();
      while (!AtEnd()) {
        if (escapes && text_[pos_] == '\\') {
          Next();
          if (!AtEnd()) Next();
          continue;
        }
        size_t quotes = QuotesAt(quote);
        if (quotes >= 3) {
          // Up to two quotes right before the closing three belong to the content.
          for (size_t i = 0; i < std::min<size_t>(quotes, 5); ++i) Next();
          return;
        }
        Next();
      }
      return;
    }
    Next();
    while (!AtEnd() && text_[pos_] != '\n') {
      char c = text_[pos_];
      if (c == quote) {
        Next();
        return;
      }
      Next();
      if (escapes && c == '\\' && !AtEnd() && text_[pos_] != '\n') Next();
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
  uint32_t line_ = 1, column_ = 1;
  int dots_ = 0;
  int depth_ = 0;
  bool in_run_ = false;
  bool check_code_points_ = true;
  uint32_t run_line_ = 1, run_column_ = 1;
  std::optional<PrescanError> error_;
};

}  // namespace

std::optional<PrescanError> Prescan(std::string_view text) { return Scanner(text).Run(); }

}  // namespace rauha::policy::internal
