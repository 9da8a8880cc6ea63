// What the image tests need around rauhad: Debian's docker-registry on a free loopback port
// (plain HTTP, or TLS with a CA the test makes plus htpasswd basic auth), the test's own
// token server / cutting proxy (registry_front.py), OCI image layouts built from
// busybox-static with libarchive, and skopeo to push them. Everything lives in one temporary
// directory; processes are stopped by PID and the directory removed.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace rauha::testing {

// Runs argv, returns its exit status (-1 when it could not run); stdout+stderr into *output.
int RunProgram(const std::vector<std::string>& argv, std::string* output = nullptr);
int FreeLoopbackPort();
std::string ReadWholeFile(const std::string& path);
std::string Sha256Hex(const std::string& data);

class TempTree {
 public:
  TempTree();
  ~TempTree();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class TestRegistry {
 public:
  struct Options {
    bool tls = false;
    std::string user, password;  // basic auth (htpasswd) when set
  };
  TestRegistry(const std::string& dir, Options options);
  ~TestRegistry();
  bool ok() const { return pid_ > 0; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  // The registry's stored copy of a blob (tamper with it to test verification).
  std::string BlobDataPath(const std::string& digest) const;
  const std::string& ca_file() const { return ca_file_; }    // TLS only
  const std::string& cert_dir() const { return cert_dir_; }  // for skopeo --dest-cert-dir
  // skopeo copy oci:LAYOUT[:TAG] docker://HOST/DEST (--all with an index).
  bool Push(const std::string& layout, const std::string& layout_tag, const std::string& dest,
            std::string* output = nullptr) const;

 private:
  std::string dir_;
  Options options_;
  std::string ca_file_, cert_dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

class RegistryFront {
 public:
  struct Options {
    std::string token;  // "user:pass": require Bearer tokens issued for these credentials
    uint64_t cut_after = 0;
  };
  RegistryFront(const std::string& dir, const std::string& upstream_host, Options options);
  ~RegistryFront();
  bool ok() const { return pid_ > 0; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  // The requests seen, one JSON object per line.
  std::vector<std::string> Log() const;

 private:
  std::string log_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// Builds an OCI image layout directory.
class LayoutBuilder {
 public:
  enum class Compression { kNone, kGzip, kZstd };
  struct Layer {
    std::map<std::string, std::string> files;  // path -> content (mode 0755)
    Compression compression = Compression::kGzip;
  };
  struct Built {
    std::string manifest_digest;
    std::string config_digest;
    std::vector<std::string> layer_digests;
  };
  explicit LayoutBuilder(std::string dir);
  // A blob written into the layout; returns its digest.
  std::string AddBlob(const std::string& data);
  // An image manifest for `arch` (its config names it); not yet in index.json.
  // `config_json`: the config's "config" object (Cmd, Env, ...) as JSON text; "" gives
  // {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]}.
  Built AddImage(const std::vector<Layer>& layers, const std::string& arch = "amd64",
                 const std::string& created = "2026-01-02T03:04:05Z",
                 const std::string& config_json = "");
  // index.json listing `manifests` under `tag` (one entry), or an index blob of several
  // platforms listed under `tag`. Returns the index blob's digest for multi-platform.
  void Tag(const Built& image, const std::string& tag);
  std::string TagIndex(const std::vector<std::pair<Built, std::string>>& images_and_arch,
                       const std::string& tag);
  void WriteIndexJson();
  const std::string& dir() const { return dir_; }
  std::string BlobBytes(const std::string& digest) const;

 private:
  std::string dir_;
  std::vector<std::string> index_entries_;  // JSON descriptors
};

std::string BusyboxBinary();

}  // namespace rauha::testing
