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

  // Streams a file to Import in 64 KiB chunks.
  grpc::Status ImportFile(const std::string& path, const std::string& tag,
                          ipb::ImportResponse* resp) {
    grpc::ClientContext ctx;
    auto writer = images_->Import(&ctx, resp);
    std::string data = ReadWholeFile(path);
    for (size_t off = 0; off < data.size(); off += 65536) {
      ipb::ImportChunk chunk;
      chunk.set_data(data.substr(off, 65536));
      if (off == 0) chunk.set_tag(tag);
      if (!writer->Write(chunk)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }
  grpc::Status ExportFile(const std::string& reference, const std::string& path) {
    grpc::ClientContext ctx;
    ipb::ExportRequest req;
    req.set_reference(reference);
    auto reader = images_->Export(&ctx, req);
    std::ofstream out(path, std::ios::binary);
    ipb::ExportChunk chunk;
    while (reader->Read(&chunk)) out << chunk.data();
    return reader->Finish();
  }
  std::string Cli(const std::vector<std::string>& args, int* rc) {
    std::vector<std::string> argv = {RAUHA_CLI_BIN, "--socket", daemon_->socket()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string out;
    *rc = RunProgram(argv, &out);
    return out;
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

TEST_F(ImageTest, ExportImportRoundTripAndTamperedArchivesRefused) {
  TestRegistry registry(tmp_.path(), {});
  ASSERT_TRUE(registry.ok());
  LayoutBuilder layout(tmp_.path() + "/layout");
  auto image = BuildBusybox(layout);
  layout.Tag(image, "v1");
  ASSERT_TRUE(registry.Push(layout.dir(), "v1", "test/roundtrip:v1"));
  StartDaemon();
  std::string ref = registry.host() + "/test/roundtrip:v1";
  ASSERT_TRUE(Pull(ref).status.ok());

  // Export, remove, import: the same image under the same name, every blob verified again.
  std::string tar = tmp_.path() + "/exported.tar";
  ASSERT_TRUE(ExportFile(ref, tar).ok());
  std::string listing;
  ASSERT_EQ(RunProgram({"tar", "-tf", tar}, &listing), 0);
  EXPECT_NE(listing.find("oci-layout"), std::string::npos);
  EXPECT_NE(listing.find("index.json"), std::string::npos);
  EXPECT_NE(listing.find("blobs/sha256/" + image.layer_digests[0].substr(7)), std::string::npos);
  ASSERT_TRUE(Remove(ref).ok());
  ASSERT_TRUE(BlobFiles().empty());
  ipb::ImportResponse imported;
  grpc::Status st = ImportFile(tar, "", &imported);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(imported.images_size(), 1);
  EXPECT_EQ(imported.images(0).digest(), image.manifest_digest);
  ASSERT_EQ(imported.images(0).tags_size(), 1);
  EXPECT_EQ(imported.images(0).tags(0), ref);
  for (const auto& l : image.layer_digests) ExpectStoredAndVerified(l);
  size_t files_before = BlobFiles().size();

  // An OCI layout whose blob does not hash to its name: refused, nothing kept.
  LayoutBuilder bad(tmp_.path() + "/bad");
  auto bad_image = bad.AddImage({{{{"etc/x", "x\n"}}, LayoutBuilder::Compression::kNone}});
  bad.Tag(bad_image, "v1");
  std::ofstream(bad.dir() + "/blobs/sha256/" + bad_image.layer_digests[0].substr(7),
                std::ios::binary | std::ios::app)
      << "extra";
  ASSERT_EQ(RunProgram({"tar", "-C", bad.dir(), "-cf", tmp_.path() + "/bad.tar", "."}), 0);
  st = ImportFile(tmp_.path() + "/bad.tar", "example.com/bad:1", &imported);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DATA_LOSS) << st.error_message();
  EXPECT_EQ(BlobFiles().size(), files_before);
  EXPECT_EQ(List().size(), 1u);

  // A docker save archive (uncompressed layers, config named by its digest), tagged by its
  // RepoTags; and the same archive with a layer that is not the config's diff_id, refused.
  LayoutBuilder raw(tmp_.path() + "/raw");
  auto raw_image = raw.AddImage({{{{"etc/saved", "saved\n"}}, LayoutBuilder::Compression::kNone}});
  std::string layer_tar = raw.BlobBytes(raw_image.layer_digests[0]);
  std::string config = raw.BlobBytes(raw_image.config_digest);
  auto make_save = [&](const std::string& dir, const std::string& layer_bytes) {
    std::filesystem::create_directories(dir + "/abc");
    std::ofstream(dir + "/abc/layer.tar", std::ios::binary) << layer_bytes;
    std::ofstream(dir + "/" + raw_image.config_digest.substr(7) + ".json") << config;
    std::ofstream(dir + "/manifest.json")
        << Json::array({{{"Config", raw_image.config_digest.substr(7) + ".json"},
                         {"RepoTags", {"example.com/saved:1"}},
                         {"Layers", {"abc/layer.tar"}}}})
               .dump();
    EXPECT_EQ(RunProgram({"tar", "-C", dir, "-cf", dir + ".tar", "."}), 0);
  };
  make_save(tmp_.path() + "/save", layer_tar);
  st = ImportFile(tmp_.path() + "/save.tar", "", &imported);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ipb::InspectResponse saved;
  ASSERT_TRUE(Inspect("example.com/saved:1", &saved).ok());
  ASSERT_EQ(saved.layers_size(), 1);
  EXPECT_EQ(saved.layers(0), raw_image.layer_digests[0]);
  files_before = BlobFiles().size();
  std::string evil = layer_tar;
  evil[600] ^= 1;  // inside the file's data
  make_save(tmp_.path() + "/evil", evil);
  st = ImportFile(tmp_.path() + "/evil.tar", "example.com/evil:1", &imported);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DATA_LOSS) << st.error_message();
  EXPECT_EQ(BlobFiles().size(), files_before);
  ipb::InspectResponse none;
  EXPECT_EQ(Inspect("example.com/evil:1", &none).error_code(), grpc::StatusCode::NOT_FOUND);
  // Not an archive at all.
  std::ofstream(tmp_.path() + "/junk.tar") << "not a tar";
  EXPECT_EQ(ImportFile(tmp_.path() + "/junk.tar", "", &imported).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ImageTest, CliPullListInspectExportImportRemove) {
  TestRegistry registry(tmp_.path(), {});
  ASSERT_TRUE(registry.ok());
  LayoutBuilder layout(tmp_.path() + "/layout");
  auto image = BuildBusybox(layout);
  layout.Tag(image, "v1");
  ASSERT_TRUE(registry.Push(layout.dir(), "v1", "test/cli:v1"));
  StartDaemon();
  std::string ref = registry.host() + "/test/cli:v1";
  int rc = 0;
  // Not a terminal: plain lines, one per layer state, then the digest.
  std::string out = Cli({"image", "pull", ref}, &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find(image.layer_digests[0].substr(7, 12) + ": verified"), std::string::npos)
      << out;
  EXPECT_NE(out.find("pulled " + ref + " " + image.manifest_digest), std::string::npos) << out;
  EXPECT_EQ(out.find("\x1b["), std::string::npos) << "terminal escapes in plain output";

  out = Cli({"image", "list", "--json"}, &rc);
  ASSERT_EQ(rc, 0) << out;
  Json list = Json::parse(out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["digest"], image.manifest_digest);
  out = Cli({"image", "list"}, &rc);
  EXPECT_NE(out.find(ref), std::string::npos) << out;

  out = Cli({"image", "inspect", ref}, &rc);
  ASSERT_EQ(rc, 0) << out;
  Json info = Json::parse(out);
  EXPECT_EQ(info["digest"], image.manifest_digest);
  EXPECT_EQ(info["config"]["config"]["Cmd"][0], "/bin/sh");

  std::string tar = tmp_.path() + "/cli.tar";
  out = Cli({"image", "export", ref, "-o", tar}, &rc);
  ASSERT_EQ(rc, 0) << out;
  out = Cli({"image", "rm", ref}, &rc);
  ASSERT_EQ(rc, 0) << out;
  out = Cli({"image", "rm", ref}, &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("not found"), std::string::npos) << out;
  out = Cli({"image", "import", tar, "--tag", "example.com/again:2"}, &rc);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("imported " + image.manifest_digest + " example.com/again:2"),
            std::string::npos)
      << out;
  out = Cli({"image", "inspect", "Bad Ref"}, &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("invalid argument"), std::string::npos) << out;
}

}  // namespace
}  // namespace rauha::testing
