// Safe unpacking of one OCI layer (a tar stream, uncompressed, gzip or zstd) into a directory
// of its own, in the form overlayfs reads as a lower layer.
//
// Safety: no entry lands outside the layer directory. Every parent directory is opened with
// openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV) from the layer root, so
// ".." and symlinks (absolute or relative, placed by earlier entries) resolve as they would
// inside the container and never above the layer root; entries are created relative to that
// fd, leaves never followed (O_EXCL | O_NOFOLLOW after removing what was there). ".." in a
// name is refused; a leading "/" or "./" is dropped (tar's habit). Hardlink targets resolve
// the same way, so a link can only share an inode of this layer.
//
// OCI whiteouts become overlayfs whiteouts: ".wh.NAME" a 0/0 character device NAME, and
// ".wh..wh..opq" the xattr trusted.overlay.opaque=y on its directory (so an upper layer's
// deletion hides the lower layers' file in the merged view). A whiteout's directory is opened
// like any parent first; a whiteout never removes a file of its own layer (the OCI rule: it
// only hides lower layers). Other ".wh..wh." names (aufs metadata) are ignored.
//
// Policy (UnpackOptions): device nodes are not created (skipped and counted: a task's /dev is
// built by the shim and the rootfs is mounted nodev); setuid/setgid bits are cleared on files
// and security.capability dropped (tasks run with no_new_privs, so they would be inert
// anyway). trusted.* xattrs from the archive are dropped (trusted.overlay.* would steer
// overlayfs). Ownership, modes, the other xattrs and mtimes are kept (directory mtimes after
// their contents). Needs root (chown, mknod of whiteouts, trusted xattrs).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace rauha::image {

enum class LayerCompression { kNone, kGzip, kZstd };

// The compression an OCI or Docker layer media type states; InvalidArgument for media types
// that are not tar layers (e.g. foreign or encrypted ones).
absl::StatusOr<LayerCompression> CompressionOfMediaType(std::string_view media_type);
std::string_view CompressionName(LayerCompression compression);

struct UnpackOptions {
  bool create_device_nodes = false;  // false: character/block devices skipped
  bool keep_setuid = false;          // false: S_ISUID/S_ISGID cleared, security.capability dropped
  uint64_t max_entries = uint64_t{1} << 20;
  uint64_t max_bytes = uint64_t{64} << 30;  // sum of the regular files' sizes
};

struct UnpackStats {
  uint64_t entries = 0;
  uint64_t bytes = 0;  // regular file data written
  uint64_t whiteouts = 0;
  uint64_t opaque_dirs = 0;
  uint64_t devices_skipped = 0;
  uint64_t setuid_cleared = 0;
};

// Unpacks the layer read from `blob_fd` into the directory `layer_root_fd` (normally empty).
// The bytes must be compressed as `expected` says (FailedPrecondition naming both otherwise).
// Errors name the entry: InvalidArgument for a malformed or escaping archive,
// ResourceExhausted past the limits. On error the directory holds a partial layer: the caller
// unpacks into a temporary directory and discards it (layer_cache.h).
absl::StatusOr<UnpackStats> UnpackLayer(int blob_fd, LayerCompression expected, int layer_root_fd,
                                        const UnpackOptions& options);
// The same from bytes in memory (tests, fuzzing).
absl::StatusOr<UnpackStats> UnpackLayerBytes(std::string_view blob, LayerCompression expected,
                                             int layer_root_fd, const UnpackOptions& options);

}  // namespace rauha::image
