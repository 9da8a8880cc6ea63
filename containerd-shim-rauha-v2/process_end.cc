#include "containerd-shim-rauha-v2/process_end.h"

#include <time.h>

#include <cctype>

#include "containerd-shim-rauha-v2/sha256_hex.h"

namespace rauha::cshim {

google::protobuf::Timestamp Now() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  google::protobuf::Timestamp t;
  t.set_seconds(ts.tv_sec);
  t.set_nanos(static_cast<int32_t>(ts.tv_nsec));
  return t;
}

ProcessEnd EndOf(const absl::StatusOr<rauha::process::v1::WaitProcessResponse>& end) {
  ProcessEnd e;
  e.exited_at = Now();
  if (end.ok() && end->has_exit_code()) {
    e.exit_status = static_cast<uint32_t>(end->exit_code());
  } else if (end.ok() && end->has_signal()) {
    e.exit_status = 128 + static_cast<uint32_t>(end->signal());
  } else {
    // It never ran, or rauhad lost it: 127 like a shell's "cannot run".
    e.exit_status = 127;
    e.error = end.ok() ? end->error() : std::string(end.status().message());
  }
  if (end.ok() && end->exited_at_unix_nano() > 0) {
    e.exited_at.set_seconds(end->exited_at_unix_nano() / 1'000'000'000);
    e.exited_at.set_nanos(static_cast<int32_t>(end->exited_at_unix_nano() % 1'000'000'000));
  }
  return e;
}

absl::Status WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                       absl::Time deadline, const std::function<bool()>& done) {
  while (!done()) {
    if (deadline == absl::InfiniteFuture()) {
      cv.wait(lock);
    } else if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError("timed out waiting for the process to exit");
    } else {
      cv.wait_for(lock, absl::ToChronoNanoseconds(deadline - absl::Now()));
    }
  }
  return absl::OkStatus();
}

std::string ExecProcessId(const std::string& task_id, const std::string& exec_id) {
  std::string id = task_id + "." + exec_id;
  bool valid = id.size() <= 64 && std::isalnum(static_cast<unsigned char>(id[0]));
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
      valid = false;
    }
  }
  if (valid) return id;
  std::string both = task_id + '\0' + exec_id;
  return "exec-" + Sha256Hex(both).substr(0, 32);
}

}  // namespace rauha::cshim
