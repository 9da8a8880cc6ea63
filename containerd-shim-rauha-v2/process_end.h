// How a containerd process ended, from rauhad's WaitProcess answer: exit status as containerd
// wants it (the code, or 128 + the signal; 127 with the reason when it never ran).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"
#include "rauha/v1/process.pb.h"

namespace rauha::cshim {

struct ProcessEnd {
  uint32_t exit_status = 0;
  google::protobuf::Timestamp exited_at;
  std::string error;  // non-empty: it never ran, or rauhad lost it (for the process's stderr)
};

google::protobuf::Timestamp Now();
ProcessEnd EndOf(const absl::StatusOr<rauha::process::v1::WaitProcessResponse>& end);

// Waits on `cv` (under `lock`) until `done()`; DeadlineExceeded at `deadline` (a ttrpc
// request's timeout; InfiniteFuture: none).
absl::Status WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                       absl::Time deadline, const std::function<bool()>& done);

// rauhad's id of exec `exec_id` of task `task_id`: "<task>.<exec>" when that is a valid
// process id of at most 64 characters, else "exec-" and a digest of both (CRI's ids are 64
// hex characters each).
std::string ExecProcessId(const std::string& task_id, const std::string& exec_id);

}  // namespace rauha::cshim
