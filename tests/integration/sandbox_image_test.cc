// `rauha sandbox --image` end to end: an image of three layers (busybox from the host's
// busybox-static, upper layers deleting and replacing files of lower ones, a hostile symlink)
// recorded in a private rauhad's store through ImageStore, then tasks run on it: the merged
// view, the image config (Cmd, Env, WorkingDir, User), --repo-path at /workspace, a
// read-only root, the manifest digest in the result, and nothing left afterwards.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "rauhad/image/digest.h"
#include "rauhad/image/image_store.h"
#include "rauhad/image/reference.h"
#include "rauhad/store/store.h"
#include "tests/integration/daemon_fixture.h"
#include "tests/integration/tar_builder.h"

namespace rauha::testing {
namespace {

namespace pb = rauha::sandbox::v1;
namespace fs = std::filesystem;
using image::LayerCompression;

constexpr const char* kBusybox = "/bin/busybox";
constexpr const char* kGzipLayer = "application/vnd.oci.image.layer.v1.tar+gzip";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class SandboxImageTest : public DaemonTest {
 protected:
  void SetUp() override {
    if (::access(kBusybox, X_OK) != 0) {
      if (RequireAll()) FAIL() << kBusybox << " missing (install busybox-static)";
      GTEST_SKIP() << kBusybox << " missing (install busybox-static)";
    }
    DaemonTest::SetUp();
    sentinel_ = daemon_->dir() + "/host-sentinel";
    std::ofstream(sentinel_) << "host";
  }

  // Stores `blob` in the daemon's content store; returns its digest.
  std::string PutBlob(image::ImageStore& images, const std::string& blob) {
    std::string digest = image::Sha256Digest(blob);
    auto writer = images.content().Ingest(digest, blob.size(), false);
    EXPECT_TRUE(writer.ok()) << writer.status();
    EXPECT_TRUE((*writer)->Write(blob.data(), blob.size()).ok());
    auto committed = (*writer)->Commit();
    EXPECT_TRUE(committed.ok()) << committed.status();
    return digest;
  }

  // Records an image of `layers` (gzip blobs, bottom first) and `config` under `tag`, as a
  // pull or an import would; returns the manifest digest.
  std::string AddImage(const std::vector<std::string>& layers, nlohmann::json config,
                       const std::string& tag) {
    auto db = store::Store::Open(daemon_->dir() + "/state/rauha.db");
    EXPECT_TRUE(db.ok()) << db.status();
    image::ImageStore images(daemon_->dir() + "/state", db->get());
    EXPECT_TRUE(images.Init().ok());
    nlohmann::json layer_list = nlohmann::json::array();
    config["architecture"] = "amd64";
    config["os"] = "linux";
    config["rootfs"] = {{"type", "layers"}, {"diff_ids", nlohmann::json::array()}};
    for (const auto& l : layers) {
      layer_list.push_back(
          {{"digest", PutBlob(images, l)}, {"mediaType", kGzipLayer}, {"size", l.size()}});
    }
    std::string config_json = config.dump();
    std::string config_digest = PutBlob(images, config_json);
    nlohmann::json manifest = {{"schemaVersion", 2},
                               {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                               {"config",
                                {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                                 {"digest", config_digest},
                                 {"size", config_json.size()}}},
                               {"layers", layer_list}};
    std::string manifest_json = manifest.dump();
    store::ImageRecord rec;
    rec.manifest_digest = PutBlob(images, manifest_json);
    rec.media_type = "application/vnd.oci.image.manifest.v1+json";
    rec.config_digest = config_digest;
    rec.config_json = config_json;
    rec.layers_json = layer_list.dump();
    rec.created_at = "2026-01-01T00:00:00Z";
    auto ref = image::ParseReference(tag);
    EXPECT_TRUE(ref.ok()) << ref.status();
    EXPECT_TRUE(images.Record(rec, {ref->TagRef()}).ok());
    return rec.manifest_digest;
  }

  // busybox and its applets, users; then files the upper layers delete and replace.
  std::string ThreeLayerImage(nlohmann::json config) {
    TarBuilder l1, l2, l3;
    l1.Dir("bin").File("bin/busybox", ReadFile(kBusybox), {.perm = 0755});
    for (const char* applet : {"sh", "cat", "ls", "id", "pwd", "echo", "touch", "test"}) {
      l1.Symlink(std::string("bin/") + applet, "busybox");
    }
    l1.Dir("etc")
        .File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n")
        .File("etc/group", "root:x:0:\napp:x:1001:\n");
    l1.Dir("a").File("a/keep", "keep\n").File("a/gone", "gone\n").File("a/replaced", "old\n");
    l1.Dir("d").File("d/x", "x\n").File("d/y", "y\n");
    l2.File("a/.wh.gone", "").File("a/replaced", "new\n");
    l2.Dir("d").File("d/.wh..wh..opq", "").File("d/z", "z\n");
    l2.Dir("srv");
    // Hostile: the shim must replace this file, never write through the link to the host.
    l3.Symlink("etc/hostname", sentinel_);
    l3.File("a/.wh.keep", "").File("a/added", "added\n");
    return AddImage({l1.Build(LayerCompression::kGzip), l2.Build(LayerCompression::kGzip),
                     l3.Build(LayerCompression::kGzip)},
                    std::move(config), "rauha-test/three:1");
  }

  std::string sentinel_;
};

TEST_F(SandboxImageTest, TaskRunsOnTheMergedLayersWithTheImageConfig) {
  nlohmann::json config = {{"config",
                            {{"Env", {"PATH=/bin", "FROM_IMAGE=image", "OVERRIDDEN=image"}},
                             {"Cmd", {"/bin/sh", "-c", "echo from-cmd; pwd; id -u; id -g"}},
                             {"WorkingDir", "/srv"},
                             {"User", "app"}}}};
  std::string digest = ThreeLayerImage(config);

  // The merged view: whiteouts and the opaque directory act across layers; the host's /usr
  // is not there; /etc/hostname is the zone's, and the host file the link named is intact.
  pb::RunSandboxRequest req;
  req.set_image("rauha-test/three:1");
  (*req.mutable_env())["OVERRIDDEN"] = "request";
  pb::SandboxResult r = Run({"/bin/sh", "-c",
                             "ls /a; ls /d; cat /a/replaced; ls /; cat /etc/hostname; "
                             "echo $FROM_IMAGE $OVERRIDDEN; touch /a/new 2>/dev/null || echo ro; "
                             "touch /tmp/ok && echo tmp-writable"},
                            req);
  ASSERT_EQ(r.status(), "succeeded") << r.error() << "\n" << r.stderr();
  EXPECT_EQ(r.image_digest(), digest);
  std::string zone = r.zone_name();
  EXPECT_EQ(r.stdout(), "added\nreplaced\nz\nnew\na\nbin\nd\ndev\netc\nproc\nsrv\ntmp\nvar\n" +
                            zone + "\nimage request\nro\ntmp-writable\n");
  EXPECT_EQ(ReadFile(sentinel_), "host");
  struct stat st;
  ASSERT_EQ(::lstat(sentinel_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));

  // No command: the image's Cmd, in its WorkingDir, as its User (app = 1000:1001).
  pb::RunSandboxRequest from_image;
  from_image.set_image("rauha-test/three:1");
  r = Run({}, from_image);
  ASSERT_EQ(r.status(), "succeeded") << r.error() << "\n" << r.stderr();
  EXPECT_EQ(r.stdout(), "from-cmd\n/srv\n1000\n1001\n");
  EXPECT_EQ(std::vector<std::string>(r.command().begin(), r.command().end()),
            (std::vector<std::string>{"/bin/sh", "-c", "echo from-cmd; pwd; id -u; id -g"}));

  // --repo-path: the repository at /workspace, the working directory, writable to the host.
  std::string repo = daemon_->dir() + "/repo";
  ASSERT_TRUE(fs::create_directories(repo));
  ASSERT_EQ(::chmod(repo.c_str(), 0777), 0);
  std::ofstream(repo + "/input") << "from-host";
  pb::RunSandboxRequest with_repo;
  with_repo.set_image(digest);  // a bare manifest digest resolves too
  with_repo.set_repo_path(repo);
  r = Run({"/bin/sh", "-c", "pwd; cat input; echo out > output"}, with_repo);
  ASSERT_EQ(r.status(), "succeeded") << r.error() << "\n" << r.stderr();
  EXPECT_EQ(r.stdout(), "/workspace\nfrom-host");
  EXPECT_EQ(ReadFile(repo + "/output"), "out\n");

  // Each layer was unpacked once, into the state dir's layer cache.
  size_t cached = 0;
  for (const auto& e : fs::directory_iterator(daemon_->dir() + "/state/layers/sha256")) {
    (void)e;
    ++cached;
  }
  EXPECT_EQ(cached, 3u);
  EXPECT_TRUE(fs::is_empty(daemon_->dir() + "/state/layers/tmp"));
  // Nothing of the tasks' roots is left (the fixture also checks mounts and cgroups).
  for (const auto& e : fs::recursive_directory_iterator(daemon_->dir() + "/run")) {
    EXPECT_EQ(e.path().filename().string().find("rootfs-"), std::string::npos) << e.path();
  }
}

TEST_F(SandboxImageTest, MissingImageIsNotFoundAndCreatesNoZone) {
  pb::RunSandboxRequest req;
  req.set_image("rauha-test/absent:1");
  grpc::Status status;
  Run({"/bin/true"}, req, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_NE(status.error_message().find("pull it first with rauha image pull"), std::string::npos)
      << status.error_message();
  grpc::ClientContext ctx;
  rauha::zone::v1::ListZonesRequest list_req;
  rauha::zone::v1::ListZonesResponse zones;
  ASSERT_TRUE(daemon_->Zones()->ListZones(&ctx, list_req, &zones).ok());
  EXPECT_EQ(zones.zones_size(), 0);
}

}  // namespace
}  // namespace rauha::testing
