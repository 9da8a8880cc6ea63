#include "rauhad/image/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/open_in_root.h"
#include "rauha-common/strcat.h"

namespace rauha::image {
namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kWhiteoutMetaPrefix = ".wh..wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";
constexpr size_t kMaxNameBytes = 4096;

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveDeleter>;

// An entry's name as components below the layer root: "./a//b/" and "/a/b" are "a", "b";
// ".." is refused (an archive that climbs is hostile, and a clear error beats clamping).
absl::StatusOr<std::vector<std::string>> SplitName(std::string_view name, std::string_view what) {
  if (name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(StrCat(what, " is longer than ", kMaxNameBytes, " bytes"));
  }
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= name.size()) {
    size_t end = name.find('/', pos);
    if (end == std::string_view::npos) end = name.size();
    std::string_view part = name.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      return absl::InvalidArgumentError(
          StrCat(what, " \"", name, "\" contains \"..\": a layer cannot name paths above it"));
    }
    parts.emplace_back(part);
  }
  return parts;
}

std::string Join(const std::vector<std::string>& parts, size_t count) {
  std::string out;
  for (size_t i = 0; i < count; ++i) {
    if (i) out += '/';
    out += parts[i];
  }
  return out;
}

bool IsWhiteoutDevice(const struct stat& st) {
  return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

class Unpacker {
 public:
  Unpacker(archive* a, int root_fd, const UnpackOptions& options)
      : a_(a), root_(root_fd), options_(options) {}

  absl::StatusOr<UnpackStats> Run() {
    while (true) {
      archive_entry* entry = nullptr;
      int r = archive_read_next_header(a_, &entry);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) {
        return absl::InvalidArgumentError(StrCat("reading the layer's tar stream after ",
                                                 stats_.entries, " entries: ", ArchiveError()));
      }
      if (++stats_.entries > options_.max_entries) {
        return absl::ResourceExhaustedError(
            StrCat("the layer has more than ", options_.max_entries, " entries"));
      }
      const char* raw = archive_entry_pathname(entry);
      std::string name = raw ? raw : "";
      if (absl::Status s = Entry(entry, name); !s.ok()) {
        return Annotate(s, StrCat("entry \"", name, "\""));
      }
    }
    RAUHA_RETURN_IF_ERROR(ApplyDirectoryTimes());
    return stats_;
  }

 private:
  std::string ArchiveError() const {
    const char* e = archive_error_string(a_);
    return e ? e : "unknown libarchive error";
  }

  absl::Status Errno(std::string_view what) const { return ErrnoStatus(errno, what); }

  // The directory `parts[0..count)` below the root, as an O_PATH fd, created (0755) where
  // missing. Resolution is the kernel's, in root: a symlink placed by an earlier entry is
  // followed as the container would follow it, and cannot leave the layer.
  absl::StatusOr<int> Dir(const std::vector<std::string>& parts, size_t count) {
    std::string rel = Join(parts, count);
    if (parent_fd_ && parent_valid_ && rel == parent_rel_) return parent_fd_.get();
    parent_fd_.reset(OpenInRoot(root_, rel.c_str(), O_PATH | O_DIRECTORY));
    if (!parent_fd_ && errno == ENOENT) {
      // Walk down, creating what is missing; each step resolves from the root again.
      UniqueFd cur(OpenInRoot(root_, ".", O_PATH | O_DIRECTORY));
      if (!cur) return Errno("open the layer root");
      for (size_t i = 0; i < count; ++i) {
        std::string prefix = Join(parts, i + 1);
        UniqueFd next(OpenInRoot(root_, prefix.c_str(), O_PATH | O_DIRECTORY));
        if (!next && errno == ENOENT) {
          if (::mkdirat(cur.get(), parts[i].c_str(), 0755) < 0) {
            return Errno(StrCat("create parent directory ", prefix,
                                errno == EEXIST ? " (a dangling symlink is in the way)" : ""));
          }
          // 0755 whatever rauhad's umask: in the merged view the topmost layer's directory
          // decides, and layers often omit the entries of directories they only add to.
          if (::fchmodat(cur.get(), parts[i].c_str(), 0755, 0) < 0) {
            return Errno(StrCat("chmod parent directory ", prefix));
          }
          next.reset(OpenInRoot(root_, prefix.c_str(), O_PATH | O_DIRECTORY));
        }
        if (!next) return Errno(StrCat("open parent directory ", prefix, " inside the layer"));
        cur = std::move(next);
      }
      parent_fd_ = std::move(cur);
    }
    if (!parent_fd_) return Errno(StrCat("open parent directory ", rel, " inside the layer"));
    parent_rel_ = rel;
    parent_valid_ = true;
    return parent_fd_.get();
  }

  // Makes room for a new leaf: whatever this layer already has there goes (the later entry
  // wins, as in tar), except a directory that is to stay a directory.
  absl::Status ClearLeaf(int dir, const std::string& leaf, bool keep_directory, bool* kept) {
    *kept = false;
    struct stat st;
    if (::fstatat(dir, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno == ENOENT) return absl::OkStatus();
      return Errno(StrCat("stat ", leaf));
    }
    if (S_ISDIR(st.st_mode) && keep_directory) {
      *kept = true;
      return absl::OkStatus();
    }
    if (::unlinkat(dir, leaf.c_str(), S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) < 0) {
      return Errno(StrCat("replace ", leaf));
    }
    // The cached parent may have been (below) what was removed.
    parent_valid_ = false;
    return absl::OkStatus();
  }

  absl::Status Entry(archive_entry* entry, const std::string& name) {
    RAUHA_ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitName(name, "name"));
    mode_t type = archive_entry_filetype(entry);
    const char* hardlink = archive_entry_hardlink(entry);
    if (parts.empty()) {
      // "./": the layer root itself; only its metadata can be set.
      if (type != AE_IFDIR || hardlink) {
        return absl::InvalidArgumentError("names the layer root but is not a directory");
      }
      UniqueFd fd(OpenInRoot(root_, ".", O_RDONLY | O_DIRECTORY));
      if (!fd) return Errno("open the layer root");
      RAUHA_RETURN_IF_ERROR(Metadata(fd.get(), entry, /*is_file=*/false));
      dir_times_.push_back({"", Times(entry)});
      return absl::OkStatus();
    }
    std::string leaf = parts.back();
    if (leaf.starts_with(kWhiteoutPrefix)) return Whiteout(parts);
    RAUHA_ASSIGN_OR_RETURN(int dir, Dir(parts, parts.size() - 1));
    if (hardlink) return Hardlink(dir, leaf, hardlink);
    bool kept = false;
    switch (type) {
      case AE_IFDIR: {
        RAUHA_RETURN_IF_ERROR(ClearLeaf(dir, leaf, true, &kept));
        if (!kept && ::mkdirat(dir, leaf.c_str(), 0700) < 0) return Errno("mkdir");
        UniqueFd fd(::openat(dir, leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!fd) return Errno("open the new directory");
        RAUHA_RETURN_IF_ERROR(Metadata(fd.get(), entry, false));
        dir_times_.push_back({Join(parts, parts.size()), Times(entry)});
        return absl::OkStatus();
      }
      case AE_IFREG:
        return RegularFile(dir, leaf, entry);
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(entry);
        if (target == nullptr || *target == '\0') {
          return absl::InvalidArgumentError("symlink without a target");
        }
        if (std::strlen(target) > kMaxNameBytes) {
          return absl::InvalidArgumentError("symlink target is too long");
        }
        RAUHA_RETURN_IF_ERROR(ClearLeaf(dir, leaf, false, &kept));
        // The target is stored as written: every later resolution here is in root, and
        // inside the container it resolves in the container's root.
        if (::symlinkat(target, dir, leaf.c_str()) < 0) return Errno("symlink");
        parent_valid_ = false;  // later names may now resolve through it
        if (::fchownat(dir, leaf.c_str(), archive_entry_uid(entry), archive_entry_gid(entry),
                       AT_SYMLINK_NOFOLLOW) < 0) {
          return Errno("chown symlink");
        }
        TimesPair t = Times(entry);
        if (::utimensat(dir, leaf.c_str(), t.ts, AT_SYMLINK_NOFOLLOW) < 0) {
          return Errno("set symlink times");
        }
        return absl::OkStatus();
      }
      case AE_IFCHR:
      case AE_IFBLK:
        if (!options_.create_device_nodes) {
          ++stats_.devices_skipped;
          return absl::OkStatus();
        }
        [[fallthrough]];
      case AE_IFIFO: {
        RAUHA_RETURN_IF_ERROR(ClearLeaf(dir, leaf, false, &kept));
        dev_t dev = makedev(archive_entry_rdevmajor(entry), archive_entry_rdevminor(entry));
        if (::mknodat(dir, leaf.c_str(), type | 0600, type == AE_IFIFO ? 0 : dev) < 0) {
          return Errno("mknod");
        }
        // O_PATH: a fifo opened for reading would block; fchown/fchmod through /proc are
        // not available for O_PATH fds, so use the *at calls on the leaf just created.
        if (::fchownat(dir, leaf.c_str(), archive_entry_uid(entry), archive_entry_gid(entry),
                       AT_SYMLINK_NOFOLLOW) < 0) {
          return Errno("chown");
        }
        if (::fchmodat(dir, leaf.c_str(), Mode(entry, false), 0) < 0) return Errno("chmod");
        TimesPair t = Times(entry);
        if (::utimensat(dir, leaf.c_str(), t.ts, AT_SYMLINK_NOFOLLOW) < 0) {
          return Errno("set times");
        }
        return absl::OkStatus();
      }
      default:
        return absl::InvalidArgumentError(StrCat("unsupported entry type ", type >> 12));
    }
  }

  absl::Status Whiteout(const std::vector<std::string>& parts) {
    const std::string& leaf = parts.back();
    // The whiteout's directory is opened exactly like any entry's parent: in root.
    RAUHA_ASSIGN_OR_RETURN(int dir, Dir(parts, parts.size() - 1));
    if (leaf == kOpaqueMarker) {
      UniqueFd fd(::openat(dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!fd) return Errno("open the opaque directory");
      if (::fsetxattr(fd.get(), "trusted.overlay.opaque", "y", 1, 0) < 0) {
        return Errno("set trusted.overlay.opaque");
      }
      ++stats_.opaque_dirs;
      return absl::OkStatus();
    }
    if (leaf.starts_with(kWhiteoutMetaPrefix)) return absl::OkStatus();  // aufs metadata
    std::string hidden = leaf.substr(kWhiteoutPrefix.size());
    if (hidden.empty() || hidden == "." || hidden == "..") {
      return absl::InvalidArgumentError(StrCat("whiteout \"", leaf, "\" names no entry"));
    }
    struct stat st;
    if (::fstatat(dir, hidden.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      // The OCI rule: a whiteout hides lower layers only; this layer's own entry stays.
      if (!IsWhiteoutDevice(st)) return absl::OkStatus();
    } else if (errno != ENOENT) {
      return Errno(StrCat("stat ", hidden));
    } else if (::mknodat(dir, hidden.c_str(), S_IFCHR | 0, makedev(0, 0)) < 0) {
      return Errno(StrCat("create the overlay whiteout for ", hidden));
    }
    ++stats_.whiteouts;
    return absl::OkStatus();
  }

  absl::Status Hardlink(int dir, const std::string& leaf, const char* target) {
    RAUHA_ASSIGN_OR_RETURN(std::vector<std::string> tparts, SplitName(target, "hardlink target"));
    std::string rel = Join(tparts, tparts.size());
    if (tparts.empty()) return absl::InvalidArgumentError("hardlink to the layer root");
    // O_NOFOLLOW: a link to a symlink entry links the symlink, as tar does; the target's
    // parents resolve in root, so only an inode of this layer can be linked.
    UniqueFd src(OpenInRoot(root_, rel.c_str(), O_PATH | O_NOFOLLOW));
    if (!src) return Errno(StrCat("open hardlink target ", rel));
    struct stat st;
    if (::fstat(src.get(), &st) < 0) return Errno(StrCat("stat hardlink target ", rel));
    if (S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(StrCat("hardlink target ", rel, " is a directory"));
    }
    bool kept = false;
    RAUHA_RETURN_IF_ERROR(ClearLeaf(dir, leaf, false, &kept));
    if (::linkat(src.get(), "", dir, leaf.c_str(), AT_EMPTY_PATH) < 0) {
      return Errno(StrCat("hardlink to ", rel));
    }
    return absl::OkStatus();
  }

  absl::Status RegularFile(int dir, const std::string& leaf, archive_entry* entry) {
    la_int64_t size = archive_entry_size(entry);
    if (size < 0) return absl::InvalidArgumentError("negative file size");
    if (static_cast<uint64_t>(size) > options_.max_bytes - stats_.bytes) {
      return absl::ResourceExhaustedError(
          StrCat("the layer's files exceed ", options_.max_bytes, " bytes"));
    }
    bool kept = false;
    RAUHA_RETURN_IF_ERROR(ClearLeaf(dir, leaf, false, &kept));
    UniqueFd fd(
        ::openat(dir, leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) return Errno("create");
    const void* buf = nullptr;
    size_t len = 0;
    la_int64_t offset = 0;
    while (true) {
      int r = archive_read_data_block(a_, &buf, &len, &offset);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN)
        return absl::InvalidArgumentError(StrCat("read data: ", ArchiveError()));
      if (offset < 0 || static_cast<uint64_t>(offset) + len > static_cast<uint64_t>(size)) {
        return absl::InvalidArgumentError("data beyond the entry's size");
      }
      // pwrite at the block's offset: holes of sparse entries stay holes.
      const char* p = static_cast<const char*>(buf);
      while (len > 0) {
        ssize_t n = ::pwrite(fd.get(), p, len, offset);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return Errno("write");
        p += n;
        offset += n;
        len -= static_cast<size_t>(n);
        stats_.bytes += static_cast<uint64_t>(n);
      }
    }
    if (::ftruncate(fd.get(), size) < 0) return Errno("set the file size");
    RAUHA_RETURN_IF_ERROR(Metadata(fd.get(), entry, true));
    TimesPair t = Times(entry);
    if (::futimens(fd.get(), t.ts) < 0) return Errno("set times");
    return absl::OkStatus();
  }

  mode_t Mode(archive_entry* entry, bool is_file) {
    mode_t mode = archive_entry_perm(entry) & 07777;
    if (is_file && !options_.keep_setuid && (mode & (S_ISUID | S_ISGID))) {
      mode &= ~static_cast<mode_t>(S_ISUID | S_ISGID);
      ++stats_.setuid_cleared;
    }
    return mode;
  }

  // Owner, then mode (chown clears setuid bits), then xattrs of an open file or directory.
  absl::Status Metadata(int fd, archive_entry* entry, bool is_file) {
    if (::fchown(fd, archive_entry_uid(entry), archive_entry_gid(entry)) < 0) {
      return Errno("chown");
    }
    if (::fchmod(fd, Mode(entry, is_file)) < 0) return Errno("chmod");
    archive_entry_xattr_reset(entry);
    const char* xname = nullptr;
    const void* value = nullptr;
    size_t size = 0;
    while (archive_entry_xattr_next(entry, &xname, &value, &size) == ARCHIVE_OK) {
      std::string_view n = xname ? xname : "";
      // trusted.overlay.* would steer overlayfs (redirects, opaque, metacopy); the rest of
      // trusted.* means nothing to a container. File capabilities follow the setuid policy.
      if (n.empty() || n.starts_with("trusted.")) continue;
      if (n == "security.capability" && !options_.keep_setuid) continue;
      if (::fsetxattr(fd, xname, value, size, 0) < 0 && errno != ENOTSUP) {
        return Errno(StrCat("set xattr ", n));
      }
    }
    return absl::OkStatus();
  }

  struct TimesPair {
    timespec ts[2];  // atime (mtime when the archive has none), mtime
  };
  static TimesPair Times(archive_entry* entry) {
    TimesPair t{};
    bool atime = archive_entry_atime_is_set(entry);
    t.ts[0].tv_sec = atime ? archive_entry_atime(entry) : archive_entry_mtime(entry);
    t.ts[0].tv_nsec = atime ? archive_entry_atime_nsec(entry) : archive_entry_mtime_nsec(entry);
    t.ts[1].tv_sec = archive_entry_mtime(entry);
    t.ts[1].tv_nsec = archive_entry_mtime_nsec(entry);
    for (auto& ts : t.ts) {
      if (ts.tv_nsec < 0 || ts.tv_nsec > 999999999) ts.tv_nsec = 0;
    }
    return t;
  }

  // Creating entries changes their directory's mtime: directories get theirs last,
  // deepest first.
  absl::Status ApplyDirectoryTimes() {
    for (auto it = dir_times_.rbegin(); it != dir_times_.rend(); ++it) {
      UniqueFd fd(OpenInRoot(root_, it->first.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
      if (!fd) continue;  // replaced by a later entry
      if (::futimens(fd.get(), it->second.ts) < 0) {
        return Errno(StrCat("set times of directory ", it->first));
      }
    }
    return absl::OkStatus();
  }

  archive* a_;
  int root_;
  UnpackOptions options_;
  UnpackStats stats_;
  std::string parent_rel_;
  UniqueFd parent_fd_;  // the last parent directory, reused while valid
  bool parent_valid_ = false;
  std::vector<std::pair<std::string, TimesPair>> dir_times_;
};

absl::StatusOr<ArchivePtr> NewReader() {
  ArchivePtr a(archive_read_new());
  if (!a) return absl::ResourceExhaustedError("libarchive: out of memory");
  // Only tar, only these filters, only in-process (ARCHIVE_WARN would mean an external
  // program): nothing is shelled out to.
  if (archive_read_support_format_tar(a.get()) != ARCHIVE_OK ||
      archive_read_support_filter_gzip(a.get()) != ARCHIVE_OK ||
      archive_read_support_filter_zstd(a.get()) != ARCHIVE_OK) {
    return absl::FailedPreconditionError(
        StrCat("libarchive lacks in-process tar, gzip or zstd support: ",
               archive_error_string(a.get()) ? archive_error_string(a.get()) : "?"));
  }
  return a;
}

absl::StatusOr<UnpackStats> Unpack(archive* a, LayerCompression expected, int root_fd,
                                   const UnpackOptions& options) {
  int code = archive_filter_code(a, 0);
  LayerCompression found = code == ARCHIVE_FILTER_GZIP   ? LayerCompression::kGzip
                           : code == ARCHIVE_FILTER_ZSTD ? LayerCompression::kZstd
                                                         : LayerCompression::kNone;
  if (code != ARCHIVE_FILTER_NONE && code != ARCHIVE_FILTER_GZIP && code != ARCHIVE_FILTER_ZSTD) {
    return absl::InvalidArgumentError(StrCat("the layer is compressed with ",
                                             archive_filter_name(a, 0),
                                             ", which is not a layer compression"));
  }
  if (found != expected) {
    return absl::FailedPreconditionError(StrCat("the layer's media type says ",
                                                CompressionName(expected), " but its bytes are ",
                                                CompressionName(found)));
  }
  return Unpacker(a, root_fd, options).Run();
}

absl::Status OpenError(archive* a) {
  const char* e = archive_error_string(a);
  return absl::InvalidArgumentError(
      StrCat("the layer is not a tar stream (uncompressed, gzip or zstd): ", e ? e : "?"));
}

}  // namespace

absl::StatusOr<LayerCompression> CompressionOfMediaType(std::string_view media_type) {
  struct Known {
    std::string_view type;
    LayerCompression compression;
  };
  static constexpr Known kKnown[] = {
      {"application/vnd.oci.image.layer.v1.tar", LayerCompression::kNone},
      {"application/vnd.oci.image.layer.v1.tar+gzip", LayerCompression::kGzip},
      {"application/vnd.oci.image.layer.v1.tar+zstd", LayerCompression::kZstd},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar", LayerCompression::kNone},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", LayerCompression::kGzip},
      {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", LayerCompression::kZstd},
      {"application/vnd.docker.image.rootfs.diff.tar", LayerCompression::kNone},
      {"application/vnd.docker.image.rootfs.diff.tar.gzip", LayerCompression::kGzip},
      {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", LayerCompression::kGzip},
      {"application/vnd.docker.image.rootfs.diff.tar.zstd", LayerCompression::kZstd},
  };
  for (const auto& k : kKnown) {
    if (k.type == media_type) return k.compression;
  }
  return absl::InvalidArgumentError(
      StrCat("layer media type \"", media_type, "\" is not a tar layer this runtime unpacks"));
}

std::string_view CompressionName(LayerCompression compression) {
  switch (compression) {
    case LayerCompression::kNone:
      return "uncompressed";
    case LayerCompression::kGzip:
      return "gzip";
    case LayerCompression::kZstd:
      return "zstd";
  }
  return "?";
}

absl::StatusOr<UnpackStats> UnpackLayer(int blob_fd, LayerCompression expected, int layer_root_fd,
                                        const UnpackOptions& options) {
  RAUHA_ASSIGN_OR_RETURN(ArchivePtr a, NewReader());
  if (archive_read_open_fd(a.get(), blob_fd, 1 << 17) != ARCHIVE_OK) return OpenError(a.get());
  return Unpack(a.get(), expected, layer_root_fd, options);
}

absl::StatusOr<UnpackStats> UnpackLayerBytes(std::string_view blob, LayerCompression expected,
                                             int layer_root_fd, const UnpackOptions& options) {
  RAUHA_ASSIGN_OR_RETURN(ArchivePtr a, NewReader());
  if (archive_read_open_memory(a.get(), blob.data(), blob.size()) != ARCHIVE_OK) {
    return OpenError(a.get());
  }
  return Unpack(a.get(), expected, layer_root_fd, options);
}

}  // namespace rauha::image
