#include "rauhad/image/archive_import.h"

#include <archive.h>
#include <archive_entry.h>

#include <map>
#include <memory>
#include <optional>
#include <set>

#include "nlohmann/json.hpp"
#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"
#include "rauha-common/timeutil.h"
#include "rauhad/image/manifest.h"
#include "rauhad/image/reference.h"

namespace rauha::image {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxEntries = 100000;

struct ArchiveFree {
  void operator()(archive* a) const { archive_read_free(a); }
};

struct SourceState {
  const ArchiveSource* source;
  std::string chunk;
};

la_ssize_t ReadCallback(archive*, void* user, const void** buf) {
  auto* st = static_cast<SourceState*>(user);
  st->chunk.clear();
  while (st->chunk.empty()) {
    if (!(*st->source)(&st->chunk)) return 0;
  }
  *buf = st->chunk.data();
  return static_cast<la_ssize_t>(st->chunk.size());
}

// "./a//b" -> "a/b"; "" for names that climb out ("..") or are absolute after cleaning.
std::string CleanName(std::string name) {
  std::string out;
  size_t i = 0;
  while (i <= name.size()) {
    size_t j = name.find('/', i);
    if (j == std::string::npos) j = name.size();
    std::string part = name.substr(i, j - i);
    if (part == "..") return "";
    if (!part.empty() && part != ".") out += (out.empty() ? "" : "/") + part;
    i = j + 1;
  }
  return out;
}

struct Imported {
  std::string digest;
  uint64_t size = 0;
};

class Importer {
 public:
  explicit Importer(ImageStore* images)
      : images_(images), lease_(std::in_place, images, std::vector<std::string>{}) {}

  absl::Status ReadAll(const ArchiveSource& source);
  absl::StatusOr<std::vector<store::ImageRecord>> Build(const std::string& tag);
  std::vector<std::string> Ingested() const {
    std::vector<std::string> out;
    for (const auto& [name, f] : files_) out.push_back(f.digest);
    return out;
  }
  void ReleaseLease() { lease_.reset(); }

 private:
  const Imported* File(const std::string& name) const;
  absl::StatusOr<std::string> ReadJson(const std::string& name, uint64_t max) const;
  absl::StatusOr<store::ImageRecord> FromOciManifest(const Descriptor& d);
  absl::StatusOr<std::vector<store::ImageRecord>> FromOciLayout(const std::string& tag);
  absl::StatusOr<std::vector<store::ImageRecord>> FromDockerSave(const std::string& tag);
  absl::Status Put(store::ImageRecord& record, const Json& config, std::vector<std::string> tags);

  ImageStore* images_;
  std::optional<ImageStore::Lease> lease_;
  std::map<std::string, Imported> files_;
  std::map<std::string, std::string> links_;  // name -> target name
  std::vector<store::ImageRecord> records_;
};

const Imported* Importer::File(const std::string& name) const {
  std::string n = name;
  for (int hops = 0; hops < 8; ++hops) {
    if (auto it = files_.find(n); it != files_.end()) return &it->second;
    auto link = links_.find(n);
    if (link == links_.end()) return nullptr;
    n = link->second;
  }
  return nullptr;
}

absl::Status Importer::ReadAll(const ArchiveSource& source) {
  std::unique_ptr<archive, ArchiveFree> a(archive_read_new());
  archive_read_support_format_tar(a.get());
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_zstd(a.get());
  SourceState state{&source, {}};
  if (archive_read_open(a.get(), &state, nullptr, ReadCallback, nullptr) != ARCHIVE_OK) {
    return absl::InvalidArgumentError(
        StrCat("import: not a tar archive: ", archive_error_string(a.get())));
  }
  const ContentStore& content = images_->content();
  archive_entry* entry = nullptr;
  size_t count = 0;
  std::vector<char> buf(1 << 20);
  while (true) {
    int rc = archive_read_next_header(a.get(), &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      return absl::InvalidArgumentError(
          StrCat("import: reading the archive: ", archive_error_string(a.get())));
    }
    if (++count > kMaxEntries) {
      return absl::InvalidArgumentError(
          StrCat("import: more than ", kMaxEntries, " entries; not an image archive"));
    }
    std::string name =
        CleanName(archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "");
    if (name.empty()) continue;
    auto type = archive_entry_filetype(entry);
    if (type == AE_IFLNK || archive_entry_hardlink(entry) != nullptr) {
      // docker save links a layer used twice to its first copy.
      const char* target = archive_entry_hardlink(entry) ? archive_entry_hardlink(entry)
                                                         : archive_entry_symlink(entry);
      std::string resolved =
          archive_entry_hardlink(entry) || (target && target[0] == '/')
              ? CleanName(target ? target : "")
              : CleanName(name.substr(0, name.rfind('/') + 1) + (target ? target : ""));
      if (!resolved.empty()) links_[name] = resolved;
      continue;
    }
    if (type != AE_IFREG) continue;
    std::unique_ptr<BlobWriter> writer;
    std::string expected;
    if (name.rfind("blobs/sha256/", 0) == 0) {
      expected = "sha256:" + name.substr(13);
      RAUHA_RETURN_IF_ERROR(CheckDigest(expected, StrCat("import: blob name ", name)));
      lease_->Add(expected);
      if (content.Has(expected)) {
        files_[name] = {expected, *content.Size(expected)};
        continue;  // libarchive skips the unread data
      }
      RAUHA_ASSIGN_OR_RETURN(writer, content.Ingest(expected, 0, /*resume=*/false));
    } else {
      RAUHA_ASSIGN_OR_RETURN(writer, content.IngestUnknown());
    }
    while (true) {
      la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
      if (n < 0) {
        writer->Discard();
        return absl::InvalidArgumentError(
            StrCat("import: reading ", name, ": ", archive_error_string(a.get())));
      }
      if (n == 0) break;
      RAUHA_RETURN_IF_ERROR(writer->Write(buf.data(), static_cast<size_t>(n)));
    }
    uint64_t size = writer->offset();
    auto digest = writer->Commit();
    if (!digest.ok()) return Annotate(digest.status(), StrCat("import: ", name));
    lease_->Add(*digest);
    files_[name] = {*digest, size};
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Importer::ReadJson(const std::string& name, uint64_t max) const {
  const Imported* f = File(name);
  if (f == nullptr) return absl::InvalidArgumentError(StrCat("import: the archive has no ", name));
  return images_->content().ReadSmall(f->digest, max);
}

absl::Status Importer::Put(store::ImageRecord& record, const Json& config,
                           std::vector<std::string> tags) {
  record.created_at = config.contains("created") && config["created"].is_string()
                          ? config["created"].get<std::string>()
                          : NowRfc3339();
  RAUHA_RETURN_IF_ERROR(images_->Record(record, tags));
  record.tags = std::move(tags);
  records_.push_back(record);
  return absl::OkStatus();
}

absl::StatusOr<store::ImageRecord> Importer::FromOciManifest(const Descriptor& d) {
  const ContentStore& content = images_->content();
  auto have = [&](const Descriptor& blob) -> absl::Status {
    auto size = content.Size(blob.digest);
    if (!size.ok() || File("blobs/sha256/" + DigestHex(blob.digest)) == nullptr) {
      return absl::InvalidArgumentError(
          StrCat("import: the archive lacks blob ", blob.digest, " (", blob.media_type, ")"));
    }
    if (*size != blob.size) {
      return absl::DataLossError(StrCat("import: blob ", blob.digest, " is ", *size,
                                        " bytes, its descriptor says ", blob.size));
    }
    return absl::OkStatus();
  };
  RAUHA_RETURN_IF_ERROR(have(d));
  RAUHA_ASSIGN_OR_RETURN(std::string body, content.ReadSmall(d.digest, kMaxManifestBytes));
  RAUHA_ASSIGN_OR_RETURN(Manifest m, ParseManifest(body, d.media_type));
  if (m.is_index) {
    RAUHA_ASSIGN_OR_RETURN(Descriptor entry, SelectPlatform(m, HostPlatform()));
    RAUHA_ASSIGN_OR_RETURN(store::ImageRecord r, FromOciManifest(entry));
    r.index_digest = d.digest;
    return r;
  }
  RAUHA_RETURN_IF_ERROR(have(m.config));
  store::ImageRecord r;
  r.manifest_digest = d.digest;
  r.media_type = m.media_type;
  r.config_digest = m.config.digest;
  RAUHA_ASSIGN_OR_RETURN(r.config_json, content.ReadSmall(m.config.digest, kMaxConfigBytes));
  r.size = body.size() + m.config.size;
  Json layers = Json::array();
  for (const auto& l : m.layers) {
    RAUHA_RETURN_IF_ERROR(have(l));
    layers.push_back({{"digest", l.digest}, {"mediaType", l.media_type}, {"size", l.size}});
    r.size += l.size;
  }
  r.layers_json = layers.dump();
  return r;
}

absl::StatusOr<std::vector<store::ImageRecord>> Importer::FromOciLayout(const std::string& tag) {
  RAUHA_ASSIGN_OR_RETURN(std::string text, ReadJson("index.json", kMaxManifestBytes));
  RAUHA_ASSIGN_OR_RETURN(Manifest index, ParseManifest(text, kOciIndex));
  if (!index.is_index) return absl::InvalidArgumentError("import: index.json is not an index");
  if (index.manifests.empty()) return absl::InvalidArgumentError("import: index.json is empty");
  for (const auto& d : index.manifests) {
    RAUHA_ASSIGN_OR_RETURN(store::ImageRecord r, FromOciManifest(d));
    std::vector<std::string> tags;
    for (const char* key : {"io.containerd.image.name", "org.opencontainers.image.ref.name"}) {
      auto it = d.annotations.find(key);
      if (it == d.annotations.end() || !tags.empty()) continue;
      // A bare tag ("latest") names no repository; only full references are kept.
      if (it->second.find_first_of("/:") == std::string::npos) continue;
      if (auto ref = ParseReference(it->second); ref.ok() && !ref->tag.empty()) {
        tags.push_back(ref->TagRef());
      }
    }
    if (!tag.empty()) tags = {tag};
    Json config = Json::parse(r.config_json, nullptr, false);
    RAUHA_RETURN_IF_ERROR(Put(r, config.is_object() ? config : Json::object(), tags));
  }
  return records_;
}

absl::StatusOr<std::vector<store::ImageRecord>> Importer::FromDockerSave(const std::string& tag) {
  RAUHA_ASSIGN_OR_RETURN(std::string text, ReadJson("manifest.json", kMaxManifestBytes));
  Json list = Json::parse(text, nullptr, false);
  if (!list.is_array() || list.empty()) {
    return absl::InvalidArgumentError("import: manifest.json is not a list of images");
  }
  const ContentStore& content = images_->content();
  for (const auto& item : list) {
    if (!item.is_object() || !item.contains("Config") || !item["Config"].is_string() ||
        !item.contains("Layers") || !item["Layers"].is_array()) {
      return absl::InvalidArgumentError("import: a manifest.json entry lacks Config or Layers");
    }
    std::string config_name = CleanName(item["Config"].get<std::string>());
    const Imported* config_file = File(config_name);
    if (config_file == nullptr) {
      return absl::InvalidArgumentError(StrCat("import: the archive has no ", config_name));
    }
    // Legacy docker save names the config by its digest: check it.
    std::string base = config_name.substr(config_name.rfind('/') + 1);
    if (base.size() == 69 && base.substr(64) == ".json" &&
        "sha256:" + base.substr(0, 64) != config_file->digest) {
      return absl::DataLossError(
          StrCat("import: ", config_name, " hashes to ", config_file->digest));
    }
    RAUHA_ASSIGN_OR_RETURN(std::string config_text,
                           content.ReadSmall(config_file->digest, kMaxConfigBytes));
    Json config = Json::parse(config_text, nullptr, false);
    if (!config.is_object()) return absl::InvalidArgumentError("import: config is not JSON");
    Json diff_ids = config.contains("rootfs") && config["rootfs"].is_object()
                        ? config["rootfs"].value("diff_ids", Json::array())
                        : Json::array();
    if (!diff_ids.is_array() || diff_ids.size() != item["Layers"].size()) {
      return absl::InvalidArgumentError(
          "import: the config's rootfs.diff_ids do not match the archive's layers");
    }
    Json layers = Json::array();
    uint64_t size = config_file->size;
    for (size_t i = 0; i < item["Layers"].size(); ++i) {
      if (!item["Layers"][i].is_string()) return absl::InvalidArgumentError("import: bad layer");
      std::string name = CleanName(item["Layers"][i].get<std::string>());
      const Imported* layer = File(name);
      if (layer == nullptr) {
        return absl::InvalidArgumentError(StrCat("import: the archive has no layer ", name));
      }
      // docker save layers are uncompressed: their digest is the config's diff_id.
      if (diff_ids[i] != layer->digest) {
        return absl::DataLossError(StrCat("import: layer ", name, " hashes to ", layer->digest,
                                          ", the config says ", diff_ids[i].dump()));
      }
      layers.push_back(
          {{"mediaType", kDockerLayerTar}, {"size", layer->size}, {"digest", layer->digest}});
      size += layer->size;
    }
    Json manifest = {{"schemaVersion", 2},
                     {"mediaType", kDockerManifest},
                     {"config",
                      {{"mediaType", kDockerConfig},
                       {"size", config_file->size},
                       {"digest", config_file->digest}}},
                     {"layers", layers}};
    std::string body = manifest.dump();
    RAUHA_ASSIGN_OR_RETURN(auto writer, content.IngestUnknown());
    RAUHA_RETURN_IF_ERROR(writer->Write(body.data(), body.size()));
    RAUHA_ASSIGN_OR_RETURN(std::string manifest_digest, writer->Commit());
    lease_->Add(manifest_digest);
    store::ImageRecord r;
    r.manifest_digest = manifest_digest;
    r.media_type = kDockerManifest;
    r.config_digest = config_file->digest;
    r.config_json = config_text;
    r.layers_json = layers.dump();
    r.size = size + body.size();
    std::vector<std::string> tags;
    if (item.contains("RepoTags") && item["RepoTags"].is_array()) {
      for (const auto& t : item["RepoTags"]) {
        if (!t.is_string()) continue;
        if (auto ref = ParseReference(t.get<std::string>()); ref.ok() && !ref->tag.empty()) {
          tags.push_back(ref->TagRef());
        }
      }
    }
    if (!tag.empty()) tags = {tag};
    RAUHA_RETURN_IF_ERROR(Put(r, config, tags));
  }
  return records_;
}

absl::StatusOr<std::vector<store::ImageRecord>> Importer::Build(const std::string& tag) {
  if (File("index.json") != nullptr) return FromOciLayout(tag);
  if (File("manifest.json") != nullptr) return FromDockerSave(tag);
  return absl::InvalidArgumentError(
      "import: neither an OCI image layout (index.json) nor a docker save archive "
      "(manifest.json)");
}

}  // namespace

absl::StatusOr<std::vector<store::ImageRecord>> ImportArchive(ImageStore* images,
                                                              const ArchiveSource& source,
                                                              const std::string& tag) {
  std::string tag_ref;
  if (!tag.empty()) {
    RAUHA_ASSIGN_OR_RETURN(Reference ref, ParseReference(tag));
    if (ref.tag.empty())
      return absl::InvalidArgumentError("import: --tag needs a tag, not a digest");
    tag_ref = ref.TagRef();
  }
  Importer importer(images);
  absl::Status st = importer.ReadAll(source);
  absl::StatusOr<std::vector<store::ImageRecord>> out =
      st.ok() ? importer.Build(tag_ref) : absl::StatusOr<std::vector<store::ImageRecord>>(st);
  // Whatever the archive brought that no image now uses (docker save's legacy files, or
  // everything when the archive was refused) goes.
  importer.ReleaseLease();
  (void)images->Collect(importer.Ingested());
  return out;
}

}  // namespace rauha::image
