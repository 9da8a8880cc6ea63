#include <gtest/gtest.h>

#include "rauhad/image/digest.h"
#include "rauhad/image/reference.h"

namespace rauha::image {
namespace {

const std::string kHex(64, 'a');
const std::string kDigest = "sha256:" + kHex;

struct Case {
  std::string text, registry, repository, tag, digest;
};

TEST(ImageReference, NormalisesAsDockerDoes) {
  const Case cases[] = {
      {"python:3.12", "docker.io", "library/python", "3.12", ""},
      {"busybox", "docker.io", "library/busybox", "latest", ""},
      {"user/app", "docker.io", "user/app", "latest", ""},
      {"docker.io/busybox", "docker.io", "library/busybox", "latest", ""},
      {"index.docker.io/library/busybox:1", "docker.io", "library/busybox", "1", ""},
      {"localhost/app", "localhost", "app", "latest", ""},
      {"localhost:5000/a/b:v1", "localhost:5000", "a/b", "v1", ""},
      {"127.0.0.1:5000/busybox:1.36", "127.0.0.1:5000", "busybox", "1.36", ""},
      {"[::1]:5000/app:x", "[::1]:5000", "app", "x", ""},
      {"ghcr.io/org/sub/app", "ghcr.io", "org/sub/app", "latest", ""},
      {"Registry/app", "Registry", "app", "latest", ""},
      {"busybox@" + kDigest, "docker.io", "library/busybox", "", kDigest},
      {"busybox:1@" + kDigest, "docker.io", "library/busybox", "1", kDigest},
      {"a__b_c-d---e/f.g_h:T_a.g-1", "docker.io", "a__b_c-d---e/f.g_h", "T_a.g-1", ""},
  };
  for (const auto& c : cases) {
    auto ref = ParseReference(c.text);
    ASSERT_TRUE(ref.ok()) << c.text << ": " << ref.status();
    EXPECT_EQ(ref->registry, c.registry) << c.text;
    EXPECT_EQ(ref->repository, c.repository) << c.text;
    EXPECT_EQ(ref->tag, c.tag) << c.text;
    EXPECT_EQ(ref->digest, c.digest) << c.text;
    // The canonical form parses back to itself.
    auto again = ParseReference(ref->String());
    ASSERT_TRUE(again.ok()) << ref->String();
    EXPECT_EQ(again->String(), ref->String());
  }
  EXPECT_EQ(ParseReference("python:3.12")->String(), "docker.io/library/python:3.12");
  EXPECT_EQ(ParseReference("busybox:1@" + kDigest)->ManifestRef(), kDigest);
  EXPECT_EQ(ParseReference("busybox:1")->ManifestRef(), "1");
}

TEST(ImageReference, RefusesMalformedWithTheReason) {
  const std::pair<std::string, std::string> cases[] = {
      {"", "empty"},
      {"UPPER", "repository"},
      {"busybox:", "tag"},
      {"busybox:.x", "tag"},
      {"busybox:" + std::string(129, 'a'), "tag"},
      {"a//b", "repository"},
      {"a/-b", "repository"},
      {"a/b_", "repository"},
      {"a/b___c", "repository"},
      {"/busybox", "repository"},
      {"busybox@sha256:abc", "digest"},
      {"busybox@md5:" + kHex, "unsupported digest algorithm"},
      {"busybox@sha256:" + std::string(64, 'A'), "digest"},
      {"bad_host:5000/x", "registry"},
      {"host:99999/x", "port"},
      {"host:/x", "port"},
      {"[::zz]:5000/x", "IPv6"},
      {"-host.com/x", "registry"},
      {kHex, "image id"},
      {"a b", "repository"},
      {"x/" + std::string(260, 'a'), "255"},
  };
  for (const auto& [text, why] : cases) {
    auto ref = ParseReference(text);
    ASSERT_FALSE(ref.ok()) << text << " parsed as " << ref->String();
    EXPECT_EQ(ref.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_NE(std::string(ref.status().message()).find(why), std::string::npos)
        << text << ": " << ref.status();
  }
}

TEST(ImageReference, LoopbackRegistriesAndEndpoints) {
  EXPECT_TRUE(IsLoopbackRegistry("localhost:5000"));
  EXPECT_TRUE(IsLoopbackRegistry("127.0.0.1:5000"));
  EXPECT_TRUE(IsLoopbackRegistry("127.9.9.9"));
  EXPECT_TRUE(IsLoopbackRegistry("[::1]:5000"));
  EXPECT_FALSE(IsLoopbackRegistry("10.0.0.1:5000"));
  EXPECT_FALSE(IsLoopbackRegistry("docker.io"));
  EXPECT_FALSE(IsLoopbackRegistry("localhost.example.com"));
  EXPECT_EQ(RegistryEndpoint("docker.io"), "registry-1.docker.io");
  EXPECT_EQ(RegistryEndpoint("ghcr.io"), "ghcr.io");
}

TEST(ImageDigest, IncrementalSha256MatchesOneShot) {
  EXPECT_EQ(Sha256Digest(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 h;
  h.Update("hello ");
  EXPECT_EQ(h.Digest(), Sha256Digest("hello "));  // Digest() does not end the hash
  h.Update("world");
  EXPECT_EQ(h.Digest(), Sha256Digest("hello world"));
  EXPECT_TRUE(IsDigest(kDigest));
  EXPECT_FALSE(IsDigest("sha256:" + std::string(63, 'a')));
  EXPECT_FALSE(IsDigest("sha512:" + kHex));
}

}  // namespace
}  // namespace rauha::image
