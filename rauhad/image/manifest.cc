#include "rauhad/image/manifest.h"

#include <sys/utsname.h>

#include "nlohmann/json.hpp"
#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"
#include "rauhad/image/digest.h"

namespace rauha::image {
namespace {

using Json = nlohmann::json;

bool IsSupportedLayer(const std::string& t) {
  return t == kOciLayerTar || t == kOciLayerGzip || t == kOciLayerZstd || t == kDockerLayerGzip ||
         t == kDockerLayerTar;
}

absl::StatusOr<Descriptor> ParseDescriptor(const Json& j, std::string_view what) {
  if (!j.is_object()) return absl::InvalidArgumentError(StrCat(what, " is not an object"));
  Descriptor d;
  if (!j.contains("mediaType") || !j["mediaType"].is_string()) {
    return absl::InvalidArgumentError(StrCat(what, " has no mediaType"));
  }
  d.media_type = j["mediaType"].get<std::string>();
  if (!j.contains("digest") || !j["digest"].is_string()) {
    return absl::InvalidArgumentError(StrCat(what, " has no digest"));
  }
  d.digest = j["digest"].get<std::string>();
  RAUHA_RETURN_IF_ERROR(CheckDigest(d.digest, StrCat(what, " digest")));
  if (!j.contains("size") || !j["size"].is_number_unsigned()) {
    return absl::InvalidArgumentError(StrCat(what, " has no size (a non-negative integer)"));
  }
  d.size = j["size"].get<uint64_t>();
  if (j.contains("platform") && j["platform"].is_object()) {
    const Json& p = j["platform"];
    auto str = [&](const char* key) {
      return p.contains(key) && p[key].is_string() ? p[key].get<std::string>() : std::string();
    };
    d.platform = {str("os"), str("architecture"), str("variant")};
  }
  if (j.contains("annotations") && j["annotations"].is_object()) {
    for (const auto& [k, v] : j["annotations"].items()) {
      if (v.is_string()) d.annotations[k] = v.get<std::string>();
    }
  }
  return d;
}

}  // namespace

std::string ManifestAccept() {
  return StrCat(kOciIndex, ", ", kDockerList, ", ", kOciManifest, ", ", kDockerManifest);
}

std::string Platform::String() const {
  return variant.empty() ? StrCat(os, "/", architecture)
                         : StrCat(os, "/", architecture, "/", variant);
}

Platform HostPlatform() {
#if defined(__x86_64__)
  return {"linux", "amd64", ""};
#elif defined(__aarch64__)
  return {"linux", "arm64", "v8"};
#elif defined(__arm__)
  return {"linux", "arm", "v7"};
#elif defined(__i386__)
  return {"linux", "386", ""};
#elif defined(__riscv) && __riscv_xlen == 64
  return {"linux", "riscv64", ""};
#elif defined(__s390x__)
  return {"linux", "s390x", ""};
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return {"linux", "ppc64le", ""};
#else
  struct utsname u;
  ::uname(&u);
  return {"linux", u.machine, ""};
#endif
}

absl::StatusOr<Manifest> ParseManifest(std::string_view body, std::string_view content_type) {
  if (body.size() > kMaxManifestBytes) {
    return absl::FailedPreconditionError(
        StrCat("manifest of ", body.size(), " bytes is larger than ", kMaxManifestBytes));
  }
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::InvalidArgumentError("manifest is not a JSON object");
  Manifest m;
  if (j.contains("mediaType") && j["mediaType"].is_string()) {
    m.media_type = j["mediaType"].get<std::string>();
  } else if (size_t semi = content_type.find(';'); !content_type.empty()) {
    m.media_type = std::string(content_type.substr(0, semi));
  }
  if (m.media_type.empty() || m.media_type == "application/json") {
    // OCI allows mediaType to be absent: the shape says what it is.
    m.media_type = j.contains("manifests") ? kOciIndex : kOciManifest;
  }
  if (!j.contains("schemaVersion") || j["schemaVersion"] != 2) {
    if (j.contains("schemaVersion") && j["schemaVersion"] == 1) {
      return absl::FailedPreconditionError(
          "Docker schema 1 manifests are not supported (deprecated since 2017); push the image "
          "again with a current client");
    }
    return absl::InvalidArgumentError("manifest schemaVersion is not 2");
  }
  if (m.media_type == kOciIndex || m.media_type == kDockerList) {
    m.is_index = true;
    if (!j.contains("manifests") || !j["manifests"].is_array()) {
      return absl::InvalidArgumentError("index has no manifests array");
    }
    for (size_t i = 0; i < j["manifests"].size(); ++i) {
      RAUHA_ASSIGN_OR_RETURN(Descriptor d,
                             ParseDescriptor(j["manifests"][i], StrCat("index entry ", i)));
      m.manifests.push_back(std::move(d));
    }
    return m;
  }
  if (m.media_type != kOciManifest && m.media_type != kDockerManifest) {
    return absl::FailedPreconditionError(
        StrCat("manifest media type ", m.media_type, " is not an image manifest rauha reads"));
  }
  if (!j.contains("config")) return absl::InvalidArgumentError("image manifest has no config");
  RAUHA_ASSIGN_OR_RETURN(m.config, ParseDescriptor(j["config"], "config"));
  if (m.config.media_type != kOciConfig && m.config.media_type != kDockerConfig) {
    return absl::FailedPreconditionError(
        StrCat("config media type ", m.config.media_type, " is not an image config"));
  }
  if (m.config.size > kMaxConfigBytes) {
    return absl::FailedPreconditionError(
        StrCat("config of ", m.config.size, " bytes is larger than ", kMaxConfigBytes));
  }
  if (!j.contains("layers") || !j["layers"].is_array()) {
    return absl::InvalidArgumentError("image manifest has no layers array");
  }
  for (size_t i = 0; i < j["layers"].size(); ++i) {
    RAUHA_ASSIGN_OR_RETURN(Descriptor d, ParseDescriptor(j["layers"][i], StrCat("layer ", i)));
    if (!IsSupportedLayer(d.media_type)) {
      return absl::FailedPreconditionError(
          StrCat("layer ", i, " (", d.digest, ") has media type ", d.media_type,
                 ", which rauha cannot unpack (tar, tar+gzip, tar+zstd only)"));
    }
    m.layers.push_back(std::move(d));
  }
  return m;
}

absl::StatusOr<Descriptor> SelectPlatform(const Manifest& index, const Platform& want) {
  std::string offered;
  for (const auto& d : index.manifests) {
    const Platform& p = d.platform;
    if (d.media_type != kOciManifest && d.media_type != kDockerManifest) continue;
    if (!p.os.empty() || !p.architecture.empty()) {
      offered += (offered.empty() ? "" : ", ") + p.String();
    }
    if (p.os != want.os || p.architecture != want.architecture) continue;
    std::string variant = p.variant;
    if (variant.empty() && p.architecture == "arm64") variant = "v8";
    if (!variant.empty() && !want.variant.empty() && variant != want.variant) continue;
    if (!variant.empty() && want.variant.empty()) continue;
    return d;
  }
  return absl::NotFoundError(StrCat("the image index has no manifest for ", want.String(),
                                    offered.empty() ? "" : " (it has: " + offered + ")"));
}

}  // namespace rauha::image
