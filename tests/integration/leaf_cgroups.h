// Leaf cgroups for one test of rauha-shim: a child named "<name>-<pid>" of this process's own
// cgroup in the v1 pids hierarchy (/sys/fs/cgroup/pids) and in cgroup v2 (mounted at
// /sys/fs/cgroup/unified), made by Make() and removed at the end of the test (or by Remove()),
// waiting for their last process to leave; a directory still there fails the test.
#pragma once

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace rauha::testing {

class LeafCgroups {
 public:
  explicit LeafCgroups(const std::string& name)
      : leaf_(name + "-" + std::to_string(::getpid())),
        own_v1_(OwnCgroup("pids")),
        own_v2_(OwnCgroup("")),
        rel_v1_((own_v1_ == "/" ? "" : own_v1_) + "/" + leaf_),
        rel_v2_((own_v2_ == "/" ? "" : own_v2_) + "/" + leaf_),
        v1_("/sys/fs/cgroup/pids" + rel_v1_),
        v2_("/sys/fs/cgroup/unified" + rel_v2_) {}
  LeafCgroups(const LeafCgroups&) = delete;
  LeafCgroups& operator=(const LeafCgroups&) = delete;
  ~LeafCgroups() { Remove(); }

  // Whether this host has both hierarchies, and this process a pids cgroup.
  bool available() const {
    return !own_v1_.empty() && std::filesystem::exists("/sys/fs/cgroup/pids/cgroup.procs") &&
           std::filesystem::exists("/sys/fs/cgroup/unified/cgroup.procs");
  }

  // Call as ASSERT_NO_FATAL_FAILURE(cgroups.Make()).
  void Make() {
    ASSERT_EQ(::mkdir(v1_.c_str(), 0755), 0) << v1_ << ": " << std::strerror(errno);
    made_v1_ = true;
    ASSERT_EQ(::mkdir(v2_.c_str(), 0755), 0) << v2_ << ": " << std::strerror(errno);
    made_v2_ = true;
  }

  void Remove() {
    for (auto [dir, made] : {std::pair{&v1_, &made_v1_}, std::pair{&v2_, &made_v2_}}) {
      if (!*made) continue;
      *made = false;
      for (int i = 0; i < 100 && ::rmdir(dir->c_str()) < 0 && errno == EBUSY; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      EXPECT_FALSE(std::filesystem::exists(*dir)) << "cgroup left behind: " << *dir;
    }
  }

  const std::string& leaf() const { return leaf_; }
  // The directories.
  const std::string& v1() const { return v1_; }
  const std::string& v2() const { return v2_; }
  // The paths as /proc/<pid>/cgroup shows them ("/<own cgroup>/<leaf>").
  const std::string& rel_v1() const { return rel_v1_; }
  const std::string& rel_v2() const { return rel_v2_; }

 private:
  // This process's cgroup in a hierarchy, from /proc/self/cgroup ("" if absent).
  static std::string OwnCgroup(const std::string& controller_field) {
    std::ifstream in("/proc/self/cgroup");
    for (std::string line; std::getline(in, line);) {
      auto first = line.find(':');
      auto second = line.find(':', first + 1);
      if (first == std::string::npos || second == std::string::npos) continue;
      if (line.substr(first + 1, second - first - 1) == controller_field) {
        return line.substr(second + 1);
      }
    }
    return "";
  }

  std::string leaf_, own_v1_, own_v2_, rel_v1_, rel_v2_, v1_, v2_;
  bool made_v1_ = false, made_v2_ = false;
};

}  // namespace rauha::testing
