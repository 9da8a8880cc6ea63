// What the CLI prints: aligned tables and key/value blocks for people, JSON for programs, and
// "rauha: <message>" on stderr for errors. Pure formatting, no I/O besides the Print* calls.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nlohmann/json.hpp"

namespace rauha::cli {

// Ordered, so objects print their keys in the order the code builds them (task_id first).
using Json = nlohmann::ordered_json;

// Columns separated by two spaces, each as wide as its widest cell; the last column is not
// padded. Cells are made Printable. The header is printed as given (callers pass it in caps: "NAME
// ID  STATE").
class Table {
 public:
  explicit Table(std::vector<std::string> header);
  // Short rows are padded with empty cells; extra cells are kept and widen the table.
  void AddRow(std::vector<std::string> cells);
  std::string ToString() const;
  bool empty() const { return rows_.empty(); }

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// `text` made safe for a terminal: C0 controls, DEL, C1 controls (U+0080..U+009F) and bytes
// that are not UTF-8 become visible escapes (\n, \t, \x1b, \u009b, \xff), so a name cannot
// forge table rows or send escape sequences. Printable text, UTF-8 included, is unchanged.
// `keep_newlines` leaves '\n' as is (multi-line error messages).
std::string Printable(std::string_view text, bool keep_newlines = false);

// "key:  value" lines with the values aligned, in the given order; values made Printable.
std::string KeyValues(const std::vector<std::pair<std::string, std::string>>& rows);

// JSON text; never throws: invalid UTF-8 in strings (a task's output) becomes U+FFFD, and
// DEL and C1 controls are written as \u escapes (JSON escapes C0 itself).
// indent < 0: one line (JSON lines); otherwise pretty-printed with that many spaces.
std::string DumpJson(const Json& value, int indent = 2);

// Writes DumpJson(value, indent) and a newline to stdout, and flushes.
void PrintJson(const Json& value, int indent = 2);

// "rauha: <message>" on stderr, the message made Printable (newlines kept).
void PrintError(std::string_view message);

// 1536 -> "1.5 KiB", 0 -> "0 B".
std::string HumanBytes(uint64_t bytes);

std::string YesNo(bool value);

}  // namespace rauha::cli
