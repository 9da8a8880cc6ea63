#include "rauha-cli/log_time.h"

#include <time.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "rauha-common/strcat.h"

namespace rauha::cli {
namespace {

constexpr int64_t kNanosPerSecond = 1000000000;
// Times are nanoseconds in an int64_t: up to 2262-04-11.
constexpr int64_t kMaxSeconds = INT64_MAX / kNanosPerSecond - 1;

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char ch : s) {
    if (!std::isdigit(static_cast<unsigned char>(ch))) return false;
  }
  return true;
}

// Up to 9 fraction digits as nanoseconds; more are cut (below a nanosecond).
int64_t FractionNanos(std::string_view digits) {
  int64_t n = 0;
  for (size_t i = 0; i < 9; ++i) n = n * 10 + (i < digits.size() ? digits[i] - '0' : 0);
  return n;
}

// "1732982400" or "1732982400.123".
std::optional<int64_t> UnixSeconds(std::string_view s) {
  size_t dot = s.find('.');
  std::string_view whole = s.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? "" : s.substr(dot + 1);
  if (!AllDigits(whole) || whole.size() > 11) return std::nullopt;
  if (dot != std::string_view::npos && !AllDigits(frac)) return std::nullopt;
  int64_t secs = std::stoll(std::string(whole));
  if (secs > kMaxSeconds) return std::nullopt;
  return secs * kNanosPerSecond + FractionNanos(frac);
}

// Go's duration form: one or more <number><unit>, units ns us ms s m h.
std::optional<int64_t> Duration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  double total = 0;
  while (!s.empty()) {
    size_t n = 0;
    while (n < s.size() && (std::isdigit(static_cast<unsigned char>(s[n])) || s[n] == '.')) ++n;
    if (n == 0) return std::nullopt;
    std::string number(s.substr(0, n));
    char* end = nullptr;
    double value = std::strtod(number.c_str(), &end);
    if (end != number.c_str() + number.size()) return std::nullopt;
    s.remove_prefix(n);
    size_t u = 0;
    while (u < s.size() && std::isalpha(static_cast<unsigned char>(s[u]))) ++u;
    std::string_view unit = s.substr(0, u);
    s.remove_prefix(u);
    double scale = unit == "ns"   ? 1.0
                   : unit == "us" ? 1e3
                   : unit == "ms" ? 1e6
                   : unit == "s"  ? 1e9
                   : unit == "m"  ? 60e9
                   : unit == "h"  ? 3600e9
                                  : -1;
    if (scale < 0) return std::nullopt;
    total += value * scale;
  }
  if (total > 9e18) return std::nullopt;
  return static_cast<int64_t>(total);
}

// "2026-11-30", "2026-11-30T16:20:28Z", "2026-11-30T16:20:28.5+02:00".
std::optional<int64_t> Rfc3339(const std::string& s) {
  tm utc{};
  int used = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%n", &utc.tm_year, &utc.tm_mon, &utc.tm_mday, &used) !=
          3 ||
      used != 10) {
    return std::nullopt;
  }
  std::string_view rest = std::string_view(s).substr(10);
  int64_t nanos = 0;
  int64_t offset_s = 0;
  if (!rest.empty()) {
    if (rest[0] != 'T' && rest[0] != 't' && rest[0] != ' ') return std::nullopt;
    int h = 0, m = 0, sec = 0, n = 0;
    std::string time(rest.substr(1));
    if (std::sscanf(time.c_str(), "%2d:%2d:%2d%n", &h, &m, &sec, &n) != 3 || n != 8) {
      return std::nullopt;
    }
    utc.tm_hour = h;
    utc.tm_min = m;
    utc.tm_sec = sec;
    rest.remove_prefix(9);
    if (!rest.empty() && rest[0] == '.') {
      size_t d = 1;
      while (d < rest.size() && std::isdigit(static_cast<unsigned char>(rest[d]))) ++d;
      if (d == 1) return std::nullopt;
      nanos = FractionNanos(rest.substr(1, d - 1));
      rest.remove_prefix(d);
    }
    if (rest == "Z" || rest == "z") {
      offset_s = 0;
    } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':' &&
               AllDigits(rest.substr(1, 2)) && AllDigits(rest.substr(4, 2))) {
      int oh = (rest[1] - '0') * 10 + (rest[2] - '0');
      int om = (rest[4] - '0') * 10 + (rest[5] - '0');
      offset_s = (rest[0] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    } else {
      return std::nullopt;
    }
  }
  if (utc.tm_mon < 1 || utc.tm_mon > 12 || utc.tm_mday < 1 || utc.tm_mday > 31 ||
      utc.tm_hour > 23 || utc.tm_min > 59 || utc.tm_sec > 60) {
    return std::nullopt;
  }
  utc.tm_year -= 1900;
  utc.tm_mon -= 1;
  time_t secs = ::timegm(&utc);
  if (secs < 0 || int64_t{secs} - offset_s > kMaxSeconds) return std::nullopt;
  return (int64_t{secs} - offset_s) * kNanosPerSecond + nanos;
}

}  // namespace

absl::StatusOr<int64_t> ParseLogTime(const std::string& text, int64_t now_ns) {
  if (auto t = Rfc3339(text)) return *t;
  if (auto t = UnixSeconds(text)) return *t;
  if (auto d = Duration(text)) return now_ns - *d;
  return absl::InvalidArgumentError(
      StrCat("\"", text,
             "\" is not a time: give an RFC 3339 time (2026-11-30T16:20:28Z), a date "
             "(2026-11-30), Unix seconds (1732982400) or a duration before now (10m, 1h30m)"));
}

}  // namespace rauha::cli
