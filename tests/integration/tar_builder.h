// Builds tar layers in memory with libarchive's writer (pax format, so xattrs and
// nanosecond times are carried), for the unpack and image tests.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "rauhad/image/unpack.h"

namespace rauha::testing {

struct TarMeta {
  mode_t perm = 0644;
  int64_t uid = 0;
  int64_t gid = 0;
  int64_t mtime = 1700000000;
  std::map<std::string, std::string> xattrs;
};

class TarBuilder {
 public:
  using Meta = TarMeta;

  TarBuilder& File(const std::string& name, const std::string& content, Meta meta = {}) {
    return Add(name, AE_IFREG, meta, &content, nullptr, nullptr);
  }
  TarBuilder& Dir(const std::string& name, Meta meta = {.perm = 0755}) {
    return Add(name, AE_IFDIR, meta, nullptr, nullptr, nullptr);
  }
  TarBuilder& Symlink(const std::string& name, const std::string& target) {
    return Add(name, AE_IFLNK, {.perm = 0777}, nullptr, &target, nullptr);
  }
  TarBuilder& Hardlink(const std::string& name, const std::string& target) {
    return Add(name, AE_IFREG, {}, nullptr, nullptr, &target);
  }
  TarBuilder& Device(const std::string& name, mode_t type, unsigned major, unsigned minor) {
    major_ = major;
    minor_ = minor;
    return Add(name, type, {.perm = 0666}, nullptr, nullptr, nullptr);
  }
  TarBuilder& Fifo(const std::string& name) {
    return Add(name, AE_IFIFO, {.perm = 0600}, nullptr, nullptr, nullptr);
  }

  // The archive, compressed as asked.
  std::string Build(image::LayerCompression compression = image::LayerCompression::kNone) const {
    archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (compression == image::LayerCompression::kGzip) archive_write_add_filter_gzip(a);
    if (compression == image::LayerCompression::kZstd) archive_write_add_filter_zstd(a);
    std::string out(raw_.size() + (1 << 20), '\0');
    size_t used = 0;
    archive_write_set_bytes_in_last_block(a, 1);
    archive_write_open_memory(a, out.data(), out.size(), &used);
    for (const auto& e : entries_) {
      archive_write_header(a, e.first);
      if (!e.second.empty()) archive_write_data(a, e.second.data(), e.second.size());
    }
    archive_write_close(a);
    archive_write_free(a);
    out.resize(used);
    return out;
  }

  ~TarBuilder() {
    for (auto& e : entries_) archive_entry_free(e.first);
  }
  TarBuilder() = default;
  TarBuilder(const TarBuilder&) = delete;
  TarBuilder& operator=(const TarBuilder&) = delete;

 private:
  TarBuilder& Add(const std::string& name, mode_t type, const Meta& meta,
                  const std::string* content, const std::string* symlink,
                  const std::string* hardlink) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, meta.perm);
    archive_entry_set_uid(e, meta.uid);
    archive_entry_set_gid(e, meta.gid);
    archive_entry_set_mtime(e, meta.mtime, 0);
    for (const auto& [k, v] : meta.xattrs) {
      archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
    }
    if (symlink) archive_entry_set_symlink(e, symlink->c_str());
    if (hardlink) archive_entry_set_hardlink(e, hardlink->c_str());
    if (type == AE_IFCHR || type == AE_IFBLK) {
      archive_entry_set_rdevmajor(e, major_);
      archive_entry_set_rdevminor(e, minor_);
    }
    archive_entry_set_size(e, content ? static_cast<la_int64_t>(content->size()) : 0);
    entries_.emplace_back(e, content ? *content : std::string());
    raw_ += content ? *content : std::string();
    raw_.append(1024, '\0');
    return *this;
  }

  std::vector<std::pair<archive_entry*, std::string>> entries_;
  std::string raw_;
  unsigned major_ = 0, minor_ = 0;
};

}  // namespace rauha::testing
