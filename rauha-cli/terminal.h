// The client's terminal for commands that give a task one (`rauha exec -t`, `rauha sandbox
// -t`): raw mode while the session runs, its size, and writes that finish.
#pragma once

#include <termios.h>

#include <cstdint>
#include <string_view>

namespace rauha::cli {

// stdin's terminal in raw mode while alive (keys go to the task as typed, ^C included),
// restored on every way out: the destructor, and an exit on a second SIGINT/SIGTERM
// (signals.h). Does nothing when `enable` is false or stdin is not a terminal.
class RawTerminal {
 public:
  explicit RawTerminal(bool enable);
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

  bool active() const { return active_; }

 private:
  termios saved_{};
  bool active_ = false;
};

// The size of the terminal on stdout (else stdin); false when neither is one.
bool TerminalSize(uint32_t* rows, uint32_t* cols);

// Writes all of `data` to `fd` (gives up on an error other than EINTR).
void WriteAll(int fd, std::string_view data);

}  // namespace rauha::cli
