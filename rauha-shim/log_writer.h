// Writes a task's output to its container log (rauha-common/container_log.h): lines as they
// complete, one stream's unfinished line kept until its newline (or written as pieces once it
// passes kMaxLine), and the file rotated to "<path>.1" once it would pass its size limit, so
// a chatty container holds at most about twice the limit on disk.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "rauha-common/fd.h"

namespace rauha::shim {

class LogWriter {
 public:
  static constexpr size_t kMaxLine = 16384;

  // Appends to `path` (created 0600, never through a symlink). `max_bytes` 0: no rotation.
  static absl::StatusOr<std::unique_ptr<LogWriter>> Open(const std::string& path,
                                                         uint64_t max_bytes);

  void Write(bool is_stderr, std::string_view data, int64_t now_ns);
  // The unfinished lines, at the end of the output.
  void Flush(int64_t now_ns);
  // The first write error ("" when none): the log is then incomplete, the task unaffected.
  const std::string& error() const { return error_; }

 private:
  LogWriter(std::string path, uint64_t max_bytes, UniqueFd fd, uint64_t size)
      : path_(std::move(path)), max_bytes_(max_bytes), fd_(std::move(fd)), size_(size) {}
  void Emit(bool is_stderr, bool partial, std::string_view text, int64_t now_ns);
  void Rotate();

  std::string path_;
  uint64_t max_bytes_;
  UniqueFd fd_;
  uint64_t size_;
  std::string pending_[2];  // stdout, stderr
  std::string error_;
};

}  // namespace rauha::shim
