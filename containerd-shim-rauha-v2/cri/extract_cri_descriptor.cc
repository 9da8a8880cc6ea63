// Extracts the CRI API (`runtime.v1`, Kubernetes' cri-api api.proto) from a containerd binary,
// where Go's protobuf registry keeps it as a gzipped FileDescriptorProto, and writes it as a
// FileDescriptorSet for `protoc --descriptor_set_in`. Debian ships neither cri-api's .proto nor
// crictl; the binary that serves CRI carries the exact schema it speaks.
//
//   extract_cri_descriptor CONTAINERD_BINARY OUT.pb PROTO_NAME
//
// The gogo import and gogo's options are dropped (C++ generation needs neither; the wire format
// does not depend on them) and the file is renamed PROTO_NAME.
#include <zlib.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

#include "google/protobuf/descriptor.pb.h"

namespace {

// Inflates the gzip member starting at `data` (at most `max_out` bytes out); false if it is
// not one.
bool Gunzip(std::string_view data, size_t max_out, std::string* out) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return false;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  out->assign(max_out, '\0');
  z.next_out = reinterpret_cast<Bytef*>(out->data());
  z.avail_out = static_cast<uInt>(max_out);
  int rc = inflate(&z, Z_FINISH);
  out->resize(z.total_out);
  inflateEnd(&z);
  return rc == Z_STREAM_END;
}

// Drops gogo's options; keeps map_entry, which is what makes a map a map.
void StripOptions(google::protobuf::DescriptorProto* m) {
  bool map_entry = m->options().map_entry();
  m->clear_options();
  if (map_entry) m->mutable_options()->set_map_entry(true);
  for (auto& f : *m->mutable_field()) f.clear_options();
  for (auto& o : *m->mutable_oneof_decl()) o.clear_options();
  for (auto& e : *m->mutable_enum_type()) {
    e.clear_options();
    for (auto& v : *e.mutable_value()) v.clear_options();
  }
  for (auto& n : *m->mutable_nested_type()) StripOptions(&n);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s CONTAINERD_BINARY OUT.pb PROTO_NAME\n", argv[0]);
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "extract_cri_descriptor: cannot read %s\n", argv[1]);
    return 1;
  }
  std::string binary((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Go's compress/gzip header: magic, deflate, no flags, no mtime.
  static constexpr std::string_view kGzipHeader("\x1f\x8b\x08\x00\x00\x00\x00\x00", 8);
  constexpr size_t kMaxDescriptor = 4 << 20;
  for (size_t pos = binary.find(kGzipHeader); pos != std::string::npos;
       pos = binary.find(kGzipHeader, pos + 1)) {
    std::string raw;
    if (!Gunzip(std::string_view(binary).substr(pos), kMaxDescriptor, &raw)) continue;
    google::protobuf::FileDescriptorProto file;
    if (!file.ParseFromString(raw) || file.package() != "runtime.v1" ||
        file.name() != "api.proto" || file.service_size() == 0) {
      continue;
    }
    file.set_name(argv[3]);
    file.clear_dependency();  // only gogo.proto, for options dropped below
    file.clear_options();
    for (auto& m : *file.mutable_message_type()) StripOptions(&m);
    for (auto& e : *file.mutable_enum_type()) {
      e.clear_options();
      for (auto& v : *e.mutable_value()) v.clear_options();
    }
    for (auto& s : *file.mutable_service()) {
      s.clear_options();
      for (auto& method : *s.mutable_method()) method.clear_options();
    }
    google::protobuf::FileDescriptorSet set;
    *set.add_file() = file;
    std::ofstream out(argv[2], std::ios::binary | std::ios::trunc);
    if (!set.SerializeToOstream(&out) || !out.flush()) {
      std::fprintf(stderr, "extract_cri_descriptor: cannot write %s\n", argv[2]);
      return 1;
    }
    return 0;
  }
  std::fprintf(stderr,
               "extract_cri_descriptor: no CRI runtime.v1 descriptor in %s (containerd 1.6+ "
               "with the CRI plugin carries one)\n",
               argv[1]);
  return 1;
}
