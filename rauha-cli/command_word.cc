#include "rauha-cli/command_word.h"

#include "CLI/CLI.hpp"

namespace rauha::cli {

std::string CommandWord(const CLI::App& app, const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() < 2 || arg[0] != '-') return arg;
    // Short options (-h) and "--" end the search: the only short one is the help flag.
    if (arg == "--" || arg[1] != '-') return "";
    const size_t eq = arg.find('=');
    const CLI::Option* option = app.get_option_no_throw(arg.substr(0, eq));
    if (option == nullptr || option == app.get_help_ptr()) return "";
    if (option->get_items_expected_max() == 0) continue;  // a flag
    if (option->get_items_expected_min() != 1 || option->get_items_expected_max() != 1) return "";
    // "--socket PATH" and "--socket= PATH" take the next word, whatever it is.
    if (eq == std::string::npos || eq + 1 == arg.size()) ++i;
  }
  return "";
}

}  // namespace rauha::cli
