// The images rauhad holds: records in SQLite (tags, manifest digest, config, layers, size,
// created) over the content store's verified blobs. Resolve() is what a sandbox or container
// needs to build a rootfs from an image.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rauhad/image/content_store.h"
#include "rauhad/store/store.h"

namespace rauha::image {

struct LayerBlob {
  std::string digest;  // "sha256:<hex>" of the compressed blob
  std::string media_type;
  uint64_t size = 0;
  std::string path;  // the blob file in the content store
};

struct ResolvedImage {
  std::string reference;  // as asked
  std::string manifest_digest;
  std::string config_json;
  std::vector<LayerBlob> layers;  // bottom first
};

class ImageStore {
 public:
  // Blobs in <state-dir>/blobs, unpacked layers in <state-dir>/layers/sha256/<hex>.
  ImageStore(std::string state_dir, store::Store* db);
  absl::Status Init();

  const ContentStore& content() const { return content_; }
  // Where the unpacked tree of the layer with this digest lives (the unpacker owns it).
  std::string LayerDir(const std::string& digest) const;

  // The image a reference names: a tag ("busybox", "127.0.0.1:5000/x:1"), a pinned reference
  // (repo@sha256:…, matching the manifest or the index it was chosen from), or a bare
  // "sha256:<hex>". InvalidArgument for a malformed reference, NotFound when not held.
  absl::StatusOr<ResolvedImage> Resolve(const std::string& reference) const;
  absl::StatusOr<store::ImageRecord> Find(const std::string& reference) const;
  absl::StatusOr<std::vector<store::ImageRecord>> List() const;

  // Records an image whose blobs are all in the content store, and points `tags` at it.
  absl::Status Record(const store::ImageRecord& image, const std::vector<std::string>& tags);

  // A tag reference untags; the image goes when its last tag does. A digest (pinned reference
  // or sha256:…) removes the image and all its tags. Then every blob and unpacked layer of the
  // removed image that no other image uses (and no lease holds) is deleted.
  absl::Status Remove(const std::string& reference);

  // Deletes those of `digests` that no image or lease references (what a failed pull or
  // import wrote).
  absl::Status Collect(const std::vector<std::string>& digests);

  // Blobs a pull or import is writing, or layers a running rootfs uses: never collected while
  // a lease holds them. What a Remove or Collect skipped only because a lease held it is
  // collected when the last lease on it ends (if no image references it by then), so an image
  // removed while a task runs on it leaves nothing once the task is done.
  class Lease {
   public:
    Lease(ImageStore* store, std::vector<std::string> digests);
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    void Add(const std::string& digest);

   private:
    ImageStore* store_;
    std::vector<std::string> digests_;
  };

 private:
  // Deletes the blobs and layer dirs among `candidates` that no image or lease references.
  // Called with mu_ held.
  absl::Status CollectLocked(const std::vector<std::string>& candidates);

  std::string state_dir_;
  store::Store* db_;
  ContentStore content_;
  std::mutex mu_;  // records and collection; leases
  std::map<std::string, int> leases_;
  std::set<std::string> collect_when_released_;  // skipped by CollectLocked for a lease
};

// The digests an image record references: manifest, config, layers and the config's diff_ids.
std::vector<std::string> ReferencedDigests(const store::ImageRecord& image);
// LayerBlob list from a record's layers_json (paths filled from `content`).
absl::StatusOr<std::vector<LayerBlob>> LayersOf(const store::ImageRecord& image,
                                                const ContentStore& content);

}  // namespace rauha::image
