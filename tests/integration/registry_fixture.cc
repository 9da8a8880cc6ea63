#include "tests/integration/registry_fixture.h"

#include <archive.h>
#include <archive_entry.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "nlohmann/json.hpp"
#include "rauhad/image/digest.h"

namespace rauha::testing {
namespace {

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

bool WaitForPort(int port, pid_t pid) {
  for (int i = 0; i < 200; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    if (up) return true;
    if (::waitpid(pid, nullptr, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

void StopByPid(pid_t pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

la_ssize_t AppendToString(archive*, void* user, const void* buf, size_t n) {
  static_cast<std::string*>(user)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

// A layer tar (optionally compressed) and its uncompressed digest.
std::pair<std::string, std::string> MakeLayer(const LayoutBuilder::Layer& layer) {
  auto build = [&](LayoutBuilder::Compression c) {
    std::string out;
    archive* a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    if (c == LayoutBuilder::Compression::kGzip) archive_write_add_filter_gzip(a);
    if (c == LayoutBuilder::Compression::kZstd) archive_write_add_filter_zstd(a);
    // Unpadded: libarchive would pad the (compressed) output to 10240 bytes with zeros, which
    // gzip readers skip but a zstd reader refuses as a bad frame.
    archive_write_set_bytes_in_last_block(a, 1);
    archive_write_open(a, &out, nullptr, AppendToString, nullptr);
    for (const auto& [path, content] : layer.files) {
      archive_entry* e = archive_entry_new();
      archive_entry_set_pathname(e, path.c_str());
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_perm(e, 0755);
      archive_entry_set_size(e, static_cast<la_int64_t>(content.size()));
      archive_entry_set_mtime(e, 1700000000, 0);
      archive_write_header(a, e);
      archive_write_data(a, content.data(), content.size());
      archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    return out;
  };
  std::string raw = build(LayoutBuilder::Compression::kNone);
  std::string diff_id = rauha::image::Sha256Digest(raw);
  if (layer.compression == LayoutBuilder::Compression::kNone) return {raw, diff_id};
  return {build(layer.compression), diff_id};
}

const char* LayerMediaType(LayoutBuilder::Compression c) {
  switch (c) {
    case LayoutBuilder::Compression::kNone:
      return "application/vnd.oci.image.layer.v1.tar";
    case LayoutBuilder::Compression::kGzip:
      return "application/vnd.oci.image.layer.v1.tar+gzip";
    case LayoutBuilder::Compression::kZstd:
      return "application/vnd.oci.image.layer.v1.tar+zstd";
  }
  return "";
}

}  // namespace

int RunProgram(const std::vector<std::string>& argv, std::string* output) {
  char tmpl[] = "/tmp/rauha-run-XXXXXX";
  int fd = ::mkstemp(tmpl);
  if (fd < 0) return -1;
  ::close(fd);
  pid_t pid = Spawn(argv, tmpl);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (output) *output = ReadWholeFile(tmpl);
  ::unlink(tmpl);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Sha256Hex(const std::string& data) {
  return rauha::image::Sha256Digest(data).substr(7);
}

TempTree::TempTree() {
  char tmpl[] = "/tmp/rauha-imgtest-XXXXXX";
  path_ = ::mkdtemp(tmpl);
}
TempTree::~TempTree() { std::filesystem::remove_all(path_); }

TestRegistry::TestRegistry(const std::string& dir, Options options)
    : dir_(dir + "/registry"), options_(std::move(options)) {
  std::filesystem::create_directories(dir_ + "/storage");
  port_ = FreeLoopbackPort();
  std::string config =
      "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
      "storage:\n  filesystem:\n    rootdirectory: " +
      dir_ + "/storage\n  delete:\n    enabled: true\n" +
      "http:\n  addr: 127.0.0.1:" + std::to_string(port_) + "\n";
  if (options_.tls) {
    // A CA of the test's own and a server certificate for 127.0.0.1 signed by it.
    std::string d = dir_;
    std::vector<std::vector<std::string>> steps = {
        {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", d + "/ca.key", "-out", d + "/ca.crt", "-days", "2", "-subj",
         "/CN=rauha test CA"},
        {"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", d + "/server.key", "-out", d + "/server.csr", "-subj", "/CN=127.0.0.1"},
    };
    for (const auto& s : steps) RunProgram(s);
    WriteFile(d + "/ext.cnf", "subjectAltName=IP:127.0.0.1\n");
    RunProgram({"openssl", "x509", "-req", "-in", d + "/server.csr", "-CA", d + "/ca.crt", "-CAkey",
                d + "/ca.key", "-CAcreateserial", "-out", d + "/server.crt", "-days", "2",
                "-extfile", d + "/ext.cnf"});
    ca_file_ = d + "/ca.crt";
    cert_dir_ = d + "/skopeo-certs";
    std::filesystem::create_directories(cert_dir_);
    std::filesystem::copy_file(ca_file_, cert_dir_ + "/ca.crt");
    config += "  tls:\n    certificate: " + d + "/server.crt\n    key: " + d + "/server.key\n";
  }
  if (!options_.user.empty()) {
    std::string out;
    RunProgram({"htpasswd", "-Bbn", options_.user, options_.password}, &out);
    WriteFile(dir_ + "/htpasswd", out);
    config += "auth:\n  htpasswd:\n    realm: rauha-test\n    path: " + dir_ + "/htpasswd\n";
  }
  WriteFile(dir_ + "/config.yml", config);
  pid_ = Spawn({"docker-registry", "serve", dir_ + "/config.yml"}, dir_ + "/registry.log");
  if (!WaitForPort(port_, pid_)) {
    StopByPid(pid_);
    pid_ = -1;
  }
}

TestRegistry::~TestRegistry() { StopByPid(pid_); }

std::string TestRegistry::BlobDataPath(const std::string& digest) const {
  std::string hex = digest.substr(7);
  return dir_ + "/storage/docker/registry/v2/blobs/sha256/" + hex.substr(0, 2) + "/" + hex +
         "/data";
}

bool TestRegistry::Push(const std::string& layout, const std::string& layout_tag,
                        const std::string& dest, std::string* output) const {
  std::vector<std::string> argv = {"skopeo",
                                   "copy",
                                   "--all",
                                   "--quiet",
                                   "oci:" + layout + ":" + layout_tag,
                                   "docker://" + host() + "/" + dest};
  if (options_.tls) {
    argv.insert(argv.begin() + 2, {"--dest-cert-dir", cert_dir_});
  } else {
    argv.insert(argv.begin() + 2, "--dest-tls-verify=false");
  }
  if (!options_.user.empty()) {
    argv.insert(argv.begin() + 2, {"--dest-creds", options_.user + ":" + options_.password});
  }
  std::string out;
  int rc = RunProgram(argv, &out);
  if (output) *output = out;
  return rc == 0;
}

RegistryFront::RegistryFront(const std::string& dir, const std::string& upstream_host,
                             Options options) {
  port_ = FreeLoopbackPort();
  log_ = dir + "/front-" + std::to_string(port_) + ".log";
  std::vector<std::string> argv = {
      "python3",    RAUHA_SOURCE_DIR "/tests/integration/registry_front.py",
      "--port",     std::to_string(port_),
      "--upstream", "http://" + upstream_host,
      "--log",      log_};
  if (!options.token.empty()) argv.insert(argv.end(), {"--token", options.token});
  if (options.cut_after)
    argv.insert(argv.end(), {"--cut-after", std::to_string(options.cut_after)});
  pid_ = Spawn(argv, dir + "/front-" + std::to_string(port_) + ".out");
  if (!WaitForPort(port_, pid_)) {
    StopByPid(pid_);
    pid_ = -1;
  }
}

RegistryFront::~RegistryFront() { StopByPid(pid_); }

std::vector<std::string> RegistryFront::Log() const {
  std::vector<std::string> out;
  std::istringstream in(ReadWholeFile(log_));
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

LayoutBuilder::LayoutBuilder(std::string dir) : dir_(std::move(dir)) {
  std::filesystem::create_directories(dir_ + "/blobs/sha256");
  WriteFile(dir_ + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
}

std::string LayoutBuilder::AddBlob(const std::string& data) {
  std::string digest = rauha::image::Sha256Digest(data);
  WriteFile(dir_ + "/blobs/sha256/" + digest.substr(7), data);
  return digest;
}

std::string LayoutBuilder::BlobBytes(const std::string& digest) const {
  return ReadWholeFile(dir_ + "/blobs/sha256/" + digest.substr(7));
}

LayoutBuilder::Built LayoutBuilder::AddImage(const std::vector<Layer>& layers,
                                             const std::string& arch, const std::string& created,
                                             const std::string& config_json) {
  using Json = nlohmann::json;
  Built built;
  Json layer_descs = Json::array();
  Json diff_ids = Json::array();
  for (const auto& l : layers) {
    auto [blob, diff_id] = MakeLayer(l);
    std::string digest = AddBlob(blob);
    built.layer_digests.push_back(digest);
    diff_ids.push_back(diff_id);
    layer_descs.push_back(
        {{"mediaType", LayerMediaType(l.compression)}, {"digest", digest}, {"size", blob.size()}});
  }
  Json config = {{"architecture", arch},
                 {"os", "linux"},
                 {"created", created},
                 {"config", config_json.empty() ? Json{{"Cmd", {"/bin/sh"}}, {"Env", {"PATH=/bin"}}}
                                                : Json::parse(config_json)},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  std::string config_text = config.dump();
  built.config_digest = AddBlob(config_text);
  Json manifest = {{"schemaVersion", 2},
                   {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"config",
                    {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                     {"digest", built.config_digest},
                     {"size", config_text.size()}}},
                   {"layers", layer_descs}};
  built.manifest_digest = AddBlob(manifest.dump());
  return built;
}

void LayoutBuilder::Tag(const Built& image, const std::string& tag) {
  nlohmann::json d = {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                      {"digest", image.manifest_digest},
                      {"size", BlobBytes(image.manifest_digest).size()},
                      {"annotations", {{"org.opencontainers.image.ref.name", tag}}}};
  index_entries_.push_back(d.dump());
  WriteIndexJson();
}

std::string LayoutBuilder::TagIndex(const std::vector<std::pair<Built, std::string>>& images,
                                    const std::string& tag) {
  using Json = nlohmann::json;
  Json manifests = Json::array();
  for (const auto& [image, arch] : images) {
    manifests.push_back({{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                         {"digest", image.manifest_digest},
                         {"size", BlobBytes(image.manifest_digest).size()},
                         {"platform", {{"os", "linux"}, {"architecture", arch}}}});
  }
  Json index = {{"schemaVersion", 2},
                {"mediaType", "application/vnd.oci.image.index.v1+json"},
                {"manifests", manifests}};
  std::string text = index.dump();
  std::string digest = AddBlob(text);
  Json d = {{"mediaType", "application/vnd.oci.image.index.v1+json"},
            {"digest", digest},
            {"size", text.size()},
            {"annotations", {{"org.opencontainers.image.ref.name", tag}}}};
  index_entries_.push_back(d.dump());
  WriteIndexJson();
  return digest;
}

void LayoutBuilder::WriteIndexJson() {
  nlohmann::json manifests = nlohmann::json::array();
  for (const auto& e : index_entries_) manifests.push_back(nlohmann::json::parse(e));
  WriteFile(dir_ + "/index.json",
            nlohmann::json{{"schemaVersion", 2}, {"manifests", manifests}}.dump());
}

std::string BusyboxBinary() { return ReadWholeFile("/bin/busybox"); }

}  // namespace rauha::testing
