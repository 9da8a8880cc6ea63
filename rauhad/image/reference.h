// Image references as Docker resolves them: `python:3.12` is docker.io/library/python:3.12,
// `host:port/repo:tag` names its registry, `repo@sha256:<hex>` pins a manifest, and a tag with
// a digest fetches by the digest. Pure; fuzzed (tests/fuzz/reference_fuzz.cc).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace rauha::image {

inline constexpr char kDockerHub[] = "docker.io";

struct Reference {
  std::string registry;    // "docker.io", "127.0.0.1:5000", "[::1]:5000"
  std::string repository;  // "library/python"
  std::string tag;         // "3.12"; "latest" when neither tag nor digest was given
  std::string digest;      // "sha256:<64 hex>" or ""

  // "docker.io/library/python"
  std::string Name() const { return registry + "/" + repository; }
  // "docker.io/library/python:3.12" or "" when there is no tag.
  std::string TagRef() const { return tag.empty() ? "" : Name() + ":" + tag; }
  // name[:tag][@digest]: the canonical form, parses back to the same Reference.
  std::string String() const;
  // What a registry is asked for: the digest when pinned, else the tag.
  const std::string& ManifestRef() const { return digest.empty() ? tag : digest; }
};

// InvalidArgument naming the offending part when `text` is not a reference.
absl::StatusOr<Reference> ParseReference(std::string_view text);

// The registry host to connect to: docker.io is served by registry-1.docker.io.
std::string RegistryEndpoint(const std::string& registry);

// True for localhost, 127.0.0.0/8 and ::1, with or without a port: registries there are
// spoken to over plain HTTP unless configured otherwise.
bool IsLoopbackRegistry(const std::string& registry);

}  // namespace rauha::image
