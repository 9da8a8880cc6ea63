#include "rauha-shim/output_spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "rauha-common/errors.h"
#include "rauha-common/shim_protocol.h"
#include "rauha-common/strcat.h"

namespace rauha::shim {

OutputSpool::~OutputSpool() { RemoveFiles(); }

void OutputSpool::RemoveFiles() {
  out_.reset();
  err_.reset();
  for (std::string* path : {&out_path_, &err_path_}) {
    if (!path->empty()) ::unlink(path->c_str());
    path->clear();
  }
}

OutputSpool& OutputSpool::operator=(OutputSpool&& other) noexcept {
  if (this != &other) {
    RemoveFiles();
    out_ = std::move(other.out_);
    err_ = std::move(other.err_);
    // The paths move with the files: the moved-from spool removes nothing.
    out_path_ = std::exchange(other.out_path_, std::string());
    err_path_ = std::exchange(other.err_path_, std::string());
  }
  return *this;
}

absl::StatusOr<OutputSpool> OutputSpool::Open(const std::string& spool_dir,
                                              const std::string& task_id) {
  OutputSpool spool;
  for (bool is_stderr : {false, true}) {
    std::string path = TaskOutputSpoolPath(spool_dir, task_id, is_stderr);
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) return ErrnoStatus(errno, StrCat("create ", path));
    (is_stderr ? spool.err_path_ : spool.out_path_) = std::move(path);
    (is_stderr ? spool.err_ : spool.out_) = std::move(fd);
  }
  return spool;
}

absl::Status OutputSpool::Append(bool is_stderr, std::string_view data) {
  UniqueFd& fd = is_stderr ? err_ : out_;
  while (fd && !data.empty()) {
    ssize_t w = ::write(fd.get(), data.data(), data.size());
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int err = w < 0 ? errno : ENOSPC;
      fd.reset();
      return ErrnoStatus(err, StrCat("write ", is_stderr ? err_path_ : out_path_));
    }
    data.remove_prefix(static_cast<size_t>(w));
  }
  return absl::OkStatus();
}

}  // namespace rauha::shim
