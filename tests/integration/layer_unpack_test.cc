// The layer unpacker against the real filesystem (root: ownership, whiteout devices, trusted
// xattrs, overlayfs): metadata kept, policy applied, a corpus of hostile layers that must
// write nothing outside the layer directory, and OCI whiteouts over three layers giving the
// right merged overlayfs view.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "rauha-common/fd.h"
#include "rauha-common/remove_tree.h"
#include "rauhad/image/layer_cache.h"
#include "rauhad/image/unpack.h"
#include "tests/integration/tar_builder.h"

namespace rauha::testing {
namespace {

using image::LayerCompression;
namespace fs = std::filesystem;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::string Xattr(const std::string& path, const char* name) {
  char buf[256];
  ssize_t n = ::lgetxattr(path.c_str(), name, buf, sizeof(buf));
  return n < 0 ? "" : std::string(buf, static_cast<size_t>(n));
}

// Everything observable about a tree: type, mode, owner, size, link count, mtime, content,
// symlink target and xattrs of every entry.
std::map<std::string, std::string> Snapshot(const std::string& root, const std::string& skip) {
  std::map<std::string, std::string> out;
  std::function<void(const std::string&)> walk = [&](const std::string& dir) {
    for (const auto& e : fs::directory_iterator(dir)) {
      std::string p = e.path().string();
      if (p == skip) continue;
      struct stat st;
      if (::lstat(p.c_str(), &st) < 0) continue;
      std::ostringstream d;
      d << std::oct << st.st_mode << std::dec << " " << st.st_uid << ":" << st.st_gid << " "
        << st.st_size << " n" << st.st_nlink << " " << st.st_mtim.tv_sec << "."
        << st.st_mtim.tv_nsec;
      if (S_ISREG(st.st_mode)) d << " [" << ReadAll(p) << "]";
      if (S_ISLNK(st.st_mode)) d << " -> " << fs::read_symlink(p).string();
      char names[1024];
      ssize_t n = ::llistxattr(p.c_str(), names, sizeof(names));
      for (ssize_t i = 0; i < n; i += static_cast<ssize_t>(std::strlen(names + i)) + 1) {
        d << " x:" << names + i << "=" << Xattr(p, names + i);
      }
      out[p] = d.str();
      if (S_ISDIR(st.st_mode)) walk(p);
    }
  };
  walk(root);
  return out;
}

class UnpackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rauha-unpack-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    layer_ = dir_ + "/layer";
    outside_ = dir_ + "/outside";
    ASSERT_EQ(::mkdir(layer_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(outside_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((outside_ + "/sub").c_str(), 0755), 0);
    std::ofstream(outside_ + "/sentinel") << "host";
    std::ofstream(dir_ + "/neighbour") << "host";
    before_ = Snapshot(dir_, layer_);
  }
  void TearDown() override {
    for (const auto& m : mounts_) ::umount2(m.c_str(), MNT_DETACH);
    EXPECT_TRUE(RemoveTree(dir_).ok());
  }

  absl::StatusOr<image::UnpackStats> Unpack(const std::string& tar,
                                            LayerCompression c = LayerCompression::kNone,
                                            image::UnpackOptions options = {},
                                            const std::string& into = "") {
    UniqueFd root(::open((into.empty() ? layer_ : into).c_str(), O_RDONLY | O_DIRECTORY));
    EXPECT_TRUE(root.valid());
    return image::UnpackLayerBytes(tar, c, root.get(), options);
  }

  // The tree around the layer is exactly as it was.
  void ExpectOutsideUntouched() { EXPECT_EQ(Snapshot(dir_, layer_), before_); }

  std::string dir_, layer_, outside_;
  std::map<std::string, std::string> before_;
  std::vector<std::string> mounts_;
};

TEST_F(UnpackTest, KeepsOwnershipModesTimesAndXattrs) {
  TarBuilder t;
  t.Dir("etc", {.perm = 0750, .uid = 7, .gid = 8, .mtime = 1600000000});
  t.File("etc/conf", "hello",
         {.perm = 0640,
          .uid = 1234,
          .gid = 5678,
          .mtime = 1650000000,
          .xattrs = {{"user.note", "kept"}}});
  t.Symlink("etc/link", "conf");
  t.Hardlink("etc/hard", "etc/conf");
  t.Fifo("etc/pipe");
  auto stats = Unpack(t.Build());
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->entries, 5u);
  struct stat st;
  ASSERT_EQ(::lstat((layer_ + "/etc/conf").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1650000000);
  EXPECT_EQ(st.st_nlink, 2u) << "etc/hard shares the inode";
  EXPECT_EQ(ReadAll(layer_ + "/etc/conf"), "hello");
  EXPECT_EQ(Xattr(layer_ + "/etc/conf", "user.note"), "kept");
  ASSERT_EQ(::lstat((layer_ + "/etc").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(st.st_uid, 7u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1600000000) << "directory mtime is set after its contents";
  EXPECT_EQ(fs::read_symlink(layer_ + "/etc/link"), "conf");
  // A parent the archive does not list is made 0755 whatever the umask.
  TarBuilder implicit;
  implicit.File("usr/lib/x", "x");
  mode_t old_umask = ::umask(077);
  stats = Unpack(implicit.Build());
  ::umask(old_umask);
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_EQ(::lstat((layer_ + "/usr/lib").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(::lstat((layer_ + "/etc/pipe").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  ExpectOutsideUntouched();
}

TEST_F(UnpackTest, ClearsSetuidDropsCapabilitiesAndSkipsDevicesByDefault) {
  // vfs_cap_data revision 2, effective, CAP_NET_BIND_SERVICE permitted (little endian).
  const std::string file_caps =
      std::string("\x01\x00\x00\x02\x00\x04\x00\x00", 8) + std::string(12, '\0');
  auto build = [&] {
    TarBuilder t;
    t.File("su", "x", {.perm = 04755, .xattrs = {{"security.capability", file_caps}}});
    t.File("sg", "x", {.perm = 02755});
    t.File("steer", "x", {.xattrs = {{"trusted.overlay.redirect", "/etc"}}});
    t.Device("sda", AE_IFCHR, 8, 0);
    t.Device("blk", AE_IFBLK, 8, 0);
    return t.Build();
  };
  auto stats = Unpack(build());
  ASSERT_TRUE(stats.ok()) << stats.status();
  struct stat st;
  ASSERT_EQ(::lstat((layer_ + "/su").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(::lstat((layer_ + "/sg").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(stats->setuid_cleared, 2u);
  EXPECT_EQ(::lgetxattr((layer_ + "/su").c_str(), "security.capability", nullptr, 0), -1);
  EXPECT_EQ(Xattr(layer_ + "/steer", "trusted.overlay.redirect"), "");
  EXPECT_FALSE(Exists(layer_ + "/sda"));
  EXPECT_FALSE(Exists(layer_ + "/blk"));
  EXPECT_EQ(stats->devices_skipped, 2u);

  // The permissive policy keeps them (never the trusted.overlay xattr).
  std::string other = dir_ + "/layer/permissive";
  ASSERT_EQ(::mkdir(other.c_str(), 0755), 0);
  stats = Unpack(build(), LayerCompression::kNone,
                 {.create_device_nodes = true, .keep_setuid = true}, other);
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_EQ(::lstat((other + "/su").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  EXPECT_EQ(::lgetxattr((other + "/su").c_str(), "security.capability", nullptr, 0), 20);
  ASSERT_EQ(::lstat((other + "/sda").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(8, 0));
  EXPECT_EQ(Xattr(other + "/steer", "trusted.overlay.redirect"), "");
}

TEST_F(UnpackTest, GzipAndZstdLayersAndMismatchedMediaTypes) {
  TarBuilder t;
  t.File("a", "compressed");
  for (auto c : {LayerCompression::kGzip, LayerCompression::kZstd}) {
    std::string into = layer_ + "/" + std::string(image::CompressionName(c));
    ASSERT_EQ(::mkdir(into.c_str(), 0755), 0);
    auto stats = Unpack(t.Build(c), c, {}, into);
    ASSERT_TRUE(stats.ok()) << image::CompressionName(c) << ": " << stats.status();
    EXPECT_EQ(ReadAll(into + "/a"), "compressed");
  }
  auto wrong = Unpack(t.Build(LayerCompression::kNone), LayerCompression::kGzip);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition) << wrong.status();
  EXPECT_NE(wrong.status().message().find("says gzip but its bytes are uncompressed"),
            std::string::npos)
      << wrong.status();
  auto garbage = Unpack(std::string(4000, 'x'));
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kInvalidArgument) << garbage.status();
  EXPECT_FALSE(Exists(layer_ + "/a"));

  EXPECT_EQ(*image::CompressionOfMediaType("application/vnd.oci.image.layer.v1.tar+zstd"),
            LayerCompression::kZstd);
  EXPECT_EQ(*image::CompressionOfMediaType("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            LayerCompression::kGzip);
  EXPECT_EQ(image::CompressionOfMediaType("application/vnd.oci.image.layer.v1.tar+encrypted")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(UnpackTest, LimitsOnEntriesAndBytesAreClearErrors) {
  TarBuilder t;
  for (int i = 0; i < 5; ++i) t.File("f" + std::to_string(i), "0123456789");
  std::string tar = t.Build();
  auto many = Unpack(tar, LayerCompression::kNone, {.max_entries = 3});
  EXPECT_EQ(many.status().code(), absl::StatusCode::kResourceExhausted) << many.status();
  EXPECT_NE(many.status().message().find("more than 3 entries"), std::string::npos);
  auto big = Unpack(tar, LayerCompression::kNone, {.max_bytes = 25});
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted) << big.status();
  EXPECT_NE(big.status().message().find("exceed 25 bytes"), std::string::npos) << big.status();
}

// One hostile layer: what it holds, whether unpacking may succeed (it may, as long as every
// entry stayed inside), and what must be true inside the layer afterwards.
struct Hostile {
  std::string name;
  std::function<void(TarBuilder&, const std::string& outside)> build;
  bool may_succeed;
  std::function<void(const std::string& layer)> check_inside = nullptr;
};

std::vector<Hostile> HostileCorpus() {
  return {
      {"DotDotName", [](TarBuilder& t, auto&) { t.File("../outside/pwned", "x"); }, false},
      {"DotDotDeep", [](TarBuilder& t, auto&) { t.File("a/b/../../../outside/pwned", "x"); },
       false},
      {"AbsoluteNameStaysInside",
       [](TarBuilder& t, const std::string& o) { t.File(o + "/pwned", "x"); }, true,
       [](const std::string& layer) {
         // tar's habit: the leading "/" is dropped, so it lands below the layer root.
         EXPECT_TRUE(Exists(layer + "/tmp"));
       }},
      {"RelativeSymlinkThenWrite",
       [](TarBuilder& t, auto&) {
         t.Symlink("evil", "../outside");
         t.File("evil/pwned", "x");
       },
       false},
      {"ClimbingSymlinkResolvesInTheLayer",
       [](TarBuilder& t, auto&) {
         t.Dir("outside");
         t.Symlink("evil", "../../../outside");
         t.File("evil/pwned", "x");
       },
       true,
       [](const std::string& layer) {
         // ".." at the layer root stays at the root, as in the container.
         EXPECT_EQ(ReadAll(layer + "/outside/pwned"), "x");
       }},
      {"AbsoluteSymlinkThenWrite",
       [](TarBuilder& t, const std::string& o) {
         t.Symlink("evil", o);
         t.File("evil/pwned", "x");
       },
       false},
      {"AbsoluteSymlinkToRootThenWrite",
       [](TarBuilder& t, auto&) {
         t.Symlink("evil", "/");
         t.File("evil/etc/pwned", "x");
       },
       true, [](const std::string& layer) { EXPECT_EQ(ReadAll(layer + "/etc/pwned"), "x"); }},
      {"SymlinkChainThenWrite",
       [](TarBuilder& t, auto&) {
         t.Dir("outside");
         t.Symlink("a", "b");
         t.Symlink("b", "../../../../../../outside");
         t.File("a/pwned", "x");
       },
       true, [](const std::string& layer) { EXPECT_EQ(ReadAll(layer + "/outside/pwned"), "x"); }},
      {"SymlinkLoop",
       [](TarBuilder& t, auto&) {
         t.Symlink("loop", "loop");
         t.File("loop/x", "x");
       },
       false},
      {"ProcMagicLink",
       [](TarBuilder& t, auto&) {
         t.Symlink("p", "/proc/self/root");
         t.File("p/tmp/pwned", "x");
       },
       false},
      {"SymlinkLeafThenFile",
       [](TarBuilder& t, const std::string& o) {
         t.Symlink("x", o + "/sentinel");
         t.File("x", "pwned");
       },
       true,
       [](const std::string& layer) {
         EXPECT_EQ(ReadAll(layer + "/x"), "pwned");
         EXPECT_FALSE(fs::is_symlink(layer + "/x"));
       }},
      {"SymlinkLeafThenDirectoryThenFile",
       [](TarBuilder& t, const std::string& o) {
         t.Symlink("d", o);
         t.Dir("d");
         t.File("d/pwned", "x");
       },
       true, [](const std::string& layer) { EXPECT_EQ(ReadAll(layer + "/d/pwned"), "x"); }},
      {"HardlinkDotDot", [](TarBuilder& t, auto&) { t.Hardlink("h", "../outside/sentinel"); },
       false},
      {"HardlinkAbsolute",
       [](TarBuilder& t, const std::string& o) { t.Hardlink("h", o + "/sentinel"); }, false},
      {"HardlinkThroughAbsoluteSymlink",
       [](TarBuilder& t, const std::string& o) {
         t.Symlink("s", o);
         t.Hardlink("h", "s/sentinel");
       },
       false},
      {"HardlinkThroughRelativeSymlink",
       [](TarBuilder& t, auto&) {
         t.Symlink("s", "../outside");
         t.Hardlink("h", "s/sentinel");
       },
       false},
      {"HardlinkToSymlinkOutThenWrite",
       [](TarBuilder& t, const std::string& o) {
         t.Symlink("s", o + "/sentinel");
         t.Hardlink("h", "s");
         t.File("h", "pwned");
       },
       true},
      {"WriteThroughEarlierHardlink",
       [](TarBuilder& t, auto&) {
         t.File("f", "original");
         t.Hardlink("h", "f");
         t.File("h", "pwned");
       },
       true,
       [](const std::string& layer) {
         EXPECT_EQ(ReadAll(layer + "/f"), "original") << "a later entry replaces, never writes "
                                                         "through, an earlier link";
       }},
      {"WhiteoutDotDot", [](TarBuilder& t, auto&) { t.File("../outside/.wh.sentinel", ""); },
       false},
      {"WhiteoutThroughRelativeSymlink",
       [](TarBuilder& t, auto&) {
         t.Symlink("evil", "../outside");
         t.File("evil/.wh.sentinel", "");
       },
       false},
      {"WhiteoutThroughAbsoluteSymlink",
       [](TarBuilder& t, const std::string& o) {
         t.Symlink("evil", o);
         t.File("evil/.wh.sentinel", "");
       },
       false},
      {"WhiteoutOfDotDot", [](TarBuilder& t, auto&) { t.File("a/.wh..", ""); }, false},
      {"OpaqueThroughSymlink",
       [](TarBuilder& t, const std::string& o) {
         t.Symlink("evil", o);
         t.File("evil/.wh..wh..opq", "");
       },
       false},
      {"OpaqueThroughSymlinkToRoot",
       [](TarBuilder& t, auto&) {
         t.Symlink("evil", "/");
         t.File("evil/.wh..wh..opq", "");
       },
       true,
       [](const std::string& layer) {
         EXPECT_EQ(Xattr(layer, "trusted.overlay.opaque"), "y") << "the layer root, not /";
       }},
      {"DeviceNodeOfHostDisk", [](TarBuilder& t, auto&) { t.Device("sda", AE_IFCHR, 8, 0); }, true,
       [](const std::string& layer) { EXPECT_FALSE(Exists(layer + "/sda")); }},
      {"NameTooLong", [](TarBuilder& t, auto&) { t.File(std::string(5000, 'a'), "x"); }, false},
      {"RootAsFile", [](TarBuilder& t, auto&) { t.File("./", "x"); }, false},
  };
}

TEST_F(UnpackTest, HostileLayersWriteNothingOutsideTheLayer) {
  for (const Hostile& h : HostileCorpus()) {
    SCOPED_TRACE(h.name);
    std::string layer = layer_ + "/" + h.name;
    ASSERT_EQ(::mkdir(layer.c_str(), 0755), 0);
    TarBuilder t;
    h.build(t, outside_);
    auto stats = Unpack(t.Build(), LayerCompression::kNone, {}, layer);
    if (!h.may_succeed) {
      EXPECT_FALSE(stats.ok()) << h.name << " was accepted";
      if (!stats.ok()) {
        EXPECT_NE(stats.status().message().find("entry \""), std::string::npos)
            << "the error names the entry: " << stats.status();
      }
    } else {
      EXPECT_TRUE(stats.ok()) << stats.status();
    }
    if (h.check_inside) h.check_inside(layer);
    ExpectOutsideUntouched();
  }
}

// Three layers where upper layers delete and replace files of lower ones; overlayfs over the
// unpacked directories must show exactly the result.
TEST_F(UnpackTest, WhiteoutsAndOpaqueDirectoriesAcrossThreeLayers) {
  TarBuilder l1, l2, l3;
  l1.Dir("a").File("a/keep", "1").File("a/gone", "1").File("a/replaced", "old");
  l1.Dir("d").File("d/x", "1").File("d/y", "1");
  l1.Dir("tree").Dir("tree/sub").File("tree/sub/deep", "1");
  l2.File("a/.wh.gone", "").File("a/replaced", "new");
  l2.Dir("d").File("d/.wh..wh..opq", "").File("d/z", "2");
  l2.Dir("newdir").File("newdir/f", "2");
  l2.File(".wh.tree", "");
  l3.File(".wh.newdir", "");
  l3.File("a/.wh.keep", "");
  l3.File("a/gone", "back");
  // Same-layer rule: this layer's own file survives its whiteout.
  l3.File("a/mine", "3").File("a/.wh.mine", "");
  std::vector<std::string> dirs;
  int i = 0;
  for (TarBuilder* t : {&l1, &l2, &l3}) {
    std::string d = layer_ + "/l" + std::to_string(++i);
    ASSERT_EQ(::mkdir(d.c_str(), 0755), 0);
    auto stats = Unpack(t->Build(LayerCompression::kGzip), LayerCompression::kGzip, {}, d);
    ASSERT_TRUE(stats.ok()) << d << ": " << stats.status();
    dirs.push_back(d);
  }
  struct stat st;
  ASSERT_EQ(::lstat((dirs[1] + "/a/gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) << "overlay whiteout form";
  EXPECT_EQ(Xattr(dirs[1] + "/d", "trusted.overlay.opaque"), "y");

  std::string merged = dir_ + "/merged";
  ASSERT_EQ(::mkdir(merged.c_str(), 0755), 0);
  std::string opts = "lowerdir=" + dirs[2] + ":" + dirs[1] + ":" + dirs[0];
  ASSERT_EQ(::mount("overlay", merged.c_str(), "overlay", MS_RDONLY, opts.c_str()), 0)
      << strerror(errno);
  mounts_.push_back(merged);
  auto names = [&](const std::string& sub) {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(merged + "/" + sub)) {
      out.insert(e.path().filename().string());
    }
    return out;
  };
  EXPECT_EQ(names(""), (std::set<std::string>{"a", "d"}));
  EXPECT_EQ(names("a"), (std::set<std::string>{"gone", "replaced", "mine"}));
  EXPECT_EQ(ReadAll(merged + "/a/gone"), "back");
  EXPECT_EQ(ReadAll(merged + "/a/replaced"), "new");
  EXPECT_EQ(names("d"), (std::set<std::string>{"z"})) << "the opaque directory hides d/x, d/y";
  EXPECT_EQ(::umount2(merged.c_str(), 0), 0) << strerror(errno);
  mounts_.clear();
}

TEST_F(UnpackTest, LayerCacheUnpacksOnceAndLeavesNoPartialLayer) {
  std::string state = dir_ + "/layer/state";
  ASSERT_EQ(::mkdir(state.c_str(), 0700), 0);
  TarBuilder t;
  t.File("bin/tool", "v1", {.perm = 0755});
  std::string blob = dir_ + "/layer/blob";
  std::ofstream(blob) << t.Build(LayerCompression::kGzip);
  const std::string digest = "sha256:" + std::string(64, 'a');
  const std::string gz = "application/vnd.oci.image.layer.v1.tar+gzip";

  // A leftover of an unpack interrupted by a crash is removed at start.
  ASSERT_TRUE(fs::create_directories(state + "/layers/tmp/" + std::string(64, 'c') + ".x/usr"));
  image::LayerCache cache(state);
  ASSERT_TRUE(cache.Init().ok());
  EXPECT_TRUE(fs::is_empty(state + "/layers/tmp"));

  auto path = cache.Ensure(digest, gz, blob);
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, state + "/layers/sha256/" + std::string(64, 'a'));
  EXPECT_EQ(ReadAll(*path + "/bin/tool"), "v1");
  // Once there, it is not unpacked again (the blob is not even read).
  ASSERT_EQ(::unlink(blob.c_str()), 0);
  auto again = cache.Ensure(digest, gz, blob);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(ReadAll(*again + "/bin/tool"), "v1");

  // A hostile layer fails and leaves neither a layer directory nor a temporary one.
  TarBuilder bad;
  bad.File("ok", "x").File("../escape", "x");
  std::ofstream(blob) << bad.Build(LayerCompression::kGzip);
  const std::string bad_digest = "sha256:" + std::string(64, 'b');
  auto failed = cache.Ensure(bad_digest, gz, blob);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kInvalidArgument) << failed.status();
  EXPECT_NE(failed.status().message().find(bad_digest), std::string::npos) << failed.status();
  EXPECT_FALSE(Exists(state + "/layers/sha256/" + std::string(64, 'b')));
  EXPECT_TRUE(fs::is_empty(state + "/layers/tmp"));

  EXPECT_EQ(cache.Ensure("sha256:../../x", gz, blob).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cache.Ensure(bad_digest, "application/octet-stream", blob).status().code(),
            absl::StatusCode::kInvalidArgument);
  ExpectOutsideUntouched();
}

}  // namespace
}  // namespace rauha::testing
