// libFuzzer target for the layer unpacker: arbitrary bytes as an uncompressed, gzip or zstd
// layer (the first byte picks which the "media type" says), unpacked into a fresh directory
// beside a sentinel directory that must never change. Run as root (ownership, whiteouts):
//   tests/rauha_unpack_fuzz -max_total_time=120 -rss_limit_mb=2048 <corpus dir>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "rauha-common/remove_tree.h"
#include "rauhad/image/unpack.h"

namespace {

std::string& Base() {
  static std::string base = [] {
    char tmpl[] = "/tmp/rauha-unpack-fuzz-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) std::abort();
    std::string b = tmpl;
    ::mkdir((b + "/outside").c_str(), 0755);
    int fd = ::open((b + "/outside/sentinel").c_str(), O_WRONLY | O_CREAT, 0644);
    ::close(fd);
    return b;
  }();
  return base;
}

struct stat Observe(const std::string& path) {
  struct stat st {};
  ::lstat(path.c_str(), &st);
  return st;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string& base = Base();
  auto compression = static_cast<rauha::image::LayerCompression>(data[0] % 3);
  std::string layer = base + "/layer";
  if (::mkdir(layer.c_str(), 0755) < 0) std::abort();
  struct stat outside = Observe(base + "/outside");
  struct stat sentinel = Observe(base + "/outside/sentinel");
  int fd = ::open(layer.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  rauha::image::UnpackOptions options;
  options.max_entries = 4096;
  options.max_bytes = 64 << 20;
  (void)rauha::image::UnpackLayerBytes(
      std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1), compression, fd,
      options);
  ::close(fd);
  struct stat outside_after = Observe(base + "/outside");
  struct stat sentinel_after = Observe(base + "/outside/sentinel");
  // Anything written beside the layer changes these.
  if (outside.st_mtim.tv_sec != outside_after.st_mtim.tv_sec ||
      outside.st_mtim.tv_nsec != outside_after.st_mtim.tv_nsec ||
      outside.st_nlink != outside_after.st_nlink || sentinel.st_nlink != sentinel_after.st_nlink ||
      sentinel.st_size != sentinel_after.st_size || sentinel_after.st_ino == 0) {
    std::fprintf(stderr, "unpack wrote outside the layer\n");
    std::abort();
  }
  if (!rauha::RemoveTree(layer).ok()) std::abort();
  return 0;
}
