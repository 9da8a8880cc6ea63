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

std::string NowRfc3339() { return Rfc3339FromNanos(NowUnixNanos()); }

}  // namespace rauha
