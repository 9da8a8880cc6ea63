// An OCI distribution (v2 API) client over libcurl for one repository: manifests by tag or
// digest, blobs streamed into the content store with Range resume. HTTPS with the system CA
// store (plus an extra CA file when configured); registries listed as insecure and loopback
// ones are tried over HTTPS first and spoken to over plain HTTP when they do not speak TLS
// (as Docker does), never when a certificate fails verification. Auth: anonymous first, then what
// the 401 asks for: a Bearer token from the challenge's realm (service, scope; with basic
// credentials if the auths file has them), or basic credentials.
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rauhad/image/auth.h"
#include "rauhad/image/content_store.h"
#include "rauhad/image/reference.h"

namespace rauha::image {

struct RegistryOptions {
  std::vector<std::string> insecure_registries;  // "HOST:PORT" spoken to over plain HTTP
  std::string auth_file;                         // ~/.docker/config.json-style "auths"
  std::string extra_ca_file;                     // PEM certificates trusted besides the system's
  uint32_t max_concurrent_downloads = 4;
};

struct FetchedManifest {
  std::string body;
  std::string content_type;
  std::string digest_header;  // Docker-Content-Digest, "" when absent
};

class RegistryClient {
 public:
  // InvalidArgument when the auths file cannot be read or parsed.
  static absl::StatusOr<std::unique_ptr<RegistryClient>> Create(const RegistryOptions& options,
                                                                const Reference& ref);
  ~RegistryClient();

  // GET /v2/<repo>/manifests/<tag or digest>, at most kMaxManifestBytes.
  absl::StatusOr<FetchedManifest> GetManifest(const std::string& tag_or_digest);

  // GET /v2/<repo>/blobs/<digest> into `writer`, from writer->offset() (Range) on. `progress`
  // gets the bytes held so far and returns false to cancel (Cancelled). Unavailable for
  // transport errors (the partial bytes stay in the writer for a retry).
  absl::Status GetBlob(const std::string& digest, BlobWriter* writer,
                       const std::function<bool(uint64_t)>& progress);

  std::string base_url() const;

 private:
  RegistryClient() = default;
  struct Response;
  // One request with the current authorization; on a 401 answers the challenge once and
  // repeats. `sink` receives a 2xx body (return false to abort); other bodies are kept short
  // for the error message.
  absl::Status Request(const std::string& path, const std::vector<std::string>& headers,
                       const std::function<bool(const char*, size_t, long)>& sink,
                       Response* response);
  absl::Status Perform(const std::string& url, const std::vector<std::string>& headers,
                       const std::function<bool(const char*, size_t, long)>& sink,
                       Response* response);
  absl::Status Authorize(const std::string& www_authenticate);
  void Configure(CURL* curl) const;
  bool MaySendSecrets(const std::string& url) const;

  Reference ref_;
  mutable std::mutex url_mu_;
  std::string base_url_;        // "https://host:port/v2/<repo>"
  bool may_fall_back_ = false;  // to plain HTTP, until the first answer decides
  std::string extra_ca_file_;
  std::optional<Credentials> credentials_;
  std::mutex mu_;
  std::string authorization_;  // "Authorization: ..." header, "" while anonymous
  CURLSH* share_ = nullptr;    // connections, DNS and TLS sessions shared by this pull's threads
  std::mutex share_locks_[CURL_LOCK_DATA_LAST];
};

}  // namespace rauha::image
