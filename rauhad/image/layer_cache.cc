#include "rauhad/image/layer_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <thread>

#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/ids.h"
#include "rauha-common/remove_tree.h"
#include "rauha-common/strcat.h"

namespace rauha::image {
namespace {

absl::Status MkdirP(const std::string& path) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string sub = path.substr(0, pos);
    if (::mkdir(sub.c_str(), 0700) < 0 && errno != EEXIST) {
      return ErrnoStatus(errno, StrCat("mkdir ", sub));
    }
  }
  return absl::OkStatus();
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

LayerCache::LayerCache(std::string state_dir, UnpackOptions options)
    : root_(StrCat(state_dir, "/layers")), options_(options) {}

absl::Status LayerCache::Init() {
  RAUHA_RETURN_IF_ERROR(MkdirP(StrCat(root_, "/sha256")));
  std::string tmp = StrCat(root_, "/tmp");
  RAUHA_RETURN_IF_ERROR(RemoveTree(tmp));
  return MkdirP(tmp);
}

absl::StatusOr<std::string> LayerCache::PathOf(const std::string& digest) const {
  std::string_view d = digest;
  bool ok = d.starts_with("sha256:") && d.size() == 7 + 64;
  for (size_t i = 7; ok && i < d.size(); ++i) {
    ok = (d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f');
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        StrCat("layer digest \"", digest, "\" is not sha256:<64 lowercase hex digits>"));
  }
  return StrCat(root_, "/sha256/", d.substr(7));
}

absl::StatusOr<std::vector<std::string>> LayerCache::EnsureAll(
    const std::vector<LayerBlob>& layers) {
  std::vector<absl::StatusOr<std::string>> dirs(layers.size(), absl::UnknownError("not unpacked"));
  std::vector<size_t> missing;
  for (size_t i = 0; i < layers.size(); ++i) {
    auto path = PathOf(layers[i].digest);
    if (!path.ok()) return path.status();
    if (IsDirectory(*path)) {
      dirs[i] = *std::move(path);
    } else {
      missing.push_back(i);
    }
  }
  // The cached case (every layer there) starts no thread.
  std::atomic<size_t> next{0};
  auto unpack = [&] {
    for (size_t k; (k = next.fetch_add(1)) < missing.size();) {
      const LayerBlob& l = layers[missing[k]];
      dirs[missing[k]] = Ensure(l.digest, l.media_type, l.path);
    }
  };
  size_t threads =
      std::min<size_t>(missing.size(), std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> helpers;
  for (size_t t = 1; t < threads; ++t) helpers.emplace_back(unpack);
  unpack();
  for (auto& t : helpers) t.join();
  std::vector<std::string> out;
  for (auto& d : dirs) {
    if (!d.ok()) return d.status();
    out.push_back(*std::move(d));
  }
  return out;
}

absl::StatusOr<std::string> LayerCache::Ensure(const std::string& digest,
                                               const std::string& media_type,
                                               const std::string& blob_path) {
  RAUHA_ASSIGN_OR_RETURN(std::string final_path, PathOf(digest));
  if (IsDirectory(final_path)) return final_path;
  RAUHA_ASSIGN_OR_RETURN(LayerCompression compression, CompressionOfMediaType(media_type));

  std::shared_ptr<std::mutex> one;
  {
    std::lock_guard lock(mu_);
    auto& slot = in_flight_[digest];
    if (!slot) slot = std::make_shared<std::mutex>();
    one = slot;
  }
  std::lock_guard unpacking(*one);
  if (IsDirectory(final_path)) return final_path;  // another caller just finished it

  UniqueFd blob(::open(blob_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!blob) return ErrnoStatus(errno, StrCat("open layer blob ", blob_path));
  std::string tmp = StrCat(root_, "/tmp/", digest.substr(7), ".", NewUuid().substr(0, 8));
  if (::mkdir(tmp.c_str(), 0755) < 0) return ErrnoStatus(errno, StrCat("mkdir ", tmp));
  absl::Status status = [&]() -> absl::Status {
    UniqueFd dir(::open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dir) return ErrnoStatus(errno, StrCat("open ", tmp));
    auto stats = UnpackLayer(blob.get(), compression, dir.get(), options_);
    if (!stats.ok()) return stats.status();
    // The data must be on disk before the name says the layer is complete.
    if (::syncfs(dir.get()) < 0) return ErrnoStatus(errno, StrCat("syncfs ", tmp));
    if (::rename(tmp.c_str(), final_path.c_str()) < 0) {
      // Another rauhad-side unpack of the same blob won the race: its layer is as good.
      if ((errno == EEXIST || errno == ENOTEMPTY) && IsDirectory(final_path)) {
        return RemoveTree(tmp);
      }
      return ErrnoStatus(errno, StrCat("rename ", tmp, " to ", final_path));
    }
    return absl::OkStatus();
  }();
  {
    std::lock_guard lock(mu_);
    in_flight_.erase(digest);
  }
  if (!status.ok()) {
    (void)RemoveTree(tmp);
    return Annotate(status, StrCat("unpacking layer ", digest));
  }
  return final_path;
}

}  // namespace rauha::image
