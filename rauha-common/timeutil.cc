#include "rauha-common/timeutil.h"

#include <time.h>

#include <cstdio>

namespace rauha {

int64_t NowUnixNanos() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

std::string Rfc3339FromNanos(int64_t unix_nanos) {
  time_t secs = static_cast<time_t>(unix_nanos / 1000000000);
  long nanos = static_cast<long>(unix_nanos % 1000000000);
  tm utc{};
  ::gmtime_r(&secs, &utc);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, nanos);
  return buf;
}

int64_t NanosFromRfc3339(const std::string& text) {
  tm utc{};
  long nanos = 0;
  int used = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &utc.tm_year, &utc.tm_mon,
                  &utc.tm_mday, &utc.tm_hour, &utc.tm_min, &utc.tm_sec, &used) != 6) {
    return -1;
  }
  std::string rest = text.substr(static_cast<size_t>(used));
  if (rest.size() == 11 && rest[0] == '.' && rest.back() == 'Z') {
    for (size_t i = 1; i < 10; ++i) {
      if (rest[i] < '0' || rest[i] > '9') return -1;
      nanos = nanos * 10 + (rest[i] - '0');
    }
  } else if (rest != "Z") {
    return -1;
  }
  utc.tm_year -= 1900;
  utc.tm_mon -= 1;
  time_t secs = ::timegm(&utc);
  if (secs < 0) return -1;
  return int64_t{secs} * 1000000000 + nanos;
}

std::string NowRfc3339() { return Rfc3339FromNanos(NowUnixNanos()); }

}  // namespace rauha
