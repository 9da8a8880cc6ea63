#include "rauha-shim/output_spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "rauha-common/errors.h"
#include "rauha-common/shim_protocol.h"
#include "rauha-common/strcat.h"

namespace rauha::shim {

OutputSpool::~OutputSpool() { RemoveFiles(); }

void OutputSpool::RemoveFiles() {
  for (Stream* stream : {&out_, &err_}) {
    stream->fd.reset();
    if (stream->created && !stream->path.empty()) ::unlink(stream->path.c_str());
    *stream = Stream();
  }
}

OutputSpool& OutputSpool::operator=(OutputSpool&& other) noexcept {
  if (this != &other) {
    RemoveFiles();
    // The paths move with the files: the moved-from spool removes nothing.
    out_ = std::exchange(other.out_, Stream());
    err_ = std::exchange(other.err_, Stream());
  }
  return *this;
}

absl::StatusOr<OutputSpool> OutputSpool::Open(const std::string& spool_dir,
                                              const std::string& task_id) {
  OutputSpool spool;
  spool.out_.path = TaskOutputSpoolPath(spool_dir, task_id, false);
  spool.err_.path = TaskOutputSpoolPath(spool_dir, task_id, true);
  return spool;
}

absl::Status OutputSpool::Append(bool is_stderr, std::string_view data) {
  Stream& stream = is_stderr ? err_ : out_;
  if (stream.stopped || stream.path.empty() || data.empty()) return absl::OkStatus();
  if (!stream.created) {
    stream.fd.reset(
        ::open(stream.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!stream.fd) {
      stream.stopped = true;
      return ErrnoStatus(errno, StrCat("create ", stream.path));
    }
    stream.created = true;
  }
  while (!data.empty()) {
    ssize_t w = ::write(stream.fd.get(), data.data(), data.size());
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int err = w < 0 ? errno : ENOSPC;
      stream.fd.reset();
      stream.stopped = true;
      return ErrnoStatus(err, StrCat("write ", stream.path));
    }
    data.remove_prefix(static_cast<size_t>(w));
  }
  return absl::OkStatus();
}

}  // namespace rauha::shim
