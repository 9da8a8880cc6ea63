// OCI / Docker manifests: indexes and manifest lists (resolved to one platform), Docker
// schema 2 and OCI image manifests. Parsing checks every descriptor (digest, size, a layer
// type we can unpack) before anything is fetched by it. Pure, unit-tested.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace rauha::image {

inline constexpr char kOciIndex[] = "application/vnd.oci.image.index.v1+json";
inline constexpr char kOciManifest[] = "application/vnd.oci.image.manifest.v1+json";
inline constexpr char kOciConfig[] = "application/vnd.oci.image.config.v1+json";
inline constexpr char kDockerList[] = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr char kDockerManifest[] = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr char kDockerConfig[] = "application/vnd.docker.container.image.v1+json";
inline constexpr char kOciLayerTar[] = "application/vnd.oci.image.layer.v1.tar";
inline constexpr char kOciLayerGzip[] = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr char kOciLayerZstd[] = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr char kDockerLayerGzip[] = "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr char kDockerLayerTar[] = "application/vnd.docker.image.rootfs.diff.tar";

// Manifests are small; anything larger is refused before it is read whole.
inline constexpr uint64_t kMaxManifestBytes = 4 << 20;
inline constexpr uint64_t kMaxConfigBytes = 16 << 20;

// The Accept header value for manifest requests: every type we read.
std::string ManifestAccept();

struct Platform {
  std::string os;            // "linux"
  std::string architecture;  // "amd64", "arm64", "arm", ...
  std::string variant;       // "v7", "v8" or ""
  std::string String() const;
};

// The platform rauhad runs on, in OCI's names.
Platform HostPlatform();

struct Descriptor {
  std::string media_type;
  std::string digest;
  uint64_t size = 0;
  Platform platform;  // index entries only
  std::map<std::string, std::string> annotations;
};

struct Manifest {
  bool is_index = false;
  std::string media_type;
  std::vector<Descriptor> manifests;  // index
  Descriptor config;                  // image manifest
  std::vector<Descriptor> layers;     // image manifest, bottom first
};

// `content_type` is the HTTP Content-Type (may be empty; the body's mediaType wins).
// InvalidArgument for malformed JSON or descriptors; FailedPrecondition for what is well-formed
// but not supported (schema 1, a layer type we cannot unpack, foreign layers).
absl::StatusOr<Manifest> ParseManifest(std::string_view body, std::string_view content_type);

// The entry of an index for `want`: os and architecture equal, and the variant equal when the
// entry names one (arm64 entries without a variant are v8). NotFound lists what is offered.
absl::StatusOr<Descriptor> SelectPlatform(const Manifest& index, const Platform& want);

}  // namespace rauha::image
