#include "tests/containerd/private_mounts.h"

#include <errno.h>
#include <string.h>
#include <sys/mount.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

namespace rauha::testing {

namespace {

// mountinfo writes space, tab, newline and backslash in a path as \ooo (octal).
std::string UnescapeMountinfo(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    auto octal = [&](size_t k) { return k < s.size() && s[k] >= '0' && s[k] <= '7'; };
    if (s[i] == '\\' && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool IsAtOrBelow(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         path[dir.size()] == '/');
}

}  // namespace

std::vector<std::string> MountsUnder(const std::string& dir) {
  std::vector<std::string> points;
  std::ifstream mountinfo("/proc/self/mountinfo");
  for (std::string line; std::getline(mountinfo, line);) {
    // "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw": the fifth is the point.
    std::istringstream fields(line);
    std::string id, parent, devno, root, point;
    if (!(fields >> id >> parent >> devno >> root >> point)) continue;
    point = UnescapeMountinfo(point);
    if (IsAtOrBelow(point, dir)) points.push_back(point);
  }
  // Deepest first. Of mounts stacked on one point the table lists the upper one later, and
  // only the upper one can go: reversed, then a stable sort by depth.
  std::reverse(points.begin(), points.end());
  std::stable_sort(points.begin(), points.end(), [](const std::string& a, const std::string& b) {
    return std::count(a.begin(), a.end(), '/') > std::count(b.begin(), b.end(), '/');
  });
  return points;
}

std::vector<std::string> UnmountAllUnder(const std::string& dir) {
  // Rounds of plain unmounts (a process just killed may hold a mount busy for a moment, and a
  // parent is free only once its children are gone); the last rounds detach what is busy.
  constexpr int kRounds = 50;
  constexpr int kDetachFrom = 40;
  std::vector<std::string> errors;
  for (int round = 0; round < kRounds; ++round) {
    auto points = MountsUnder(dir);
    if (points.empty()) return {};
    errors.clear();
    for (const auto& p : points) {
      int flags = UMOUNT_NOFOLLOW | (round >= kDetachFrom ? MNT_DETACH : 0);
      if (::umount2(p.c_str(), flags) < 0) {
        errors.push_back(p + ": umount: " + ::strerrordesc_np(errno));
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto left = MountsUnder(dir);
  if (left.empty()) return {};
  if (errors.empty()) {
    for (const auto& p : left) errors.push_back(p + ": still mounted");
  }
  return errors;
}

}  // namespace rauha::testing
