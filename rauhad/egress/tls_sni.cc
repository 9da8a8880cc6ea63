#include "rauhad/egress/tls_sni.h"

#include <cstdint>

namespace rauha::egress {
namespace {

// Bounds-checked big-endian reads over one record's handshake bytes.
class Reader {
 public:
  explicit Reader(std::string_view d) : d_(d) {}
  bool Skip(size_t n) {
    if (n > d_.size() - pos_) return false;
    pos_ += n;
    return true;
  }
  bool U8(uint32_t* v) { return Int(1, v); }
  bool U16(uint32_t* v) { return Int(2, v); }
  bool U24(uint32_t* v) { return Int(3, v); }
  bool Bytes(size_t n, std::string_view* out) {
    if (n > d_.size() - pos_) return false;
    *out = d_.substr(pos_, n);
    pos_ += n;
    return true;
  }

 private:
  bool Int(size_t n, uint32_t* v) {
    if (n > d_.size() - pos_) return false;
    *v = 0;
    for (size_t i = 0; i < n; ++i) *v = *v << 8 | static_cast<unsigned char>(d_[pos_ + i]);
    pos_ += n;
    return true;
  }
  std::string_view d_;
  size_t pos_ = 0;
};

}  // namespace

SniResult ParseClientHelloSni(std::string_view buffer) {
  SniResult r;
  if (buffer.empty()) return r;
  if (static_cast<unsigned char>(buffer[0]) != 0x16) return {SniStatus::kNotTls, ""};
  if (buffer.size() < 5) return r;
  if (buffer[1] != 0x03) return {SniStatus::kNotTls, ""};
  size_t record_len =
      static_cast<unsigned char>(buffer[3]) << 8 | static_cast<unsigned char>(buffer[4]);
  if (record_len == 0 || record_len > 16384 + 2048) return {SniStatus::kNotTls, ""};
  if (buffer.size() < 5 + record_len) return r;
  Reader rd(buffer.substr(5, record_len));
  uint32_t type = 0, len = 0, n = 0;
  std::string_view body;
  if (!rd.U8(&type) || type != 1 || !rd.U24(&len) || !rd.Bytes(len, &body)) {
    return {SniStatus::kNotTls, ""};  // not a ClientHello, or one spanning records
  }
  Reader h(body);
  if (!h.Skip(2 + 32) || !h.U8(&n) || !h.Skip(n) || !h.U16(&n) || !h.Skip(n) || !h.U8(&n) ||
      !h.Skip(n)) {
    return {SniStatus::kNotTls, ""};
  }
  uint32_t ext_len = 0;
  std::string_view exts;
  if (!h.U16(&ext_len) || !h.Bytes(ext_len, &exts)) return {SniStatus::kNoName, ""};
  Reader e(exts);
  uint32_t ext_type = 0;
  while (e.U16(&ext_type)) {
    std::string_view data;
    if (!e.U16(&n) || !e.Bytes(n, &data)) return {SniStatus::kNotTls, ""};
    if (ext_type != 0) continue;
    Reader s(data);
    uint32_t list_len = 0, name_type = 0, name_len = 0;
    std::string_view name;
    if (!s.U16(&list_len) || !s.U8(&name_type) || name_type != 0 || !s.U16(&name_len) ||
        !s.Bytes(name_len, &name) || name.empty()) {
      return {SniStatus::kNotTls, ""};
    }
    std::string lower;
    for (char c : name) lower += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    return {SniStatus::kFound, lower};
  }
  return {SniStatus::kNoName, ""};
}

}  // namespace rauha::egress
