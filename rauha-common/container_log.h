// A container's log file: one record per line, in the CRI format containerd and the kubelet
// use, "<RFC 3339 nano> <stdout|stderr> <F|P> <text>\n" (F: the text ended a line, P: a piece
// of a longer line, continued by the next record of the stream). The shim writes it
// (rauha-shim/log_writer.h); rauhad reads it for ContainerLogs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rauha {

struct LogRecord {
  std::string timestamp;  // as written: RFC 3339 with nanoseconds, UTC
  bool is_stderr = false;
  bool partial = false;
  std::string text;  // without the newline
};

std::string FormatLogRecord(int64_t unix_nanos, bool is_stderr, bool partial,
                            std::string_view text);
// nullopt for a line that is not a record (a torn last line, a foreign file).
std::optional<LogRecord> ParseLogRecord(std::string_view line);

}  // namespace rauha
