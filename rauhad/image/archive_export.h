// `rauha image export`: an image as an OCI image layout tar (oci-layout, index.json naming the
// image, blobs/sha256/...), written as a stream with libarchive from the content store's files.
#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "rauhad/image/image_store.h"

namespace rauha::image {

// Receives the tar in chunks; false stops the export (Cancelled).
using ArchiveSink = std::function<bool(const char* data, size_t size)>;

absl::Status ExportArchive(const ImageStore& images, const std::string& reference,
                           const ArchiveSink& sink);

}  // namespace rauha::image
