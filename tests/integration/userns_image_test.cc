// Image layers in a zone's user namespace: every lower layer is an idmapped mount (no chown
// copy), so files of several owners keep their ids inside while the task's root is an
// unprivileged host id; what a container's root writes lands in its upper layer owned by the
// zone's host ids; the layers on the host never change. Ownership is read from the host
// (stat of the layer cache and the upper dir), not taken from rauhad's word.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "rauha/v1/container.grpc.pb.h"
#include "tests/integration/daemon_fixture.h"
#include "tests/integration/local_image.h"
#include "tests/integration/registry_fixture.h"
#include "tests/integration/tar_builder.h"

namespace rauha::testing {
namespace {

namespace spb = rauha::sandbox::v1;
namespace zpb = rauha::zone::v1;
namespace cpb = rauha::container::v1;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kBusybox = "/bin/busybox";
constexpr const char* kImage = "rauha-test/owners:1";
// The default --userns-range starts here: no zone's root is below it.
constexpr uint32_t kDefaultFirst = 100000000;

std::vector<std::string> Words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// Processes whose mount table mentions `needle`.
std::vector<pid_t> ProcessesMounting(const std::string& needle) {
  std::vector<pid_t> out;
  DIR* proc = ::opendir("/proc");
  if (!proc) return out;
  while (dirent* e = ::readdir(proc)) {
    pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    std::string mounts = ReadWholeFile("/proc/" + std::string(e->d_name) + "/mountinfo");
    if (mounts.find(needle) != std::string::npos) out.push_back(pid);
  }
  ::closedir(proc);
  return out;
}

// The standard test policy with "/" writable (the task's or the container's upper layer).
std::string WritableRootPolicy() {
  std::string policy = PolicyWith("pids_max = 64");
  const std::string tmp_only = "writable_paths = [\"/tmp\"]";
  size_t at = policy.find(tmp_only);
  EXPECT_NE(at, std::string::npos);
  if (at != std::string::npos) {
    policy.replace(at, tmp_only.size(), "writable_paths = [\"/\", \"/tmp\"]");
  }
  return policy;
}

class UsernsImageTest : public DaemonTest {
 protected:
  void SetUp() override {
    if (::access(kBusybox, X_OK) != 0) {
      if (RequireAll()) FAIL() << kBusybox << " missing (install busybox-static)";
      GTEST_SKIP() << kBusybox << " missing (install busybox-static)";
    }
    DaemonTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    // One layer: busybox, and files of root, of user 1000, of nobody (65534), and a setgid
    // directory of group 1000.
    TarBuilder layer;
    layer.Dir("bin").File("bin/busybox", ReadWholeFile(kBusybox), {.perm = 0755});
    for (const char* applet : {"sh", "cat", "stat", "id", "echo", "mkdir", "touch", "chmod",
                               "chown", "mv", "rm", "ln", "mount", "true", "grep"}) {
      layer.Symlink(std::string("bin/") + applet, "busybox");
    }
    layer.Dir("etc").File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
    layer.Dir("owned")
        .File("owned/root", "root\n", {.perm = 0644})
        .File("owned/user", "user\n", {.perm = 0640, .uid = 1000, .gid = 1000})
        .File("owned/nobody", "nobody\n", {.perm = 0600, .uid = 65534, .gid = 65534})
        .Dir("owned/shared", {.perm = 02775, .uid = 0, .gid = 1000});
    digest_ =
        RecordLocalImage(daemon_->dir() + "/state", {layer.Build(image::LayerCompression::kGzip)},
                         {{"config", {{"Env", {"PATH=/bin"}}}}}, kImage);
  }

  // The unpacked layer on the host (the layer cache), found by its content.
  std::string LayerDir() const {
    for (const auto& e : fs::directory_iterator(daemon_->dir() + "/state/layers/sha256")) {
      if (fs::exists(e.path() / "owned")) return e.path().string();
    }
    return "";
  }

  uint32_t ZoneFirst(const std::string& zone) {
    zpb::GetZoneRequest req;
    req.set_name(zone);
    zpb::GetZoneResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(daemon_->Zones()->GetZone(&ctx, req, &resp).ok()) << zone;
    return resp.zone().userns_host_first();
  }

  // Every zone.userns warning and unavailable control of a result, one a line.
  static std::string UsernsGaps(const spb::SandboxResult& r) {
    std::string out;
    for (const auto& c : r.unavailable_controls()) {
      if (c.find("userns") != std::string::npos) out += c + "\n";
    }
    for (const auto& e : r.events()) {
      if (e.message().find("zone.userns") != std::string::npos) out += e.message() + "\n";
    }
    return out;
  }

  std::string digest_;
};

void ExpectLayerUnchanged(const std::string& layer) {
  struct stat st {};
  ASSERT_EQ(::lstat((layer + "/owned/root").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 0u);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(ReadWholeFile(layer + "/owned/root"), "root\n");
  ASSERT_EQ(::lstat((layer + "/owned/user").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u) << "no chown copy of the layer";
  ASSERT_EQ(::lstat((layer + "/owned/shared").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 1000u);
  EXPECT_EQ(st.st_mode & 07777, 02775u);
  EXPECT_FALSE(fs::exists(layer + "/owned/shared/sub"));
  EXPECT_FALSE(fs::exists(layer + "/owned/shared/f"));
}

TEST_F(UsernsImageTest, ImageFilesKeepTheirOwnersInsideWhileRootIsNotTheHosts) {
  ASSERT_FALSE(digest_.empty());
  spb::RunSandboxRequest req;
  req.set_image(kImage);
  auto r = Run({"/bin/sh", "-c",
                "stat -c '%n %u:%g %a' /owned/root /owned/user /owned/nobody /owned/shared; "
                "mkdir /owned/shared/sub 2>/dev/null || echo ro; id -u; id -g; "
                "cat /proc/self/uid_map /proc/self/gid_map; stat -c %u:%g /etc/hosts /tmp"},
               req);
  ASSERT_EQ(r.status(), "succeeded") << r.stderr() << r.error();
  EXPECT_EQ(r.image_digest(), digest_);
  auto w = Words(r.stdout());
  ASSERT_EQ(w.size(), 23u) << r.stdout();
  const std::vector<std::string> owners = {
      "/owned/root",   "0:0",         "644", "/owned/user",   "1000:1000", "640",
      "/owned/nobody", "65534:65534", "600", "/owned/shared", "0:1000",    "2775"};
  EXPECT_EQ(std::vector<std::string>(w.begin(), w.begin() + 12), owners) << r.stdout();
  EXPECT_EQ(w[12], "ro") << "the image root is read-only outside the writable paths";
  EXPECT_EQ(w[13], "0") << "id -u";
  EXPECT_EQ(w[14], "0") << "id -g";
  // uid_map: "0 <host first> 65536", the same for gids; not the host's identity map.
  EXPECT_EQ(w[15], "0");
  EXPECT_GE(std::stoul(w[16]), kDefaultFirst) << r.stdout();
  EXPECT_EQ(w[17], "65536");
  EXPECT_EQ(std::vector<std::string>(w.begin() + 18, w.begin() + 21),
            std::vector<std::string>(w.begin() + 15, w.begin() + 18))
      << "gid_map";
  // What the shim wrote into the image root (/etc/hosts) and its /tmp are the zone root's.
  EXPECT_EQ(w[21], "0:0");
  EXPECT_EQ(w[22], "0:0");
  EXPECT_EQ(UsernsGaps(r), "") << "no warning that the image keeps the host's ids";
  // The setgid directory keeps working through the idmapping: a writable root (the upper
  // layer is the task's tmpfs) makes a directory that inherits group 1000 and the bit.
  spb::RunSandboxRequest writable = req;
  writable.set_policy_toml(WritableRootPolicy());
  r = Run({"/bin/sh", "-c",
           "mkdir /owned/shared/sub && touch /owned/shared/f && "
           "stat -c '%u:%g %a' /owned/shared/sub /owned/shared/f"},
          writable);
  ASSERT_EQ(r.status(), "succeeded") << r.stderr() << r.error();
  EXPECT_EQ(r.stdout(), "0:1000 2755\n0:1000 644\n");

  // Nothing was copied or changed on the host, and no mount of the layer is left anywhere.
  std::string layer = LayerDir();
  ASSERT_FALSE(layer.empty());
  ExpectLayerUnchanged(layer);
  EXPECT_TRUE(ProcessesMounting(daemon_->dir() + "/state/layers").empty())
      << "an idmapped layer mount outlived its task";
}

// Every capability the policy may grant: the root-owned file of the lower layer cannot be
// changed (the root is read-only and cannot be remounted: the task's mount namespace is the
// host's user namespace's), and the layer on the host is intact.
TEST_F(UsernsImageTest, LowerLayerRootFileCannotBeChangedWithEveryCapability) {
  ASSERT_FALSE(digest_.empty());
  const std::string caps =
      "\"CAP_CHOWN\", \"CAP_DAC_OVERRIDE\", \"CAP_DAC_READ_SEARCH\", \"CAP_FOWNER\", "
      "\"CAP_FSETID\", \"CAP_SETGID\", \"CAP_SETUID\", \"CAP_LINUX_IMMUTABLE\", "
      "\"CAP_SYS_ADMIN\", \"CAP_MKNOD\", \"CAP_SYS_CHROOT\"";
  spb::RunSandboxRequest req;
  req.set_image(kImage);
  req.set_policy_toml(PolicyWith("pids_max = 64", "", caps));
  std::string script =
      "f=/owned/root; for try in 'chmod 777 $f' 'chown 5:5 $f' 'echo x >> $f' 'mv $f $f.2' "
      "'rm $f' 'ln $f /owned/l' 'mount -o remount,rw /' 'mount -o remount,rw /owned' "
      "'touch $f'; do if sh -c \"$try\" 2>/dev/null; then echo \"CHANGED: $try\"; fi; done; "
      "stat -c '%u:%g %a' $f; cat $f; grep CapEff /proc/self/status";
  auto r = Run({"/bin/sh", "-c", script}, req);
  ASSERT_EQ(r.status(), "succeeded") << r.stderr() << r.error();
  auto w = Words(r.stdout());
  ASSERT_EQ(w.size(), 5u) << r.stdout();
  EXPECT_EQ(w[0], "0:0") << r.stdout();
  EXPECT_EQ(w[1], "644");
  EXPECT_EQ(w[2], "root");
  EXPECT_NE(w[4], "0000000000000000") << "the policy's capabilities were held";
  std::string layer = LayerDir();
  ASSERT_FALSE(layer.empty());
  ExpectLayerUnchanged(layer);
}

// A container's root writes into its upper layer (kept on the host): what it creates belongs
// to the zone's root's host id, a copied-up root file too, a file in the setgid directory the
// zone's group 1000; the layer is unchanged; delete leaves no mount and no upper dir.
TEST_F(UsernsImageTest, ContainerWritesLandInItsUpperOwnedByTheZonesHostIds) {
  ASSERT_FALSE(digest_.empty());
  ASSERT_TRUE(CreateZone("ctr-userns", WritableRootPolicy()).ok());
  uint32_t first = ZoneFirst("ctr-userns");
  ASSERT_GE(first, kDefaultFirst);
  auto containers = cpb::ContainerService::NewStub(daemon_->Channel());
  cpb::CreateContainerRequest create;
  create.set_zone_name("ctr-userns");
  create.set_image(kImage);
  for (const char* c : {"/bin/sh", "-c",
                        "echo w > /written && mkdir /made && echo m >> /owned/root && "
                        "touch /owned/shared/f && test \"$(id -u)\" = 0"}) {
    create.add_command(c);
  }
  cpb::CreateContainerResponse created;
  {
    grpc::ClientContext ctx;
    grpc::Status s = containers->CreateContainer(&ctx, create, &created);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  const std::string id = created.container_id();
  {
    grpc::ClientContext ctx;
    cpb::StartContainerRequest start;
    start.set_container_id(id);
    cpb::StartContainerResponse started;
    grpc::Status s = containers->StartContainer(&ctx, start, &started);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  cpb::ContainerInfo info;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    grpc::ClientContext ctx;
    cpb::GetContainerRequest get;
    get.set_container_id(id);
    cpb::GetContainerResponse got;
    if (containers->GetContainer(&ctx, get, &got).ok() && got.container().has_exit_code()) {
      info = got.container();
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(info.has_exit_code()) << "the container never exited";
  const std::string dir = daemon_->dir() + "/state/containers/" + id;
  EXPECT_EQ(info.exit_code(), 0) << ReadWholeFile(dir + "/container.log");

  const std::string upper = dir + "/upper";
  for (const char* made : {"/written", "/made", "/owned/root"}) {
    struct stat st {};
    ASSERT_EQ(::lstat((upper + made).c_str(), &st), 0) << made;
    EXPECT_EQ(st.st_uid, first) << made << " belongs to the zone's root's host id";
    EXPECT_EQ(st.st_gid, first) << made;
  }
  EXPECT_EQ(ReadWholeFile(upper + "/owned/root"), "root\nm\n");
  struct stat st {};
  ASSERT_EQ(::lstat((upper + "/owned/shared/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, first);
  EXPECT_EQ(st.st_gid, first + 1000) << "the setgid directory's group, 1000 of the zone";
  std::string layer = LayerDir();
  ASSERT_FALSE(layer.empty());
  EXPECT_EQ(ReadWholeFile(layer + "/owned/root"), "root\n") << "the lower layer is unchanged";

  {
    grpc::ClientContext ctx;
    cpb::DeleteContainerRequest del;
    del.set_container_id(id);
    cpb::DeleteContainerResponse deleted;
    grpc::Status s = containers->DeleteContainer(&ctx, del, &deleted);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(ProcessesMounting(dir).empty()) << "the container's overlay outlived it";
  EXPECT_TRUE(ProcessesMounting(daemon_->dir() + "/state/layers").empty())
      << "an idmapped layer mount outlived it";
}

}  // namespace
}  // namespace rauha::testing
