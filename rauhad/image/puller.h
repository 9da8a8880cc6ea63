// `rauha image pull`: resolves a reference on its registry to this platform's manifest,
// verifies every manifest against its digest (the pin, the index entry, or the registry's
// Docker-Content-Digest), downloads config and layers in parallel straight into the content
// store (each hashed as it streams), and records the image. A blob already being downloaded by
// another pull is waited for, not fetched twice; an interrupted blob resumes from its partial
// bytes, within a pull (a few retries) and in the next one.
#pragma once

#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "rauhad/image/image_store.h"
#include "rauhad/image/manifest.h"
#include "rauhad/image/registry_client.h"

namespace rauha::image {

struct PullEvent {
  std::string status;  // "resolved", "downloading", "exists", "verified", "done"
  std::string layer;   // digest the event is about, "" for the image
  uint64_t current = 0;
  uint64_t total = 0;
};
// Called from download threads, one call at a time.
using PullProgressFn = std::function<void(const PullEvent&)>;

class Puller {
 public:
  Puller(ImageStore* images, RegistryOptions options)
      : images_(images), options_(std::move(options)) {}

  // The stored image. InvalidArgument for a bad reference, NotFound for an unknown repository,
  // tag or digest, DataLoss when anything fails its digest (nothing of it is kept), Unavailable
  // when the registry cannot be reached (partial downloads are kept for the next pull),
  // Cancelled when `cancelled` says so.
  absl::StatusOr<store::ImageRecord> Pull(const std::string& reference,
                                          const PullProgressFn& progress,
                                          const std::function<bool()>& cancelled);

 private:
  // Downloads one blob into the content store unless it is there; shares a download in flight.
  absl::Status FetchBlob(RegistryClient& client, const Descriptor& blob,
                         const PullProgressFn& progress, const std::function<bool()>& cancelled);
  absl::Status Download(RegistryClient& client, const Descriptor& blob,
                        const PullProgressFn& progress, const std::function<bool()>& cancelled);

  ImageStore* images_;
  RegistryOptions options_;
  std::mutex mu_;
  std::map<std::string, std::shared_future<absl::Status>> in_flight_;
};

// The manifest digest a registry response proves: the digest of its bytes, refused (DataLoss)
// when it differs from `expected` (a pin or index entry) or from the Docker-Content-Digest the
// registry sent.
absl::StatusOr<std::string> VerifyManifest(const FetchedManifest& m, const std::string& expected,
                                           const std::string& what);

}  // namespace rauha::image
