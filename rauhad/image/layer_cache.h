// Unpacked layers, one directory per compressed blob digest, shared read-only by every task
// and container that uses the layer (overlayfs lower directories):
//   <state-dir>/layers/sha256/<hex>      a complete layer (only ever appears whole)
//   <state-dir>/layers/tmp/<hex>.<random> an unpack in progress
// A layer is unpacked into tmp/, synced, then renamed into place, so a crash at any point
// leaves either no layer or a complete one; tmp/ leftovers are removed at start.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rauhad/image/image_store.h"
#include "rauhad/image/unpack.h"

namespace rauha::image {

class LayerCache {
 public:
  explicit LayerCache(std::string state_dir, UnpackOptions options = {});

  // Creates the directories and removes interrupted unpacks.
  absl::Status Init();

  // The directory of the layer whose compressed blob is `digest` ("sha256:<64 hex>"),
  // unpacking `blob_path` (of `media_type`) first when it is not there yet. Concurrent calls
  // for one digest unpack it once. Errors: InvalidArgument for a malformed digest or layer,
  // FailedPrecondition for a media type that disagrees with the bytes.
  absl::StatusOr<std::string> Ensure(const std::string& digest, const std::string& media_type,
                                     const std::string& blob_path);

  // Ensure for each of `layers`, in their order: those not unpacked yet are unpacked in
  // parallel, at most one thread per CPU (decompression and file creation are CPU-bound), so a
  // freshly pulled image of several layers is ready sooner. The first error is returned.
  absl::StatusOr<std::vector<std::string>> EnsureAll(const std::vector<LayerBlob>& layers);

  // Where `digest`'s layer is (or would be) unpacked; InvalidArgument for a malformed digest.
  absl::StatusOr<std::string> PathOf(const std::string& digest) const;

 private:
  std::string root_;  // <state-dir>/layers
  UnpackOptions options_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<std::mutex>> in_flight_;
};

}  // namespace rauha::image
