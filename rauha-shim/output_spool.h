// A task's kept output (the head its result holds), also written as it arrives to two files
// of rauhad's spool dir (TaskSpec.output_spool_dir, TaskOutputSpoolPath). When the shim dies
// mid-task, its memory with the output is gone but these files are not: rauhad reports what they
// hold. A shim that forgets the task, or exits cleanly, removes them (this object's end).
//
// A stream's file is created with its first output, not at the task's start: most tasks leave
// at least one stream empty (stderr), and on a disk file system each file is an inode made and
// removed per task (eval/bench/README.md). No file is what rauhad reads as no output.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "rauha-common/fd.h"

namespace rauha::shim {

class OutputSpool {
 public:
  OutputSpool() = default;
  OutputSpool(OutputSpool&& other) noexcept { *this = std::move(other); }
  OutputSpool& operator=(OutputSpool&& other) noexcept;
  ~OutputSpool();

  // Names both files; each is created (or truncated), mode 0600, by its stream's first Append.
  static absl::StatusOr<OutputSpool> Open(const std::string& spool_dir, const std::string& task_id);

  // Appends to the stream's file (created first if it is not yet). A create or write that fails
  // (a full disk) stops that file, never the task; returns the error once, for the task's
  // warnings.
  absl::Status Append(bool is_stderr, std::string_view data);

 private:
  struct Stream {
    std::string path;  // "" once removed (or moved away)
    UniqueFd fd;
    bool created = false;  // the file exists (it is removed at the end)
    bool stopped = false;  // a create or write failed: nothing more is written
  };
  void RemoveFiles();

  Stream out_, err_;
};

}  // namespace rauha::shim
