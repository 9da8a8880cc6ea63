// A container removed at its exit (--rm, auto_remove) has its writable layer on a tmpfs of its
// own mount namespace: nothing of it is written to the state dir's disk, so the overlay's
// unmount as its last process exits is no syncfs of the state dir's whole file system, and
// nothing is left to unlink after it. A container that is kept keeps a synced upper in the
// state dir (it is started again on it).
#include <sstream>

#include "tests/integration/container_fixture.h"

namespace rauha::testing {
namespace {

class ContainerUpperTest : public ContainerTest {
 protected:
  // The super options of the overlay mounted at "/" in the mount namespace of `pid`.
  static std::string RootOverlayOptions(pid_t pid) {
    std::string mountinfo = ReadWholeFile("/proc/" + std::to_string(pid) + "/mountinfo");
    size_t pos = 0;
    while (pos < mountinfo.size()) {
      size_t nl = mountinfo.find('\n', pos);
      if (nl == std::string::npos) nl = mountinfo.size();
      std::string line = mountinfo.substr(pos, nl - pos);
      pos = nl + 1;
      // "<id> <parent> <dev> <root> <mount point> <options> ... - <fstype> <source> <super>"
      std::istringstream fields(line);
      std::string id, parent, dev, root, point;
      fields >> id >> parent >> dev >> root >> point;
      size_t dash = line.find(" - ");
      if (point != "/" || dash == std::string::npos) continue;
      std::istringstream tail(line.substr(dash + 3));
      std::string fstype, source, super;
      tail >> fstype >> source >> super;
      if (fstype == "overlay") return super;
    }
    return "";
  }

  // Whether overlay super options say "volatile" (6.x kernels show it as fsync=volatile).
  static bool Volatile(const std::string& options) {
    const std::string o = "," + options + ",";
    return o.find(",volatile,") != std::string::npos ||
           o.find(",fsync=volatile,") != std::string::npos;
  }

  // Starts a container that waits, and returns the options of its root overlay.
  std::string OptionsOfARunning(bool auto_remove, std::string* id) {
    return RootOverlayOptions(StartSleeper(auto_remove, id));
  }
};

TEST_F(ContainerUpperTest, AnAutoRemovedContainersUpperIsNotOnDiskAndAKeptOnesIsSynced) {
  std::string removed_id, kept_id;
  std::string removed = OptionsOfARunning(/*auto_remove=*/true, &removed_id);
  std::string kept = OptionsOfARunning(/*auto_remove=*/false, &kept_id);
  EXPECT_NE(removed.find("upperdir="), std::string::npos) << removed;
  EXPECT_EQ(removed.find(State()), std::string::npos)
      << "the upper of an auto-removed container is not in the state dir: " << removed;
  EXPECT_FALSE(std::filesystem::exists(State() + "/containers/" + removed_id + "/upper"));
  const std::string kept_upper = State() + "/containers/" + kept_id + "/upper";
  EXPECT_NE(kept.find("upperdir=" + kept_upper), std::string::npos) << kept;
  EXPECT_FALSE(Volatile(kept)) << kept;

  ASSERT_TRUE(Stop(removed_id, 5).ok());
  WaitGone(removed_id);
  ASSERT_TRUE(Stop(kept_id, 5).ok());
  // The kept one starts again on its synced upper.
  ASSERT_TRUE(Start(kept_id).ok());
  WaitForState(kept_id, "Running");
  ASSERT_TRUE(Delete(kept_id, true).ok());
  ExpectGone(kept_id);
  EXPECT_EQ(ZoneCount(), 0);
}

}  // namespace
}  // namespace rauha::testing
