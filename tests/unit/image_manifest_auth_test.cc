#include <gtest/gtest.h>

#include "nlohmann/json.hpp"
#include "rauhad/image/auth.h"
#include "rauhad/image/manifest.h"

namespace rauha::image {
namespace {

using Json = nlohmann::json;
const std::string kD1 = "sha256:" + std::string(64, '1');
const std::string kD2 = "sha256:" + std::string(64, '2');
const std::string kD3 = "sha256:" + std::string(64, '3');

Json Desc(const std::string& type, const std::string& digest, uint64_t size) {
  return {{"mediaType", type}, {"digest", digest}, {"size", size}};
}

TEST(ImageManifest, ParsesImageManifestsOfBothFamilies) {
  for (const auto& [type, config, layer] :
       {std::tuple{kOciManifest, kOciConfig, kOciLayerZstd},
        std::tuple{kDockerManifest, kDockerConfig, kDockerLayerGzip}}) {
    Json m = {{"schemaVersion", 2},
              {"mediaType", type},
              {"config", Desc(config, kD1, 10)},
              {"layers", {Desc(layer, kD2, 20), Desc(kOciLayerTar, kD3, 30)}}};
    auto parsed = ParseManifest(m.dump(), "");
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_FALSE(parsed->is_index);
    EXPECT_EQ(parsed->config.digest, kD1);
    ASSERT_EQ(parsed->layers.size(), 2u);
    EXPECT_EQ(parsed->layers[1].size, 30u);
  }
  // OCI allows mediaType to be absent: the Content-Type or the shape decides.
  Json bare = {
      {"schemaVersion", 2}, {"config", Desc(kOciConfig, kD1, 1)}, {"layers", Json::array()}};
  EXPECT_EQ(ParseManifest(bare.dump(), "")->media_type, kOciManifest);
}

TEST(ImageManifest, RefusesWhatItCannotVerifyOrUnpack) {
  auto code = [](const Json& j) { return ParseManifest(j.dump(), "").status().code(); };
  Json good = {{"schemaVersion", 2},
               {"mediaType", kOciManifest},
               {"config", Desc(kOciConfig, kD1, 10)},
               {"layers", {Desc(kOciLayerGzip, kD2, 20)}}};
  Json j = good;
  j["layers"][0]["digest"] = "sha256:abc";
  EXPECT_EQ(code(j), absl::StatusCode::kInvalidArgument);
  j = good;
  j["layers"][0]["size"] = -1;
  EXPECT_EQ(code(j), absl::StatusCode::kInvalidArgument);
  j = good;
  j["layers"][0]["mediaType"] = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
  EXPECT_EQ(code(j), absl::StatusCode::kFailedPrecondition);
  j = good;
  j["schemaVersion"] = 1;
  EXPECT_EQ(code(j), absl::StatusCode::kFailedPrecondition);
  j = good;
  j["config"]["mediaType"] = "application/octet-stream";
  EXPECT_EQ(code(j), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ParseManifest("{not json", "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseManifest("[]", "").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ImageManifest, IndexResolvesToThePlatform) {
  auto entry = [](const std::string& digest, const std::string& arch, const std::string& variant) {
    Json d = Desc(kOciManifest, digest, 5);
    d["platform"] = {{"os", "linux"}, {"architecture", arch}};
    if (!variant.empty()) d["platform"]["variant"] = variant;
    return d;
  };
  Json index = {
      {"schemaVersion", 2},
      {"mediaType", kDockerList},
      {"manifests", {entry(kD1, "arm", "v6"), entry(kD2, "arm", "v7"), entry(kD3, "amd64", "")}}};
  auto parsed = ParseManifest(index.dump(), "");
  ASSERT_TRUE(parsed.ok());
  ASSERT_TRUE(parsed->is_index);
  EXPECT_EQ(SelectPlatform(*parsed, {"linux", "amd64", ""})->digest, kD3);
  EXPECT_EQ(SelectPlatform(*parsed, {"linux", "arm", "v7"})->digest, kD2);
  auto missing = SelectPlatform(*parsed, {"linux", "riscv64", ""});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(missing.status().message()).find("linux/arm/v7"), std::string::npos);
  EXPECT_EQ(HostPlatform().os, "linux");
}

TEST(RegistryAuth, ParsesChallenges) {
  auto c = ParseChallenge(
      R"(Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull")");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->scheme, "bearer");
  EXPECT_EQ(c->params["realm"], "https://auth.example/token");
  EXPECT_EQ(c->params["service"], "registry.example");
  EXPECT_EQ(c->params["scope"], "repository:a/b:pull");
  auto basic = ParseChallenge(R"(Basic realm="x\"y")");
  ASSERT_TRUE(basic.ok());
  EXPECT_EQ(basic->scheme, "basic");
  EXPECT_EQ(basic->params["realm"], "x\"y");
  EXPECT_FALSE(ParseChallenge(R"(Bearer realm="unterminated)").ok());
  EXPECT_FALSE(ParseChallenge("").ok());
}

TEST(RegistryAuth, FindsCredentialsInAnAuthsFile) {
  std::string file = R"({"auths": {
      "https://index.docker.io/v1/": {"auth": "aHViOnB3"},
      "127.0.0.1:5000": {"username": "u", "password": "p"},
      "bad.example": {"auth": "!!!"}}})";
  auto hub = FindCredentials(file, "docker.io");
  ASSERT_TRUE(hub.ok() && hub->has_value());
  EXPECT_EQ((*hub)->username, "hub");
  EXPECT_EQ((*hub)->password, "pw");
  auto local = FindCredentials(file, "127.0.0.1:5000");
  ASSERT_TRUE(local.ok() && local->has_value());
  EXPECT_EQ((*local)->password, "p");
  EXPECT_FALSE(FindCredentials(file, "ghcr.io")->has_value());
  EXPECT_EQ(FindCredentials(file, "bad.example").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FindCredentials("[", "x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(FindCredentials("{}", "x")->has_value());
}

}  // namespace
}  // namespace rauha::image
