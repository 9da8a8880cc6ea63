// A pull through rauhad with its progress drawn: `rauha image pull` draws on stdout, and
// `rauha sandbox --image` pulling a missing image draws on stderr (its stdout is the JSON
// result alone).
#pragma once

#include <cstdio>
#include <string>

#include "rauha-cli/commands.h"

namespace rauha::cli {

// Pulls `reference` through rauhad's ImageService, drawing per-layer progress on `progress`
// (bars redrawn in place when it is a terminal, else one line per layer state) unless it is
// null. Returns 0 and the manifest digest in *digest, or prints the error and returns the exit
// code: 128 + N when signal N cancelled the pull, else `error_code`.
int PullWithProgress(const Cli& cli, const std::string& reference, std::FILE* progress,
                     int error_code, std::string* digest);

}  // namespace rauha::cli
