// The stdio of one containerd process (a task or an exec), on the FIFOs containerd names.
//
// Without a terminal the process opens the FIFOs itself (rauhad's ProcessService); the shim
// holds a writer of the stdin FIFO (as runc's shim does) so the process sees EOF only after
// CloseIO, not whenever containerd's writer is not there yet, and holds stdout/stderr open
// so containerd's side of them finishes opening at once.
//
// With a terminal the shim opens a pty: the process gets its slave (by path) as stdin, stdout
// and stderr and makes it its controlling terminal; a relay thread copies the stdin FIFO to
// the master and the master to the stdout FIFO. ResizePty sets the master's window size (the
// process gets SIGWINCH). Finish() drains what the process wrote before its exit is told.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "rauha-common/fd.h"

namespace rauha::cshim {

class ProcessIo {
 public:
  // Opens what the process needs; `rows`/`cols` (0: unset) the terminal's first size.
  static absl::StatusOr<std::unique_ptr<ProcessIo>> Open(const std::string& stdin_path,
                                                         const std::string& stdout_path,
                                                         const std::string& stderr_path,
                                                         bool terminal, uint16_t rows,
                                                         uint16_t cols);
  ~ProcessIo();

  // The paths the process opens as its stdio (the pty's slave with a terminal).
  const std::string& stdin_path() const { return stdin_path_; }
  const std::string& stdout_path() const { return stdout_path_; }
  const std::string& stderr_path() const { return stderr_path_; }
  bool terminal() const { return master_.get() >= 0; }

  // Just before the process starts: opens the stdin FIFO. Not earlier: `ctr` closes stdin
  // (CloseIO) only once Exec/Create returned, and its copy of a short input would reach EOF
  // before that if our end let its FIFO open at once.
  absl::Status Starting();
  // The process runs (it holds the slave): start relaying.
  void Started();
  // CloseIO: the process's stdin reaches EOF (without a terminal) or stops being fed.
  void CloseStdin();
  // TIOCSWINSZ on the master; without a terminal nothing (as runc's shim).
  absl::Status Resize(uint32_t rows, uint32_t cols);
  // Writes a message for the user to stderr (the terminal's output with one).
  void WriteError(std::string_view text);
  // The process ended: relays what it left in the terminal, then closes our ends so that
  // containerd's readers see EOF. Idempotent.
  void Finish();

 private:
  ProcessIo() = default;
  void Relay();

  std::string stdin_path_, stdout_path_, stderr_path_;
  std::string fifo_stdin_;  // terminal: containerd's stdin FIFO (stdin_path_ is the slave)
  std::mutex mu_;
  UniqueFd stdin_fd_;  // no terminal: our writer (kept until CloseIO); terminal: read to relay
  UniqueFd stdout_fd_, stderr_fd_;
  UniqueFd master_, slave_;  // terminal only; our slave keeps the master readable until Finish
  UniqueFd wake_;            // eventfd: stop relaying stdin / finish
  std::thread relay_;
  bool stdin_closed_ = false;
  bool started_ = false;
  bool finished_ = false;
};

}  // namespace rauha::cshim
