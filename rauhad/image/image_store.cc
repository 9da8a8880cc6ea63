#include "rauhad/image/image_store.h"

#include <cstdio>
#include <filesystem>
#include <set>

#include "nlohmann/json.hpp"
#include "rauha-common/errors.h"
#include "rauha-common/remove_tree.h"
#include "rauha-common/strcat.h"
#include "rauhad/image/reference.h"

namespace rauha::image {
namespace {

struct Query {
  std::string digest;  // match manifest or index digest
  std::string tag;     // match a tag
};

absl::StatusOr<Query> ParseQuery(const std::string& reference) {
  if (reference.rfind("sha256:", 0) == 0) {
    RAUHA_RETURN_IF_ERROR(CheckDigest(reference, "image digest"));
    return Query{reference, ""};
  }
  RAUHA_ASSIGN_OR_RETURN(Reference ref, ParseReference(reference));
  if (!ref.digest.empty()) return Query{ref.digest, ""};
  return Query{"", ref.TagRef()};
}

const store::ImageRecord* Match(const std::vector<store::ImageRecord>& images, const Query& q) {
  for (const auto& image : images) {
    if (!q.digest.empty()) {
      if (image.manifest_digest == q.digest || image.index_digest == q.digest) return &image;
      continue;
    }
    for (const auto& tag : image.tags) {
      if (tag == q.tag) return &image;
    }
  }
  return nullptr;
}

}  // namespace

ImageStore::ImageStore(std::string state_dir, store::Store* db)
    : state_dir_(std::move(state_dir)), db_(db), content_(state_dir_ + "/blobs") {}

absl::Status ImageStore::Init() {
  RAUHA_RETURN_IF_ERROR(content_.Init());
  std::error_code ec;
  std::filesystem::create_directories(state_dir_ + "/layers/sha256", ec);
  if (ec) return absl::InternalError(StrCat("mkdir ", state_dir_, "/layers: ", ec.message()));
  return absl::OkStatus();
}

std::string ImageStore::LayerDir(const std::string& digest) const {
  return state_dir_ + "/layers/sha256/" + DigestHex(digest);
}

absl::StatusOr<std::vector<store::ImageRecord>> ImageStore::List() const {
  return db_->ListImages();
}

absl::StatusOr<store::ImageRecord> ImageStore::Find(const std::string& reference) const {
  RAUHA_ASSIGN_OR_RETURN(Query q, ParseQuery(reference));
  RAUHA_ASSIGN_OR_RETURN(auto images, db_->ListImages());
  const store::ImageRecord* image = Match(images, q);
  if (image == nullptr) {
    return absl::NotFoundError(StrCat("image ", reference, " not found (pull or import it first)"));
  }
  return *image;
}

absl::StatusOr<std::vector<LayerBlob>> LayersOf(const store::ImageRecord& image,
                                                const ContentStore& content) {
  auto layers = nlohmann::json::parse(image.layers_json, nullptr, /*allow_exceptions=*/false);
  if (!layers.is_array()) {
    return absl::DataLossError(StrCat("image ", image.manifest_digest, ": corrupt layer list"));
  }
  std::vector<LayerBlob> out;
  for (const auto& l : layers) {
    LayerBlob blob;
    blob.digest = l.value("digest", "");
    blob.media_type = l.value("mediaType", "");
    blob.size = l.value("size", uint64_t{0});
    RAUHA_RETURN_IF_ERROR(CheckDigest(blob.digest, "layer digest"));
    blob.path = content.BlobPath(blob.digest);
    out.push_back(std::move(blob));
  }
  return out;
}

absl::StatusOr<ResolvedImage> ImageStore::Resolve(const std::string& reference) const {
  RAUHA_ASSIGN_OR_RETURN(store::ImageRecord image, Find(reference));
  ResolvedImage out;
  out.reference = reference;
  out.manifest_digest = image.manifest_digest;
  out.config_json = image.config_json;
  RAUHA_ASSIGN_OR_RETURN(out.layers, LayersOf(image, content_));
  for (const auto& layer : out.layers) {
    if (!content_.Has(layer.digest)) {
      return absl::DataLossError(StrCat("image ", reference, ": layer ", layer.digest,
                                        " is missing from ", content_.root(),
                                        "; remove the image and pull it again"));
    }
  }
  return out;
}

std::vector<std::string> ReferencedDigests(const store::ImageRecord& image) {
  std::vector<std::string> out = {image.manifest_digest, image.config_digest};
  auto layers = nlohmann::json::parse(image.layers_json, nullptr, false);
  if (layers.is_array()) {
    for (const auto& l : layers) {
      if (l.is_object()) out.push_back(l.value("digest", ""));
    }
  }
  // Unpacked layers may be keyed by the uncompressed digest (diff_id).
  auto config = nlohmann::json::parse(image.config_json, nullptr, false);
  if (config.is_object() && config.contains("rootfs") && config["rootfs"].is_object()) {
    const auto& ids = config["rootfs"].value("diff_ids", nlohmann::json::array());
    if (ids.is_array()) {
      for (const auto& id : ids) {
        if (id.is_string()) out.push_back(id.get<std::string>());
      }
    }
  }
  std::erase_if(out, [](const std::string& d) { return !IsDigest(d); });
  return out;
}

absl::Status ImageStore::Record(const store::ImageRecord& image,
                                const std::vector<std::string>& tags) {
  std::lock_guard lock(mu_);
  // A tag that moves away from an image may leave it untagged; it stays, reachable by digest,
  // as docker keeps a dangling image.
  return db_->PutImage(image, tags);
}

absl::Status ImageStore::Remove(const std::string& reference) {
  RAUHA_ASSIGN_OR_RETURN(Query q, ParseQuery(reference));
  std::lock_guard lock(mu_);
  RAUHA_ASSIGN_OR_RETURN(auto images, db_->ListImages());
  const store::ImageRecord* image = Match(images, q);
  if (image == nullptr) return absl::NotFoundError(StrCat("image ", reference, " not found"));
  if (!q.tag.empty() && image->tags.size() > 1) return db_->DeleteTag(q.tag);
  RAUHA_RETURN_IF_ERROR(db_->DeleteImage(image->manifest_digest));
  return CollectLocked(ReferencedDigests(*image));
}

absl::Status ImageStore::Collect(const std::vector<std::string>& digests) {
  std::lock_guard lock(mu_);
  return CollectLocked(digests);
}

absl::Status ImageStore::CollectLocked(const std::vector<std::string>& candidates) {
  RAUHA_ASSIGN_OR_RETURN(auto images, db_->ListImages());
  std::set<std::string> in_use;
  for (const auto& image : images) {
    for (auto& d : ReferencedDigests(image)) in_use.insert(std::move(d));
  }
  for (const std::string& digest : candidates) {
    if (in_use.count(digest) != 0) continue;
    if (leases_.count(digest) != 0) {
      collect_when_released_.insert(digest);
      continue;
    }
    collect_when_released_.erase(digest);
    RAUHA_RETURN_IF_ERROR(content_.Remove(digest));
    // Without following an unpacked layer's symlinks: they are the image's, not ours.
    RAUHA_RETURN_IF_ERROR(RemoveTree(LayerDir(digest)));
  }
  return absl::OkStatus();
}

ImageStore::Lease::Lease(ImageStore* store, std::vector<std::string> digests) : store_(store) {
  for (auto& d : digests) Add(d);
}

void ImageStore::Lease::Add(const std::string& digest) {
  std::lock_guard lock(store_->mu_);
  ++store_->leases_[digest];
  digests_.push_back(digest);
}

ImageStore::Lease::~Lease() {
  std::lock_guard lock(store_->mu_);
  std::vector<std::string> released;
  for (const auto& d : digests_) {
    if (--store_->leases_[d] != 0) continue;
    store_->leases_.erase(d);
    if (store_->collect_when_released_.count(d) != 0) released.push_back(d);
  }
  if (released.empty()) return;
  // A destructor cannot return the error: it is logged, and the next Remove of an image
  // sharing these digests (or `rauha image rm`) tries again.
  if (absl::Status st = store_->CollectLocked(released); !st.ok()) {
    std::fprintf(stderr, "rauhad: collecting image content a finished lease held: %s\n",
                 std::string(st.message()).c_str());
  }
}

}  // namespace rauha::image
