#include "rauha-common/container_log.h"

#include "rauha-common/timeutil.h"

namespace rauha {

std::string FormatLogRecord(int64_t unix_nanos, bool is_stderr, bool partial,
                            std::string_view text) {
  std::string out = Rfc3339FromNanos(unix_nanos);
  out += is_stderr ? " stderr " : " stdout ";
  out += partial ? "P " : "F ";
  out += text;
  out += '\n';
  return out;
}

std::optional<LogRecord> ParseLogRecord(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  size_t first = line.find(' ');
  if (first == std::string_view::npos || first == 0) return std::nullopt;
  std::string_view rest = line.substr(first + 1);
  LogRecord r;
  r.timestamp = std::string(line.substr(0, first));
  if (rest.starts_with("stdout ")) {
    r.is_stderr = false;
  } else if (rest.starts_with("stderr ")) {
    r.is_stderr = true;
  } else {
    return std::nullopt;
  }
  rest.remove_prefix(7);
  if (rest.size() < 2 || (rest[0] != 'F' && rest[0] != 'P') || rest[1] != ' ') return std::nullopt;
  r.partial = rest[0] == 'P';
  r.text = std::string(rest.substr(2));
  return r;
}

}  // namespace rauha
