// `rauha image import`: an OCI image layout or a `docker save` archive (tar, optionally gzip
// or zstd compressed), read as a stream with libarchive. Every file is streamed into the
// content store and verified: blobs/sha256/<hex> against its name, a docker save's config
// against its <hex>.json name and its layer tars against the config's diff_ids. Nothing of a
// refused archive is kept.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rauhad/image/image_store.h"

namespace rauha::image {

// Next chunk of the archive into *chunk; false at the end.
using ArchiveSource = std::function<bool(std::string* chunk)>;

// The images the archive holds, recorded. `tag` (optional) names the image of an archive that
// holds exactly one; names inside the archive are used otherwise.
absl::StatusOr<std::vector<store::ImageRecord>> ImportArchive(ImageStore* images,
                                                              const ArchiveSource& source,
                                                              const std::string& tag);

}  // namespace rauha::image
