// Records an image straight into a (private, test) rauhad's state dir, as a pull or an import
// would: its blobs in the content store and its record in the database, so tests can run
// tasks and containers on layers they built (tar_builder.h) without a registry.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "rauhad/image/digest.h"
#include "rauhad/image/image_store.h"
#include "rauhad/image/reference.h"
#include "rauhad/store/store.h"

namespace rauha::testing {

// Stores `blob` in the content store; returns its digest.
inline std::string PutLocalBlob(image::ImageStore& images, const std::string& blob) {
  std::string digest = image::Sha256Digest(blob);
  auto writer = images.content().Ingest(digest, blob.size(), false);
  EXPECT_TRUE(writer.ok()) << writer.status();
  if (!writer.ok()) return digest;
  EXPECT_TRUE((*writer)->Write(blob.data(), blob.size()).ok());
  auto committed = (*writer)->Commit();
  EXPECT_TRUE(committed.ok()) << committed.status();
  return digest;
}

// Records an image of `gzip_layers` (bottom first) and `config` under `tag` in the rauhad
// whose state dir is `state_dir`; returns the manifest digest.
inline std::string RecordLocalImage(const std::string& state_dir,
                                    const std::vector<std::string>& gzip_layers,
                                    nlohmann::json config, const std::string& tag) {
  auto db = store::Store::Open(state_dir + "/rauha.db");
  EXPECT_TRUE(db.ok()) << db.status();
  if (!db.ok()) return "";
  image::ImageStore images(state_dir, db->get());
  EXPECT_TRUE(images.Init().ok());
  nlohmann::json layer_list = nlohmann::json::array();
  config["architecture"] = "amd64";
  config["os"] = "linux";
  config["rootfs"] = {{"type", "layers"}, {"diff_ids", nlohmann::json::array()}};
  for (const auto& l : gzip_layers) {
    layer_list.push_back({{"digest", PutLocalBlob(images, l)},
                          {"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"},
                          {"size", l.size()}});
  }
  std::string config_json = config.dump();
  std::string config_digest = PutLocalBlob(images, config_json);
  nlohmann::json manifest = {{"schemaVersion", 2},
                             {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                             {"config",
                              {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                               {"digest", config_digest},
                               {"size", config_json.size()}}},
                             {"layers", layer_list}};
  std::string manifest_json = manifest.dump();
  store::ImageRecord rec;
  rec.manifest_digest = PutLocalBlob(images, manifest_json);
  rec.media_type = "application/vnd.oci.image.manifest.v1+json";
  rec.config_digest = config_digest;
  rec.config_json = config_json;
  rec.layers_json = layer_list.dump();
  rec.created_at = "2026-01-01T00:00:00Z";
  auto ref = image::ParseReference(tag);
  EXPECT_TRUE(ref.ok()) << ref.status();
  if (!ref.ok()) return "";
  EXPECT_TRUE(images.Record(rec, {ref->TagRef()}).ok());
  return rec.manifest_digest;
}

}  // namespace rauha::testing
