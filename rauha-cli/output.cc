#include "rauha-cli/output.h"

#include <algorithm>
#include <cstdio>
#include <iostream>

namespace rauha::cli {

Table::Table(std::vector<std::string> header) : header_(std::move(header)) {}

void Table::AddRow(std::vector<std::string> cells) {
  for (auto& cell : cells) cell = Printable(cell);
  rows_.push_back(std::move(cells));
}

std::string Table::ToString() const {
  size_t columns = header_.size();
  for (const auto& row : rows_) columns = std::max(columns, row.size());
  std::vector<size_t> width(columns, 0);
  auto measure = [&](const std::vector<std::string>& row) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  };
  measure(header_);
  for (const auto& row : rows_) measure(row);

  std::string out;
  auto emit = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < columns; ++i) {
      const std::string cell = i < row.size() ? row[i] : "";
      line += cell;
      if (i + 1 < columns) line.append(width[i] - cell.size() + 2, ' ');
    }
    // Empty trailing cells would otherwise leave spaces at the end of the line.
    line.erase(line.find_last_not_of(' ') + 1);
    out += line;
    out += '\n';
  };
  emit(header_);
  for (const auto& row : rows_) emit(row);
  return out;
}

std::string KeyValues(const std::vector<std::pair<std::string, std::string>>& rows) {
  size_t width = 0;
  for (const auto& [key, value] : rows) width = std::max(width, key.size() + 1);
  std::string out;
  for (const auto& [key, value] : rows) {
    out += key;
    out += ':';
    out.append(width - (key.size() + 1) + 2, ' ');
    out += Printable(value);
    out += '\n';
  }
  return out;
}

namespace {

// Length of the valid UTF-8 sequence at the start of `s`, or 0.
size_t Utf8Length(std::string_view s) {
  auto c = static_cast<unsigned char>(s[0]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (n == 0 || n > s.size()) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80) return 0;
  }
  uint32_t cp = n == 1 ? c : c & (0x7f >> n);
  for (size_t i = 1; i < n; ++i) cp = (cp << 6) | (static_cast<unsigned char>(s[i]) & 0x3f);
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

bool IsC1(std::string_view s) {
  return s.size() >= 2 && static_cast<unsigned char>(s[0]) == 0xc2 &&
         static_cast<unsigned char>(s[1]) >= 0x80 && static_cast<unsigned char>(s[1]) <= 0x9f;
}

}  // namespace

std::string Printable(std::string_view text, bool keep_newlines) {
  std::string out;
  out.reserve(text.size());
  char buf[8];
  while (!text.empty()) {
    auto c = static_cast<unsigned char>(text[0]);
    size_t n = Utf8Length(text);
    if (n == 0) {
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
      n = 1;
    } else if (IsC1(text)) {
      std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned char>(text[1]));
      out += buf;
    } else if (c == '\n' && keep_newlines) {
      out += '\n';
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out.append(text.substr(0, n));
    }
    text.remove_prefix(n);
  }
  return out;
}

std::string DumpJson(const Json& value, int indent) {
  std::string text =
      value.dump(indent, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
  // The dump is valid UTF-8; DEL and the C1 controls can only appear inside strings.
  std::string out;
  out.reserve(text.size());
  char buf[8];
  for (size_t i = 0; i < text.size(); ++i) {
    std::string_view rest(text.data() + i, text.size() - i);
    if (text[i] == 0x7f || IsC1(rest)) {
      unsigned code = text[i] == 0x7f ? 0x7f : static_cast<unsigned char>(text[i + 1]);
      std::snprintf(buf, sizeof(buf), "\\u%04x", code);
      out += buf;
      if (text[i] != 0x7f) ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

void PrintJson(const Json& value, int indent) {
  std::cout << DumpJson(value, indent) << '\n' << std::flush;
}

void PrintError(std::string_view message) {
  std::cout << std::flush;
  std::cerr << "rauha: " << Printable(message, /*keep_newlines=*/true) << '\n' << std::flush;
}

std::string HumanBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f %s", value, kUnits[unit]);
  return buf;
}

std::string YesNo(bool value) { return value ? "yes" : "no"; }

}  // namespace rauha::cli
