#include "containerd-shim-rauha-v2/process_io.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "containerd-shim-rauha-v2/log.h"

namespace rauha::cshim {
namespace {

absl::Status Errno(int err, const std::string& what) {
  return absl::Status(err == ENOENT ? absl::StatusCode::kNotFound : absl::StatusCode::kInternal,
                      what + ": " + std::strerror(err));
}

// Writes all of `data` (retrying EINTR, short writes and EAGAIN on a non-blocking fd).
bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, -1);
      continue;
    }
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// After Finish, what a terminal still gives is relayed until it stays quiet this long: a
// background process of the container that keeps the terminal open must not hold the exit.
constexpr int kDrainQuietMs = 1000;

}  // namespace

absl::StatusOr<std::unique_ptr<ProcessIo>> ProcessIo::Open(const std::string& stdin_path,
                                                           const std::string& stdout_path,
                                                           const std::string& stderr_path,
                                                           bool terminal, uint16_t rows,
                                                           uint16_t cols) {
  std::unique_ptr<ProcessIo> io(new ProcessIo());
  // O_RDWR: the open never blocks, whether or not containerd's other end is there yet. A
  // stdin opened so is also a writer of its own: no EOF until we close it.
  auto open_fifo = [](const std::string& path, UniqueFd& fd, int extra) -> absl::Status {
    if (path.empty()) return absl::OkStatus();
    fd.reset(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOCTTY | extra));
    if (!fd) return Errno(errno, "open " + path);
    return absl::OkStatus();
  };
  if (auto s = open_fifo(stdout_path, io->stdout_fd_, 0); !s.ok()) return s;
  if (auto s = open_fifo(stderr_path, io->stderr_fd_, 0); !s.ok()) return s;
  if (!terminal) {
    io->stdin_path_ = stdin_path;
    io->stdout_path_ = stdout_path;
    io->stderr_path_ = stderr_path;
    return io;
  }
  io->master_.reset(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!io->master_) return Errno(errno, "posix_openpt (the process's terminal)");
  char name[64];
  if (::grantpt(io->master_.get()) < 0 || ::unlockpt(io->master_.get()) < 0 ||
      ::ptsname_r(io->master_.get(), name, sizeof(name)) != 0) {
    return Errno(errno, "unlockpt/ptsname of the process's terminal");
  }
  io->slave_.reset(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!io->slave_) return Errno(errno, std::string("open ") + name);
  if (rows != 0 && cols != 0) {
    winsize ws{};
    ws.ws_row = rows;
    ws.ws_col = cols;
    ::ioctl(io->master_.get(), TIOCSWINSZ, &ws);
  }
  io->wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!io->wake_) return Errno(errno, "eventfd");
  io->fifo_stdin_ = stdin_path;
  io->stdin_path_ = io->stdout_path_ = io->stderr_path_ = name;
  return io;
}

absl::Status ProcessIo::Starting() {
  std::lock_guard lock(mu_);
  const std::string& path = master_ ? fifo_stdin_ : stdin_path_;
  if (path.empty() || stdin_fd_ || stdin_closed_) return absl::OkStatus();
  // Without a terminal, our writer is there before the process's reader: it never sees an
  // EOF that only means containerd's writer has not opened yet.
  stdin_fd_.reset(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOCTTY | (master_ ? O_NONBLOCK : 0)));
  if (!stdin_fd_) return Errno(errno, "open " + path);
  return absl::OkStatus();
}

ProcessIo::~ProcessIo() { Finish(); }

void ProcessIo::Started() {
  std::lock_guard lock(mu_);
  started_ = true;
  if (master_ && !relay_.joinable() && !finished_) relay_ = std::thread([this] { Relay(); });
  // A CloseIO that came first: the process holds its reader now, so what containerd wrote
  // stays in the FIFO for it (a FIFO nobody holds open loses its data).
  if (!master_ && stdin_closed_) stdin_fd_.reset();
}

void ProcessIo::Relay() {
  char buf[16 * 1024];
  bool finishing = false;
  bool feeding = true;
  while (true) {
    {
      std::lock_guard lock(mu_);
      finishing = finished_;
      feeding = stdin_fd_ && !stdin_closed_ && !finished_;
    }
    pollfd fds[3] = {{master_.get(), POLLIN, 0},
                     {wake_.get(), POLLIN, 0},
                     {feeding ? stdin_fd_.get() : -1, POLLIN, 0}};
    int n = ::poll(fds, 3, finishing ? kDrainQuietMs : -1);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) return;  // finishing and quiet: whatever holds the terminal is not ours
    if (fds[1].revents) {
      uint64_t v;
      (void)!::read(wake_.get(), &v, sizeof(v));
    }
    if (fds[0].revents) {
      ssize_t r = ::read(master_.get(), buf, sizeof(buf));
      if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (r <= 0) return;  // EIO: every slave is closed and the output drained
      if (stdout_fd_) WriteAll(stdout_fd_.get(), buf, static_cast<size_t>(r));
    }
    if (fds[2].revents) {
      ssize_t r = ::read(stdin_fd_.get(), buf, sizeof(buf));
      if (r > 0) {
        WriteAll(master_.get(), buf, static_cast<size_t>(r));
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        std::lock_guard lock(mu_);
        stdin_closed_ = true;
      }
    }
  }
}

void ProcessIo::CloseStdin() {
  std::lock_guard lock(mu_);
  stdin_closed_ = true;
  if (master_) {
    uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof(one));
  } else if (started_) {
    stdin_fd_.reset();
  }
}

absl::Status ProcessIo::Resize(uint32_t rows, uint32_t cols) {
  if (!master_) return absl::OkStatus();
  if (rows > 0xFFFF || cols > 0xFFFF) {
    return absl::InvalidArgumentError("resize pty: height and width are at most 65535");
  }
  winsize ws{};
  ws.ws_row = static_cast<uint16_t>(rows);
  ws.ws_col = static_cast<uint16_t>(cols);
  if (::ioctl(master_.get(), TIOCSWINSZ, &ws) < 0) return Errno(errno, "resize pty (TIOCSWINSZ)");
  return absl::OkStatus();
}

void ProcessIo::WriteError(std::string_view text) {
  std::lock_guard lock(mu_);
  int fd = stderr_fd_ ? stderr_fd_.get() : stdout_fd_.get();
  if (fd >= 0 && !finished_) WriteAll(fd, text.data(), text.size());
}

void ProcessIo::Finish() {
  {
    std::lock_guard lock(mu_);
    if (finished_) return;
    finished_ = true;
    // The last slave we hold: the master reads EIO once the process's are closed too.
    slave_.reset();
    if (wake_) {
      uint64_t one = 1;
      (void)!::write(wake_.get(), &one, sizeof(one));
    }
  }
  if (relay_.joinable()) relay_.join();
  std::lock_guard lock(mu_);
  stdin_fd_.reset();
  stdout_fd_.reset();
  stderr_fd_.reset();
  master_.reset();
}

}  // namespace rauha::cshim
