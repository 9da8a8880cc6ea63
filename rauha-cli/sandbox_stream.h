// `rauha sandbox --stream` and `rauha sandbox -t`: the task live over RunSandboxStream.
#pragma once

#include "rauha-cli/commands.h"
#include "rauha/v1/sandbox.pb.h"

namespace rauha::cli {

struct StreamFlags {
  bool stdin = false;  // -i: this stdin goes to the task as it comes (stdin_close at its EOF)
  bool tty = false;    // -t: a terminal in the zone; this one in raw mode meanwhile
  bool json = false;   // --json: the whole result on stdout at the end, not the summary
};

// Runs `request` with its output on this stdout / stderr as it comes, then the summary (stderr)
// or the JSON result (stdout). Returns the exit code of `rauha sandbox` (the task's own, ...).
int RunSandboxStreaming(const Cli& cli, const rauha::sandbox::v1::RunSandboxRequest& request,
                        const StreamFlags& flags);

}  // namespace rauha::cli
