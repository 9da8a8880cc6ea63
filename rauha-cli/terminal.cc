#include "rauha-cli/terminal.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

#include "rauha-cli/signals.h"

namespace rauha::cli {
namespace {

// The mode to restore when the process exits on a signal while a RawTerminal is alive; read
// by the signal watcher's thread (tcsetattr is async-signal-safe, and this is not even a
// handler).
termios saved_for_exit;

void RestoreForExit() { ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_for_exit); }

}  // namespace

RawTerminal::RawTerminal(bool enable) {
  if (!enable || ::isatty(STDIN_FILENO) != 1 || ::tcgetattr(STDIN_FILENO, &saved_) < 0) return;
  termios raw = saved_;
  ::cfmakeraw(&raw);
  saved_for_exit = saved_;
  SetBeforeSignalExit(RestoreForExit);
  active_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  if (!active_) SetBeforeSignalExit(nullptr);
}

RawTerminal::~RawTerminal() {
  if (!active_) return;
  ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  SetBeforeSignalExit(nullptr);
}

bool TerminalSize(uint32_t* rows, uint32_t* cols) {
  winsize ws{};
  if ((::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_row == 0) &&
      (::ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_row == 0)) {
    return false;
  }
  *rows = ws.ws_row;
  *cols = ws.ws_col;
  return true;
}

void WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace rauha::cli
