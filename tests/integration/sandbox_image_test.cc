// `rauha sandbox --image` end to end: an image of three layers (busybox from the host's
// busybox-static, upper layers deleting and replacing files of lower ones, a hostile symlink)
// recorded in a private rauhad's store through ImageStore, then tasks run on it: the merged
// view, the image config (Cmd, Env, WorkingDir, User), --repo-path at /workspace, a
// read-only root, the manifest digest in the result, and nothing left afterwards.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"
#include "rauha/v1/image.grpc.pb.h"
#include "tests/integration/daemon_fixture.h"
#include "tests/integration/local_image.h"
#include "tests/integration/registry_fixture.h"
#include "tests/integration/tar_builder.h"

namespace rauha::testing {
namespace {

namespace pb = rauha::sandbox::v1;
namespace fs = std::filesystem;
using image::LayerCompression;

constexpr const char* kBusybox = "/bin/busybox";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

size_t CountEntries(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    ++n;
  }
  return n;
}

struct CliOutput {
  int rc = -1;
  std::string out, err;
};

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

  // Records an image of `layers` (gzip blobs, bottom first) and `config` under `tag`, as a
  // pull or an import would; returns the manifest digest.
  std::string AddImage(const std::vector<std::string>& layers, nlohmann::json config,
                       const std::string& tag) {
    return RecordLocalImage(daemon_->dir() + "/state", layers, std::move(config), tag);
  }

  // busybox and its applets, users; then files the upper layers delete and replace.
  std::string ThreeLayerImage(nlohmann::json config) {
    TarBuilder l1, l2, l3;
    l1.Dir("bin").File("bin/busybox", ReadFile(kBusybox), {.perm = 0755});
    for (const char* applet : {"sh", "cat", "ls", "id", "pwd", "echo", "touch", "test", "true"}) {
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

  // The CLI against this rauhad, its stdout and stderr apart.
  CliOutput RunCli(const std::vector<std::string>& args) {
    std::string err_file = daemon_->dir() + "/cli.err", out_file = daemon_->dir() + "/cli.out";
    // The paths are the fixture's own (no quotes in them).
    std::vector<std::string> argv = {
        "sh",          "-c",       "exec \"$0\" \"$@\" >'" + out_file + "' 2>'" + err_file + "'",
        RAUHA_CLI_BIN, "--socket", daemon_->socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    CliOutput out;
    out.rc = RunProgram(argv);
    out.out = ReadFile(out_file);
    out.err = ReadFile(err_file);
    return out;
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

// Every enforcement layer holds on an image's root as on the host view: no capabilities,
// no_new_privs and seccomp in the task's status, a refused mount, a seccomp denial and a
// cgroup-bpf denial in the result, the exec allow-list (Landlock or the LSM) over the image's
// own paths, the zone's cgroup accounting, the task's own pid namespace; and the repository at
// /workspace.
TEST_F(SandboxImageTest, EveryEnforcementLayerHoldsOnTheImageRoot) {
  ThreeLayerImage({{"config", {{"Env", {"PATH=/bin"}}}}});
  ASSERT_TRUE(
      CreateZone("img", PolicyWith("pids_max = 64", "[exec]\nallowed = [\"/bin\"]\n", "none"))
          .ok());
  std::string repo = daemon_->dir() + "/repo";
  ASSERT_TRUE(fs::create_directories(repo));
  std::ofstream(repo + "/input") << "from-host";
  pb::RunSandboxRequest req;
  req.set_name("img");
  req.set_image("rauha-test/three:1");
  req.set_repo_path(repo);
  pb::SandboxResult r = Run({"/bin/sh", "-c",
                             "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; "
                             "cat /proc/1/comm; pwd; cat input; "
                             "mount -t tmpfs none /srv 2>/dev/null && echo MOUNTED; "
                             "unshare -U true 2>/dev/null && echo UNSHARED; "
                             "nc -w 2 192.0.2.1 9 </dev/null 2>/dev/null && echo CONNECTED; "
                             "cp /bin/busybox /tmp/t && /tmp/t true 2>/dev/null; echo exec=$?; "
                             "/bin/true && echo listed-runs"},
                            req);
  ASSERT_EQ(r.status(), "succeeded") << r.error() << "\n"
                                     << r.stderr() << "\nstdout: " << r.stdout();
  EXPECT_EQ(r.stdout(),
            "CapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n"
            "rauha-init\n/workspace\nfrom-hostexec=126\nlisted-runs\n")
      << r.stderr();
  std::set<std::string> layers_hooks;
  for (const auto& e : r.enforcement_events()) layers_hooks.insert(e.layer() + " " + e.hook());
  std::string all;
  for (const auto& h : layers_hooks) all += h + "\n";
  EXPECT_TRUE(layers_hooks.count("seccomp seccomp")) << all;
  EXPECT_TRUE(layers_hooks.count("cgroup-bpf cgroup/connect4")) << all;
  EXPECT_GT(r.resources().peak_memory_bytes(), 0u) << "the zone's cgroup accounts the task";
}

// `image rm` while a task runs on the image: the task keeps its layers and finishes normally;
// the layers and blobs go when it is done, and nothing of its root is left.
TEST_F(SandboxImageTest, ImageRemovedWhileATaskRunsOnItGoesWhenTheTaskEnds) {
  ThreeLayerImage({{"config", {{"Env", {"PATH=/bin"}}}}});
  std::string repo = daemon_->dir() + "/repo";
  ASSERT_TRUE(fs::create_directories(repo));
  pb::RunSandboxRequest req;
  req.set_image("rauha-test/three:1");
  req.set_repo_path(repo);
  pb::SandboxResult r;
  std::thread task([&] {
    r = Run({"/bin/sh", "-c",
             "touch started; while [ ! -e go ]; do sleep 1; done; cat /a/added /a/replaced"},
            req);
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(repo + "/started") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  bool started = fs::exists(repo + "/started");
  EXPECT_TRUE(started) << "the task did not start within 60 s";

  auto images = rauha::image::v1::ImageService::NewStub(daemon_->Channel());
  grpc::ClientContext ctx;
  rauha::image::v1::RemoveRequest rm;
  rm.set_reference("rauha-test/three:1");
  rauha::image::v1::RemoveResponse rm_resp;
  grpc::Status removed = images->Remove(&ctx, rm, &rm_resp);
  EXPECT_TRUE(removed.ok()) << removed.error_message();
  // Held by the running task: its three layers and their blobs.
  EXPECT_EQ(CountEntries(daemon_->dir() + "/state/layers/sha256"), 3u);
  EXPECT_EQ(CountEntries(daemon_->dir() + "/state/blobs/sha256"), 3u);

  std::ofstream(repo + "/go") << "";
  task.join();
  ASSERT_EQ(r.status(), "succeeded") << r.error() << "\n" << r.stderr();
  EXPECT_EQ(r.stdout(), "added\nnew\n");
  EXPECT_EQ(CountEntries(daemon_->dir() + "/state/layers/sha256"), 0u);
  EXPECT_EQ(CountEntries(daemon_->dir() + "/state/blobs/sha256"), 0u);
  EXPECT_TRUE(fs::is_empty(daemon_->dir() + "/state/layers/tmp"));
  for (const auto& e : fs::recursive_directory_iterator(daemon_->dir() + "/run")) {
    EXPECT_EQ(e.path().filename().string().find("rootfs-"), std::string::npos) << e.path();
  }
  // Gone for the next task too: a clear NOT_FOUND, no zone made.
  grpc::Status status;
  Run({"/bin/true"}, req, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
}

// `rauha sandbox --image REF` on an image rauhad does not hold: with --pull never, rauhad's
// NOT_FOUND saying to pull and nothing run; by default the CLI pulls it from the registry
// (progress on stderr) and runs on it, its stdout the JSON result alone with the image's
// digest; the next call finds it held and pulls nothing.
TEST_F(SandboxImageTest, CliPullsAMissingImageFromTheRegistryThenRuns) {
  for (const char* tool : {"docker-registry", "skopeo"}) {
    if (RunProgram({"sh", "-c", std::string("command -v ") + tool}) != 0) {
      if (RequireAll()) FAIL() << tool << " is missing (deploy/install-deps.sh installs it)";
      GTEST_SKIP() << tool << " is missing (deploy/install-deps.sh installs it)";
    }
  }
  TempTree tmp;
  TestRegistry registry(tmp.path(), {});
  ASSERT_TRUE(registry.ok()) << ReadWholeFile(tmp.path() + "/registry/registry.log");
  LayoutBuilder layout(tmp.path() + "/layout");
  auto built =
      layout.AddImage({{{{"bin/busybox", BusyboxBinary()}}, LayoutBuilder::Compression::kGzip},
                       {{{"etc/hello", "hello\n"}}, LayoutBuilder::Compression::kZstd}});
  layout.Tag(built, "v1");
  ASSERT_TRUE(registry.Push(layout.dir(), "v1", "test/sbx:v1"));
  std::string ref = registry.host() + "/test/sbx:v1";
  const std::vector<std::string> run = {"sandbox",      "--image", ref,         "--",
                                        "/bin/busybox", "cat",     "/etc/hello"};

  std::vector<std::string> never = {"sandbox", "--pull", "never"};
  never.insert(never.end(), run.begin() + 1, run.end());
  CliOutput out = RunCli(never);
  EXPECT_EQ(out.rc, 125) << out.err;
  EXPECT_EQ(out.out, "");
  EXPECT_NE(out.err.find("pull it first with rauha image pull " + ref), std::string::npos)
      << out.err;
  EXPECT_FALSE(
      fs::exists(daemon_->dir() + "/state/blobs/sha256/" + built.manifest_digest.substr(7)));

  out = RunCli(run);
  ASSERT_EQ(out.rc, 0) << out.err << out.out;
  nlohmann::json result = nlohmann::json::parse(out.out, nullptr, false);
  ASSERT_FALSE(result.is_discarded()) << "stdout is not one JSON object: " << out.out;
  EXPECT_EQ(result["status"], "succeeded");
  EXPECT_EQ(result["stdout"], "hello\n");
  EXPECT_EQ(result["image_digest"], built.manifest_digest);
  EXPECT_NE(out.err.find("pulling " + ref), std::string::npos) << out.err;
  EXPECT_NE(out.err.find(built.layer_digests[0].substr(7, 12) + ": verified"), std::string::npos)
      << out.err;
  EXPECT_NE(out.err.find("pulled " + ref + " " + built.manifest_digest), std::string::npos)
      << out.err;

  out = RunCli(run);
  ASSERT_EQ(out.rc, 0) << out.err;
  EXPECT_EQ(out.err, "") << "a held image is not pulled again";
  result = nlohmann::json::parse(out.out, nullptr, false);
  ASSERT_FALSE(result.is_discarded()) << out.out;
  EXPECT_EQ(result["stdout"], "hello\n");
  EXPECT_EQ(result["image_digest"], built.manifest_digest);

  // --pull always: pulled again though held, then run.
  std::vector<std::string> always = {"sandbox", "--pull", "always"};
  always.insert(always.end(), run.begin() + 1, run.end());
  out = RunCli(always);
  ASSERT_EQ(out.rc, 0) << out.err;
  EXPECT_NE(out.err.find("pulled " + ref + " " + built.manifest_digest), std::string::npos)
      << out.err;
  result = nlohmann::json::parse(out.out, nullptr, false);
  ASSERT_FALSE(result.is_discarded()) << out.out;
  EXPECT_EQ(result["stdout"], "hello\n");
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
