// Which top-level command a command line runs, found before CLI11 parses it, so that main()
// builds the options of that command alone. CLI11 builds every option of every command it is
// given, which was ~15 % of the CPU of `rauha version` (eval/bench/README.md, "The CLI's
// floor").
#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace rauha::cli {

// The first word of `args` that is neither one of `app`'s own options nor an option's value
// (an option of one value takes the next word, whatever it is, as CLI11 does): the command
// CLI11 runs if that word names one. "" when nothing is certain before parsing: a help flag,
// "--", or an option `app` does not know comes first, or there is no such word. `app` holds
// the global options only; `args` are the words after the program's name.
std::string CommandWord(const CLI::App& app, const std::vector<std::string>& args);

}  // namespace rauha::cli
