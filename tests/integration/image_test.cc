// Images against a real registry: Debian's docker-registry on loopback (plain HTTP, and TLS
// with a CA of the test's own plus htpasswd basic auth), the test's own token server for the
// Bearer flow, images built from busybox-static and pushed with skopeo. Checks what a user
// sees over the API and what lands in the state dir.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "nlohmann/json.hpp"
#include "rauha/v1/image.grpc.pb.h"
#include "tests/integration/daemon_fixture.h"
#include "tests/integration/registry_fixture.h"

namespace rauha::testing {
namespace {

namespace ipb = rauha::image::v1;
using Json = nlohmann::json;

class ImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      if (RequireAll()) FAIL() << "integration tests need root";
      GTEST_SKIP() << "integration tests need root";
    }
    for (const char* tool : {"docker-registry", "skopeo", "htpasswd", "openssl", "python3"}) {
      if (RunProgram({"sh", "-c", std::string("command -v ") + tool}) != 0) {
        if (RequireAll()) FAIL() << tool << " is missing (deploy/install-deps.sh installs it)";
        GTEST_SKIP() << tool << " is missing (deploy/install-deps.sh installs it)";
      }
    }
  }

  void TearDown() override { StopDaemon(); }

  void StartDaemon(std::vector<std::string> args = {}) {
    daemon_ = std::make_unique<Daemon>(std::move(args));
    daemon_->Start();
    images_ = ipb::ImageService::NewStub(daemon_->Channel());
  }
  void StopDaemon() {
    if (!daemon_) return;
    daemon_->Stop();
    EXPECT_TRUE(daemon_->LeftoverProcesses().empty());
    daemon_.reset();
  }
  std::string State() const { return daemon_->dir() + "/state"; }

  // The three-layer busybox image: busybox (gzip), /etc/hello (zstd), 2 MiB of random data
  // (gzip: incompressible, so the blob stays over 1 MiB). Layers are compressed because skopeo
  // compresses uncompressed layers on the way to a registry (import tests the plain tar).
  LayoutBuilder::Built BuildBusybox(
      LayoutBuilder& layout, const std::string& hello = "hello\n",
      LayoutBuilder::Compression big_compression = LayoutBuilder::Compression::kGzip) {
    std::mt19937 random(42);
    std::string big(2 << 20, '\0');
    for (auto& c : big) c = static_cast<char>(random());
    return layout.AddImage({{{{"bin/busybox", BusyboxBinary()}}, LayoutBuilder::Compression::kGzip},
                            {{{"etc/hello", hello}}, LayoutBuilder::Compression::kZstd},
                            {{{"data/big", big}}, big_compression}});
  }

  struct PullOutcome {
    grpc::Status status;
    std::vector<ipb::PullProgress> progress;
  };
  PullOutcome Pull(const std::string& reference) {
    PullOutcome out;
    grpc::ClientContext ctx;
    ipb::PullRequest req;
    req.set_reference(reference);
    auto reader = images_->Pull(&ctx, req);
    ipb::PullProgress p;
    while (reader->Read(&p)) out.progress.push_back(p);
    out.status = reader->Finish();
    return out;
  }
  grpc::Status Inspect(const std::string& reference, ipb::InspectResponse* resp) {
    grpc::ClientContext ctx;
    ipb::InspectRequest req;
    req.set_reference(reference);
    return images_->Inspect(&ctx, req, resp);
  }
  grpc::Status Remove(const std::string& reference) {
    grpc::ClientContext ctx;
    ipb::RemoveRequest req;
    req.set_reference(reference);
    ipb::RemoveResponse resp;
    return images_->Remove(&ctx, req, &resp);
  }
  std::vector<ipb::ImageInfo> List() {
    grpc::ClientContext ctx;
    ipb::ListResponse resp;
    EXPECT_TRUE(images_->List(&ctx, {}, &resp).ok());
    return {resp.images().begin(), resp.images().end()};
  }
  // Every file under blobs/ (stored and partial).
  std::vector<std::string> BlobFiles() {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::recursive_directory_iterator(State() + "/blobs", ec)) {
      if (e.is_regular_file()) out.push_back(e.path().string());
    }
    return out;
  }
  // The stored blob's bytes hash to its name.
  void ExpectStoredAndVerified(const std::string& digest) {
    std::string path = State() + "/blobs/sha256/" + digest.substr(7);
    ASSERT_TRUE(std::filesystem::exists(path)) << path;
    EXPECT_EQ(Sha256Hex(ReadWholeFile(path)), digest.substr(7));
  }

  TempTree tmp_;
  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<ipb::ImageService::Stub> images_;
};

TEST_F(ImageTest, PlainHttpPullListInspectRemove) {
  TestRegistry registry(tmp_.path(), {});
  ASSERT_TRUE(registry.ok()) << ReadWholeFile(tmp_.path() + "/registry/registry.log");
  LayoutBuilder layout(tmp_.path() + "/layout");
  auto image = BuildBusybox(layout);
  layout.Tag(image, "v1");
  std::string out;
  ASSERT_TRUE(registry.Push(layout.dir(), "v1", "test/busybox:v1", &out)) << out;
  StartDaemon();

  std::string ref = registry.host() + "/test/busybox:v1";
  auto pulled = Pull(ref);
  ASSERT_TRUE(pulled.status.ok()) << pulled.status.error_message();
  ASSERT_FALSE(pulled.progress.empty());
  EXPECT_TRUE(pulled.progress.back().done());
  EXPECT_NE(pulled.progress.back().status().find(image.manifest_digest), std::string::npos);
  // Per-layer bytes: each layer reported complete, with its size as total.
  for (const auto& layer : image.layer_digests) {
    uint64_t size = layout.BlobBytes(layer).size();
    bool complete = false;
    for (const auto& p : pulled.progress) {
      if (p.layer() == layer && p.current() == size && p.total() == size) complete = true;
    }
    EXPECT_TRUE(complete) << "no complete progress for layer " << layer;
    ExpectStoredAndVerified(layer);
  }
  ExpectStoredAndVerified(image.manifest_digest);
  ExpectStoredAndVerified(image.config_digest);

  auto list = List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].digest(), image.manifest_digest);
  ASSERT_EQ(list[0].tags_size(), 1);
  EXPECT_EQ(list[0].tags(0), ref);
  EXPECT_EQ(list[0].created_at(), "2026-01-02T03:04:05Z");

  ipb::InspectResponse first, second;
  ASSERT_TRUE(Inspect(ref, &first).ok());
  ASSERT_TRUE(Inspect(registry.host() + "/test/busybox@" + image.manifest_digest, &second).ok());
  EXPECT_EQ(first.digest(), image.manifest_digest);
  EXPECT_EQ(second.digest(), first.digest());  // stable across inspects and spellings
  EXPECT_EQ(std::vector<std::string>(first.layers().begin(), first.layers().end()),
            image.layer_digests);
  EXPECT_EQ(Json::parse(first.config_json())["rootfs"]["diff_ids"].size(), 3u);
  uint64_t expected_size =
      layout.BlobBytes(image.manifest_digest).size() + layout.BlobBytes(image.config_digest).size();
  for (const auto& l : image.layer_digests) expected_size += layout.BlobBytes(l).size();
  EXPECT_EQ(first.size(), expected_size);

  // Errors a user can act on.
  ipb::InspectResponse none;
  EXPECT_EQ(Inspect("Not A Ref", &none).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Inspect(registry.host() + "/test/other:v1", &none).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Pull("Not A Ref").status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Pull(registry.host() + "/test/busybox:nope").status.error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Remove(registry.host() + "/test/other:v1").error_code(), grpc::StatusCode::NOT_FOUND);

  // A second pull finds every blob present and downloads nothing.
  auto again = Pull(ref);
  ASSERT_TRUE(again.status.ok());
  for (const auto& p : again.progress) EXPECT_NE(p.status(), "downloading") << p.layer();

  // An unpacked layer dir of the image goes with it.
  std::string layer_dir = State() + "/layers/sha256/" + image.layer_digests[0].substr(7);
  std::filesystem::create_directories(layer_dir + "/bin");
  ASSERT_TRUE(Remove(ref).ok());
  EXPECT_TRUE(List().empty());
  EXPECT_TRUE(BlobFiles().empty()) << BlobFiles()[0];
  EXPECT_FALSE(std::filesystem::exists(layer_dir));
  EXPECT_EQ(Remove(ref).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ImageTest, MultiArchIndexResolvesToThisPlatformAndDigestPinsHold) {
  TestRegistry registry(tmp_.path(), {});
  ASSERT_TRUE(registry.ok());
  LayoutBuilder layout(tmp_.path() + "/layout");
  auto amd64 = BuildBusybox(layout);
  auto arm64 = layout.AddImage({{{{"etc/arch", "arm64\n"}}}}, "arm64");
  std::string index = layout.TagIndex({{arm64, "arm64"}, {amd64, "amd64"}}, "multi");
  std::string out;
  ASSERT_TRUE(registry.Push(layout.dir(), "multi", "test/multi:v1", &out)) << out;
  // A second image under another tag, then moved onto the first tag: the pin must still get v1.
  LayoutBuilder layout2(tmp_.path() + "/layout2");
  auto v2 = BuildBusybox(layout2, "hello v2\n");
  layout2.Tag(v2, "v2");
  ASSERT_TRUE(registry.Push(layout2.dir(), "v2", "test/multi:v2", &out)) << out;
  StartDaemon();

  std::string repo = registry.host() + "/test/multi";
  auto pulled = Pull(repo + ":v1");
  ASSERT_TRUE(pulled.status.ok()) << pulled.status.error_message();
  ipb::InspectResponse info;
  ASSERT_TRUE(Inspect(repo + ":v1", &info).ok());
  EXPECT_EQ(info.digest(), amd64.manifest_digest);  // this host's entry, not the first one
  EXPECT_FALSE(
      std::filesystem::exists(State() + "/blobs/sha256/" + arm64.layer_digests[0].substr(7)));
  // The index digest names the image too.
  ipb::InspectResponse by_index;
  ASSERT_TRUE(Inspect(repo + "@" + index, &by_index).ok());
  EXPECT_EQ(by_index.digest(), amd64.manifest_digest);

  // Move v1 to the v2 image on the registry; a pull pinned to the old digest fetches by digest.
  ASSERT_TRUE(registry.Push(layout2.dir(), "v2", "test/multi:v1", &out)) << out;
  ASSERT_TRUE(Remove(repo + ":v1").ok());
  auto pinned = Pull(repo + ":v1@" + amd64.manifest_digest);
  ASSERT_TRUE(pinned.status.ok()) << pinned.status.error_message();
  ASSERT_TRUE(Inspect(repo + ":v1", &info).ok());
  EXPECT_EQ(info.digest(), amd64.manifest_digest);
  // Unpinned, the tag now gives v2.
  ASSERT_TRUE(Pull(repo + ":v1").status.ok());
  ASSERT_TRUE(Inspect(repo + ":v1", &info).ok());
  EXPECT_EQ(info.digest(), v2.manifest_digest);
  // A pin no manifest has is NOT_FOUND, and one with the wrong form INVALID_ARGUMENT.
  std::string bogus = "sha256:" + std::string(64, '0');
  EXPECT_EQ(Pull(repo + "@" + bogus).status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Pull(repo + "@sha256:1234").status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ImageTest, TamperedBlobIsRefusedAndLeavesNothing) {
  TestRegistry registry(tmp_.path(), {});
  ASSERT_TRUE(registry.ok());
  LayoutBuilder layout(tmp_.path() + "/layout");
  auto image = BuildBusybox(layout);
  layout.Tag(image, "v1");
  ASSERT_TRUE(registry.Push(layout.dir(), "v1", "test/tampered:v1"));
  // Flip one byte of the stored busybox layer: same size, other content.
  std::string path = registry.BlobDataPath(image.layer_digests[2]);
  std::string bytes = ReadWholeFile(path);
  ASSERT_FALSE(bytes.empty());
  bytes[bytes.size() / 2] ^= 0x5a;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  StartDaemon();

  auto pulled = Pull(registry.host() + "/test/tampered:v1");
  EXPECT_EQ(pulled.status.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_NE(pulled.status.error_message().find(image.layer_digests[2]), std::string::npos)
      << pulled.status.error_message();
  for (const auto& p : pulled.progress) EXPECT_FALSE(p.done());
  EXPECT_TRUE(List().empty());
  auto left = BlobFiles();
  EXPECT_TRUE(left.empty()) << left.size() << " blob files left, e.g. " << left[0];
}

TEST_F(ImageTest, TamperedManifestIsRefusedAndLeavesNothing) {
  TestRegistry registry(tmp_.path(), {});
  ASSERT_TRUE(registry.ok());
  LayoutBuilder layout(tmp_.path() + "/layout");
  auto image = BuildBusybox(layout);
  layout.Tag(image, "v1");
  ASSERT_TRUE(registry.Push(layout.dir(), "v1", "test/tampered:v1"));
  // Still valid JSON naming the same blobs, but not the bytes the digest was taken of.
  std::string path = registry.BlobDataPath(image.manifest_digest);
  std::string bytes = ReadWholeFile(path);
  ASSERT_EQ(bytes.front(), '{');
  std::ofstream(path, std::ios::binary | std::ios::trunc) << "{ " << bytes.substr(1);
  StartDaemon();

  for (const std::string& ref : {registry.host() + "/test/tampered:v1",
                                 registry.host() + "/test/tampered@" + image.manifest_digest}) {
    auto pulled = Pull(ref);
    EXPECT_EQ(pulled.status.error_code(), grpc::StatusCode::DATA_LOSS) << ref;
    EXPECT_NE(pulled.status.error_message().find("does not match its digest"), std::string::npos)
        << pulled.status.error_message();
  }
  EXPECT_TRUE(List().empty());
  EXPECT_TRUE(BlobFiles().empty());
}

TEST_F(ImageTest, InterruptedBlobDownloadResumesWithRange) {
  TestRegistry registry(tmp_.path(), {});
  ASSERT_TRUE(registry.ok());
  LayoutBuilder layout(tmp_.path() + "/layout");
  auto image = BuildBusybox(layout);
  layout.Tag(image, "v1");
  ASSERT_TRUE(registry.Push(layout.dir(), "v1", "test/resume:v1"));
  // The front cuts the first download of every blob larger than 1 MiB after 1 MiB.
  constexpr uint64_t kCut = 1 << 20;
  RegistryFront front(tmp_.path(), registry.host(), {.cut_after = kCut});
  ASSERT_TRUE(front.ok());
  StartDaemon();

  auto pulled = Pull(front.host() + "/test/resume:v1");
  ASSERT_TRUE(pulled.status.ok()) << pulled.status.error_message();
  ExpectStoredAndVerified(image.layer_digests[2]);
  // The big layer: cut once, then asked for from where it stopped.
  std::string big_path = "/v2/test/resume/blobs/" + image.layer_digests[2];
  int cuts = 0, ranged = 0, whole = 0;
  for (const auto& line : front.Log()) {
    Json e = Json::parse(line);
    if (e.value("cut", "") == big_path) ++cuts;
    if (e.value("path", "") != big_path || e.value("method", "") != "GET") continue;
    if (e.value("range", "") == "bytes=" + std::to_string(kCut) + "-") ++ranged;
    if (e.value("range", "").empty()) ++whole;
  }
  EXPECT_EQ(cuts, 1);
  EXPECT_EQ(whole, 1);
  EXPECT_EQ(ranged, 1) << "the retry did not resume at byte " << kCut;
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::is_empty(State() + "/blobs/ingest", ec));
}

TEST_F(ImageTest, TwoPullsOfOneImageShareEachDownload) {
  TestRegistry registry(tmp_.path(), {});
  ASSERT_TRUE(registry.ok());
  LayoutBuilder layout(tmp_.path() + "/layout");
  auto image = BuildBusybox(layout);
  layout.Tag(image, "v1");
  ASSERT_TRUE(registry.Push(layout.dir(), "v1", "test/shared:v1"));
  RegistryFront front(tmp_.path(), registry.host(), {});
  ASSERT_TRUE(front.ok());
  StartDaemon();
  std::string ref = front.host() + "/test/shared:v1";
  PullOutcome a, b;
  std::thread t([&] { a = Pull(ref); });
  b = Pull(ref);
  t.join();
  ASSERT_TRUE(a.status.ok()) << a.status.error_message();
  ASSERT_TRUE(b.status.ok()) << b.status.error_message();
  std::map<std::string, int> gets;
  for (const auto& line : front.Log()) {
    Json e = Json::parse(line);
    if (e.value("method", "") == "GET") ++gets[e.value("path", "")];
  }
  for (const auto& layer : image.layer_digests) {
    EXPECT_EQ(gets["/v2/test/shared/blobs/" + layer], 1) << layer;
  }
}

TEST_F(ImageTest, TlsWithBasicAuthFromTheAuthsFile) {
  TestRegistry registry(tmp_.path(), {.tls = true, .user = "alice", .password = "s3cret"});
  ASSERT_TRUE(registry.ok()) << ReadWholeFile(tmp_.path() + "/registry/registry.log");
  LayoutBuilder layout(tmp_.path() + "/layout");
  auto image = BuildBusybox(layout);
  layout.Tag(image, "v1");
  std::string out;
  ASSERT_TRUE(registry.Push(layout.dir(), "v1", "test/private:v1", &out)) << out;
  std::string auths = tmp_.path() + "/auths.json";
  std::ofstream(auths) << Json{{"auths",
                                {{"https://" + registry.host(), {{"auth", "YWxpY2U6czNjcmV0"}}}}}}
                              // alice:s3cret
                              .dump();
  std::string ref = registry.host() + "/test/private:v1";

  // The test CA is not in the system store: refused, naming the certificate problem.
  StartDaemon();
  auto untrusted = Pull(ref);
  EXPECT_EQ(untrusted.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(untrusted.status.error_message().find("certificate"), std::string::npos)
      << untrusted.status.error_message();
  StopDaemon();

  // Trusted, but without credentials: refused with what to do.
  StartDaemon({"--registry-ca", registry.ca_file()});
  auto anonymous = Pull(ref);
  EXPECT_EQ(anonymous.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(anonymous.status.error_message().find("--registry-auth"), std::string::npos)
      << anonymous.status.error_message();
  StopDaemon();

  StartDaemon({"--registry-ca", registry.ca_file(), "--registry-auth", auths});
  auto pulled = Pull(ref);
  ASSERT_TRUE(pulled.status.ok()) << pulled.status.error_message();
  ipb::InspectResponse info;
  ASSERT_TRUE(Inspect(ref, &info).ok());
  EXPECT_EQ(info.digest(), image.manifest_digest);
}

TEST_F(ImageTest, BearerTokenChallengeWithCredentials) {
  TestRegistry registry(tmp_.path(), {});
  ASSERT_TRUE(registry.ok());
  LayoutBuilder layout(tmp_.path() + "/layout");
  auto image = BuildBusybox(layout);
  layout.Tag(image, "v1");
  ASSERT_TRUE(registry.Push(layout.dir(), "v1", "team/app:v1"));
  RegistryFront front(tmp_.path(), registry.host(), {.token = "bob:hunter2"});
  ASSERT_TRUE(front.ok());
  std::string auths = tmp_.path() + "/auths.json";
  std::ofstream(auths)
      << Json{{"auths", {{front.host(), {{"username", "bob"}, {"password", "hunter2"}}}}}}.dump();
  std::string ref = front.host() + "/team/app:v1";

  StartDaemon();
  auto refused = Pull(ref);  // the token server wants credentials
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << refused.status.error_message();
  StopDaemon();

  StartDaemon({"--registry-auth", auths});
  auto pulled = Pull(ref);
  ASSERT_TRUE(pulled.status.ok()) << pulled.status.error_message();
  int token_requests = 0, bearer_blob_gets = 0;
  for (const auto& line : front.Log()) {
    Json e = Json::parse(line);
    if (e.value("path", "") == "/token" && e.value("auth", "") == "basic") ++token_requests;
    if (e.value("path", "").find("/blobs/") != std::string::npos && e.value("auth", "") == "bearer")
      ++bearer_blob_gets;
  }
  EXPECT_GE(token_requests, 1);
  EXPECT_EQ(bearer_blob_gets, 4);  // three layers and the config, each with the token
}

}  // namespace
}  // namespace rauha::testing
