// A SandboxResult as the JSON object `rauha sandbox` and `rauha task wait` print, and the exit
// code the CLI returns for it. Pure: no I/O.
//
// Exit codes (documented in `rauha sandbox --help`):
//   the task's exit code   when it exited (0..255)
//   128 + N                when signal N ended it
//   124                    status "timed_out"
//   125                    status "runtime_error" (or "error"), or no result at all: the CLI,
//                          rauhad or gRPC failed
//   2                      usage error
//   130 / 143              the CLI itself got SIGINT / SIGTERM and cancelled the task
#pragma once

#include "rauha-cli/output.h"
#include "rauha/v1/sandbox.pb.h"

namespace rauha::cli {

inline constexpr int kExitUsage = 2;
inline constexpr int kExitTimedOut = 124;
inline constexpr int kExitRuntimeError = 125;

// 128 + signo, the shell's convention for "ended by signal".
constexpr int ExitCodeForSignal(int signo) { return 128 + signo; }

// Every field, numbers as JSON numbers; exit_code, signal and an enforcement event's pid are
// null when absent; "error" is present only when non-empty.
Json SandboxResultToJson(const rauha::sandbox::v1::SandboxResult& result);

// The CLI's exit code for a result, by the table above. A "failed" task never maps to 0, and an
// exit code outside 0..255 or a result with neither exit code nor signal maps to 125.
int ExitCodeForResult(const rauha::sandbox::v1::SandboxResult& result);

}  // namespace rauha::cli
