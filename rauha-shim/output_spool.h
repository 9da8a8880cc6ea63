// A task's kept output (the head its result holds), also written as it arrives to two files
// of rauhad's spool dir (TaskSpec.output_spool_dir, TaskOutputSpoolPath). When the shim dies
// mid-task, its memory with the output is gone but these files are not: rauhad reports what they
// hold. A shim that forgets the task, or exits cleanly, removes them (this object's end).
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

  // Creates (or truncates) both files, mode 0600.
  static absl::StatusOr<OutputSpool> Open(const std::string& spool_dir, const std::string& task_id);

  // Appends to the stream's file. A write that fails (a full disk) stops that file, never the
  // task; returns the error once, for the task's warnings.
  absl::Status Append(bool is_stderr, std::string_view data);

 private:
  void RemoveFiles();

  UniqueFd out_, err_;
  std::string out_path_, err_path_;
};

}  // namespace rauha::shim
