#include "rauhad/image/archive_export.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <memory>

#include "nlohmann/json.hpp"
#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/strcat.h"
#include "rauhad/image/manifest.h"

namespace rauha::image {
namespace {

struct ArchiveFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

struct SinkState {
  const ArchiveSink* sink;
  bool stopped = false;
};

la_ssize_t WriteCallback(archive*, void* user, const void* buf, size_t n) {
  auto* st = static_cast<SinkState*>(user);
  if (!(*st->sink)(static_cast<const char*>(buf), n)) {
    st->stopped = true;
    return -1;
  }
  return static_cast<la_ssize_t>(n);
}

absl::Status ArchiveError(archive* a, const std::string& what) {
  return absl::InternalError(StrCat("export: ", what, ": ", archive_error_string(a)));
}

absl::Status AddHeader(archive* a, const std::string& name, int64_t size) {
  std::unique_ptr<archive_entry, EntryFree> e(archive_entry_new());
  archive_entry_set_pathname(e.get(), name.c_str());
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_set_perm(e.get(), 0644);
  archive_entry_set_size(e.get(), size);
  archive_entry_set_mtime(e.get(), 0, 0);  // reproducible: same image, same tar
  if (archive_write_header(a, e.get()) != ARCHIVE_OK) return ArchiveError(a, name);
  return absl::OkStatus();
}

absl::Status AddBytes(archive* a, const std::string& name, const std::string& data) {
  RAUHA_RETURN_IF_ERROR(AddHeader(a, name, static_cast<int64_t>(data.size())));
  if (archive_write_data(a, data.data(), data.size()) < 0) return ArchiveError(a, name);
  return absl::OkStatus();
}

absl::Status AddBlob(archive* a, const ContentStore& content, const std::string& digest) {
  std::string path = content.BlobPath(digest);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, StrCat("open ", path));
  off_t size = ::lseek(fd.get(), 0, SEEK_END);
  ::lseek(fd.get(), 0, SEEK_SET);
  std::string name = "blobs/sha256/" + DigestHex(digest);
  RAUHA_RETURN_IF_ERROR(AddHeader(a, name, size));
  std::vector<char> buf(1 << 20);
  while (true) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, StrCat("read ", path));
    }
    if (n == 0) break;
    if (archive_write_data(a, buf.data(), static_cast<size_t>(n)) < 0) return ArchiveError(a, name);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ExportArchive(const ImageStore& images, const std::string& reference,
                           const ArchiveSink& sink) {
  RAUHA_ASSIGN_OR_RETURN(store::ImageRecord image, images.Find(reference));
  RAUHA_ASSIGN_OR_RETURN(auto layers, LayersOf(image, images.content()));
  RAUHA_ASSIGN_OR_RETURN(uint64_t manifest_size, images.content().Size(image.manifest_digest));

  nlohmann::json descriptor = {
      {"mediaType", image.media_type}, {"digest", image.manifest_digest}, {"size", manifest_size}};
  // The name asked for if it is a tag of the image, else its first tag.
  std::string name;
  for (const auto& tag : image.tags) {
    if (name.empty() || tag == reference) name = tag;
  }
  if (!name.empty()) {
    descriptor["annotations"] = {{"org.opencontainers.image.ref.name", name},
                                 {"io.containerd.image.name", name}};
  }
  nlohmann::json index = {{"schemaVersion", 2},
                          {"mediaType", kOciIndex},
                          {"manifests", nlohmann::json::array({descriptor})}};

  std::unique_ptr<archive, ArchiveFree> a(archive_write_new());
  archive_write_set_format_pax_restricted(a.get());
  archive_write_set_bytes_per_block(a.get(), 10240);
  SinkState state{&sink};
  if (archive_write_open(a.get(), &state, nullptr, WriteCallback, nullptr) != ARCHIVE_OK) {
    return ArchiveError(a.get(), "open");
  }
  auto body = [&]() -> absl::Status {
    RAUHA_RETURN_IF_ERROR(AddBytes(a.get(), "oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
    RAUHA_RETURN_IF_ERROR(AddBytes(a.get(), "index.json", index.dump()));
    RAUHA_RETURN_IF_ERROR(AddBlob(a.get(), images.content(), image.manifest_digest));
    RAUHA_RETURN_IF_ERROR(AddBlob(a.get(), images.content(), image.config_digest));
    for (const auto& layer : layers) {
      RAUHA_RETURN_IF_ERROR(AddBlob(a.get(), images.content(), layer.digest));
    }
    if (archive_write_close(a.get()) != ARCHIVE_OK) return ArchiveError(a.get(), "close");
    return absl::OkStatus();
  };
  absl::Status st = body();
  if (state.stopped) return absl::CancelledError("export cancelled: the receiver went away");
  return st;
}

}  // namespace rauha::image
