// rauhad's sockets are 0600 and root's from the moment they can be reached: the gRPC socket is
// bound in a private directory and renamed into place (rauhad/private_socket.h), the ttrpc
// endpoint's is made 0600 before its bind. Nothing of that directory stays, a crashed rauhad's
// socket and bind directory do not stop the next start, and a name rauhad did not make is
// left alone.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>

#include "rauha-common/fd.h"
#include "rauha-common/shim_endpoint_path.h"
#include "tests/integration/daemon_fixture.h"

namespace rauha::testing {
namespace {

using SocketModeTest = DaemonTest;

std::string BindDir(const Daemon& d) { return d.dir() + "/.rauhad.sock.bind"; }

void ExpectRootOnly(const std::string& path) {
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  EXPECT_TRUE(S_ISSOCK(st.st_mode)) << path;
  EXPECT_EQ(st.st_mode & 07777, 0600u) << path;
  EXPECT_EQ(st.st_uid, 0u) << path;
}

// The names in the socket's directory (the fixture's: the sockets, the log, run and state).
std::set<std::string> Names(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out.insert(e.path().filename().string());
  }
  return out;
}

// A socket bound at `path` and closed: what a killed process leaves.
void BindStale(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
      << path << ": " << std::strerror(errno);
}

TEST_F(SocketModeTest, SocketsAreRootOnlyAndNoBindDirectoryStays) {
  ExpectRootOnly(daemon_->socket());
  ExpectRootOnly(ShimEndpointPath(daemon_->socket()));
  EXPECT_EQ(Names(daemon_->dir()), (std::set<std::string>{"rauhad.sock", "rauhad.sock.ttrpc",
                                                          "rauhad.log", "run", "state"}));
}

TEST_F(SocketModeTest, RestartsOverACrashedDaemonsSocketAndBindDirectory) {
  daemon_->Kill9();
  struct stat st {};
  ASSERT_EQ(::lstat(daemon_->socket().c_str(), &st), 0) << "SIGKILL left no socket to test with";
  // As if killed between the bind and the rename: the directory with the bound socket.
  ASSERT_EQ(::mkdir(BindDir(*daemon_).c_str(), 0700), 0) << std::strerror(errno);
  ASSERT_NO_FATAL_FAILURE(BindStale(BindDir(*daemon_) + "/s"));

  daemon_->keep_stale_socket_once();
  ASSERT_NO_FATAL_FAILURE(daemon_->Start());
  ExpectRootOnly(daemon_->socket());
  EXPECT_FALSE(std::filesystem::exists(BindDir(*daemon_)));
  EXPECT_TRUE(CreateZone("after-restart").ok()) << "the new socket does not serve";
}

TEST_F(SocketModeTest, ABindDirectoryNameNotItsOwnIsRefusedAndKept) {
  daemon_->Stop();
  const std::string dir = BindDir(*daemon_);
  ASSERT_EQ(::mkdir(dir.c_str(), 0700), 0) << std::strerror(errno);
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0) << std::strerror(errno);  // not rauhad's 0700

  EXPECT_EQ(daemon_->StartExpectingExit(), 1) << daemon_->log();
  EXPECT_NE(daemon_->log().find(dir + " exists and is not rauhad's bind directory"),
            std::string::npos)
      << daemon_->log();
  EXPECT_TRUE(std::filesystem::is_directory(dir));
  EXPECT_FALSE(std::filesystem::exists(daemon_->socket()));
  std::filesystem::remove(dir);
  ASSERT_NO_FATAL_FAILURE(daemon_->Start());
}

}  // namespace
}  // namespace rauha::testing
