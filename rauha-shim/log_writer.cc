#include "rauha-shim/log_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "rauha-common/container_log.h"
#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"

namespace rauha::shim {
namespace {

UniqueFd OpenLog(const std::string& path) {
  return UniqueFd(
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600));
}

}  // namespace

absl::StatusOr<std::unique_ptr<LogWriter>> LogWriter::Open(const std::string& path,
                                                           uint64_t max_bytes) {
  UniqueFd fd = OpenLog(path);
  if (!fd) return ErrnoStatus(errno, StrCat("open log ", path));
  struct stat st;
  if (::fstat(fd.get(), &st) < 0) return ErrnoStatus(errno, StrCat("stat log ", path));
  return std::unique_ptr<LogWriter>(
      new LogWriter(path, max_bytes, std::move(fd), static_cast<uint64_t>(st.st_size)));
}

void LogWriter::Write(bool is_stderr, std::string_view data, int64_t now_ns) {
  std::string& pending = pending_[is_stderr ? 1 : 0];
  while (!data.empty()) {
    size_t nl = data.find('\n');
    if (nl == std::string_view::npos) {
      pending.append(data);
      while (pending.size() >= kMaxLine) {
        Emit(is_stderr, true, std::string_view(pending).substr(0, kMaxLine), now_ns);
        pending.erase(0, kMaxLine);
      }
      return;
    }
    if (pending.empty()) {
      Emit(is_stderr, false, data.substr(0, nl), now_ns);
    } else {
      pending.append(data.substr(0, nl));
      Emit(is_stderr, false, pending, now_ns);
      pending.clear();
    }
    data.remove_prefix(nl + 1);
  }
}

void LogWriter::Flush(int64_t now_ns) {
  for (int i = 0; i < 2; ++i) {
    if (pending_[i].empty()) continue;
    Emit(i == 1, false, pending_[i], now_ns);
    pending_[i].clear();
  }
}

void LogWriter::Rotate() {
  // rename(2) replaces the previous ".1" atomically; a reader holding the old file keeps it.
  std::string old = StrCat(path_, ".1");
  if (::rename(path_.c_str(), old.c_str()) < 0) {
    if (error_.empty()) error_ = StrCat("rotate ", path_, ": ", strerror(errno));
    return;
  }
  UniqueFd fd = OpenLog(path_);
  if (!fd) {
    if (error_.empty()) error_ = StrCat("reopen ", path_, ": ", strerror(errno));
    fd_.reset();
    return;
  }
  fd_ = std::move(fd);
  size_ = 0;
}

void LogWriter::Emit(bool is_stderr, bool partial, std::string_view text, int64_t now_ns) {
  if (!fd_) return;
  std::string record = FormatLogRecord(now_ns, is_stderr, partial, text);
  if (max_bytes_ != 0 && size_ > 0 && size_ + record.size() > max_bytes_) Rotate();
  if (!fd_) return;
  std::string_view rest = record;
  while (!rest.empty()) {
    ssize_t n = ::write(fd_.get(), rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // A full disk must not stop the task: the log stays incomplete and says nothing more.
      if (error_.empty()) error_ = StrCat("write ", path_, ": ", n < 0 ? strerror(errno) : "short");
      fd_.reset();
      return;
    }
    rest.remove_prefix(static_cast<size_t>(n));
    size_ += static_cast<uint64_t>(n);
  }
}

}  // namespace rauha::shim
