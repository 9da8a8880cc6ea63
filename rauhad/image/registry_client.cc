#include "rauhad/image/registry_client.h"

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cctype>
#include <fstream>
#include <map>
#include <sstream>

#include "nlohmann/json.hpp"
#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"
#include "rauhad/image/digest.h"
#include "rauhad/image/manifest.h"

namespace rauha::image {

struct RegistryClient::Response {
  long code = 0;
  CURLcode curl_code = CURLE_OK;
  std::map<std::string, std::string> headers;  // lower-case names, of the last response
  std::string error_body;                      // first bytes of a non-2xx body
};

namespace {

std::once_flag curl_init_once;

struct CurlFree {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

std::string Base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// The message of a registry's JSON error body ({"errors": [{"code", "message"}]}), else the
// body's first line.
std::string RegistryMessage(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("errors") && j["errors"].is_array() && !j["errors"].empty() &&
      j["errors"][0].is_object()) {
    const auto& e = j["errors"][0];
    std::string code = e.value("code", "");
    std::string message = e.value("message", "");
    return code.empty() ? message : code + ": " + message;
  }
  std::string line = body.substr(0, body.find('\n'));
  return Trim(line.substr(0, 200));
}

absl::Status HttpError(const std::string& url, long code, const std::string& body) {
  std::string msg = StrCat("GET ", url, ": HTTP ", code);
  if (std::string detail = RegistryMessage(body); !detail.empty()) msg += " (" + detail + ")";
  if (code == 401 || code == 403) return absl::PermissionDeniedError(msg);
  if (code == 404) return absl::NotFoundError(msg);
  if (code == 429 || code >= 500) return absl::UnavailableError(msg);
  return absl::FailedPreconditionError(msg);
}

size_t HeaderCallback(char* data, size_t size, size_t nitems, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  std::string line(data, size * nitems);
  if (line.rfind("HTTP/", 0) == 0) {
    headers->clear();  // a new response (after a redirect or a 100 Continue)
  } else if (size_t colon = line.find(':'); colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    (*headers)[name] = Trim(line.substr(colon + 1));
  }
  return size * nitems;
}

struct WriteState {
  CURL* curl;
  const std::function<bool(const char*, size_t, long)>* sink;
  std::string* error_body;
};

size_t WriteCallback(char* data, size_t size, size_t nmemb, void* user) {
  auto* st = static_cast<WriteState*>(user);
  long code = 0;
  curl_easy_getinfo(st->curl, CURLINFO_RESPONSE_CODE, &code);
  size_t n = size * nmemb;
  if (code >= 200 && code < 300) return (*st->sink)(data, n, code) ? n : 0;
  if (st->error_body->size() < 4096) st->error_body->append(data, std::min<size_t>(n, 4096));
  return n;
}

// Adds the PEM certificates of `file` to the TLS context's trust store, beside the system's.
CURLcode AddCaCallback(CURL*, void* ssl_ctx, void* user) {
  const auto* file = static_cast<const std::string*>(user);
  X509_STORE* store = SSL_CTX_get_cert_store(static_cast<SSL_CTX*>(ssl_ctx));
  FILE* f = std::fopen(file->c_str(), "re");
  if (f == nullptr) return CURLE_SSL_CACERT_BADFILE;
  int added = 0;
  while (X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr)) {
    if (X509_STORE_add_cert(store, cert) == 1) ++added;
    X509_free(cert);
  }
  std::fclose(f);
  return added > 0 ? CURLE_OK : CURLE_SSL_CACERT_BADFILE;
}

void ShareLock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
  static_cast<std::mutex*>(user)[data].lock();
}
void ShareUnlock(CURL*, curl_lock_data data, void* user) {
  static_cast<std::mutex*>(user)[data].unlock();
}

bool IsLoopbackUrl(const std::string& url) {
  size_t start = url.find("://");
  if (start == std::string::npos) return false;
  start += 3;
  size_t end = url.find('/', start);
  return IsLoopbackRegistry(url.substr(start, end == std::string::npos ? end : end - start));
}

}  // namespace

absl::StatusOr<std::unique_ptr<RegistryClient>> RegistryClient::Create(
    const RegistryOptions& options, const Reference& ref) {
  std::call_once(curl_init_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<RegistryClient> c(new RegistryClient());
  c->ref_ = ref;
  bool plain = IsLoopbackRegistry(ref.registry);
  for (const auto& r : options.insecure_registries) plain = plain || r == ref.registry;
  c->base_url_ = StrCat("https://", RegistryEndpoint(ref.registry), "/v2/", ref.repository);
  c->may_fall_back_ = plain;
  c->extra_ca_file_ = options.extra_ca_file;
  if (!options.auth_file.empty()) {
    std::ifstream in(options.auth_file);
    if (!in) {
      return absl::FailedPreconditionError(
          StrCat("cannot read the registry auth file ", options.auth_file));
    }
    std::stringstream text;
    text << in.rdbuf();
    auto creds = FindCredentials(text.str(), ref.registry);
    if (!creds.ok()) return Annotate(creds.status(), options.auth_file);
    c->credentials_ = *creds;
  }
  c->share_ = curl_share_init();
  curl_share_setopt(c->share_, CURLSHOPT_LOCKFUNC, ShareLock);
  curl_share_setopt(c->share_, CURLSHOPT_UNLOCKFUNC, ShareUnlock);
  curl_share_setopt(c->share_, CURLSHOPT_USERDATA, c->share_locks_);
  curl_share_setopt(c->share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  curl_share_setopt(c->share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(c->share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  return c;
}

RegistryClient::~RegistryClient() {
  if (share_ != nullptr) curl_share_cleanup(share_);
}

void RegistryClient::Configure(CURL* curl) const {
  curl_easy_setopt(curl, CURLOPT_SHARE, share_);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);  // blob stores redirect to a CDN
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
  // A stalled transfer (under 1 byte/s for a minute) fails instead of hanging the pull.
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, 256L * 1024);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "rauha/" RAUHA_VERSION);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  if (!extra_ca_file_.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSL_CTX_FUNCTION, AddCaCallback);
    curl_easy_setopt(curl, CURLOPT_SSL_CTX_DATA, &extra_ca_file_);
  }
}

bool RegistryClient::MaySendSecrets(const std::string& url) const {
  return url.rfind("https://", 0) == 0 || IsLoopbackUrl(url);
}

absl::Status RegistryClient::Perform(const std::string& url,
                                     const std::vector<std::string>& headers,
                                     const std::function<bool(const char*, size_t, long)>& sink,
                                     Response* response) {
  std::unique_ptr<CURL, CurlFree> curl(curl_easy_init());
  if (!curl) return absl::ResourceExhaustedError("curl_easy_init failed");
  Configure(curl.get());
  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  {
    std::lock_guard lock(mu_);
    if (!authorization_.empty()) list = curl_slist_append(list, authorization_.c_str());
  }
  std::unique_ptr<curl_slist, SlistFree> header_list(list);
  response->headers.clear();
  response->error_body.clear();
  WriteState ws{curl.get(), &sink, &response->error_body};
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, header_list.get());
  curl_easy_setopt(curl.get(), CURLOPT_HEADERFUNCTION, HeaderCallback);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERDATA, &response->headers);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, WriteCallback);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &ws);
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(curl.get());
  response->curl_code = rc;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &response->code);
  if (rc == CURLE_WRITE_ERROR) return absl::AbortedError("transfer stopped by the receiver");
  if (rc != CURLE_OK) {
    std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    return absl::UnavailableError(StrCat("GET ", url, ": ", detail));
  }
  return absl::OkStatus();
}

std::string RegistryClient::base_url() const {
  std::lock_guard lock(url_mu_);
  return base_url_;
}

absl::Status RegistryClient::Request(const std::string& path,
                                     const std::vector<std::string>& headers,
                                     const std::function<bool(const char*, size_t, long)>& sink,
                                     Response* response) {
  std::string url = base_url() + path;
  absl::Status st = Perform(url, headers, sink, response);
  {
    std::lock_guard lock(url_mu_);
    if (may_fall_back_ && response->curl_code == CURLE_SSL_CONNECT_ERROR) {
      // The server answered the TLS hello with something else: it speaks plain HTTP.
      base_url_.replace(0, 5, "http");
      url = base_url_ + path;
      may_fall_back_ = false;
      st = absl::OkStatus();
    } else if (response->curl_code == CURLE_OK) {
      may_fall_back_ = false;
    }
  }
  if (st.ok() && response->curl_code == CURLE_SSL_CONNECT_ERROR) {
    st = Perform(url, headers, sink, response);
  }
  RAUHA_RETURN_IF_ERROR(st);
  if (response->code == 401) {
    auto challenge = response->headers.find("www-authenticate");
    if (challenge == response->headers.end()) {
      return HttpError(url, response->code, response->error_body);
    }
    RAUHA_RETURN_IF_ERROR(Authorize(challenge->second));
    RAUHA_RETURN_IF_ERROR(Perform(url, headers, sink, response));
  }
  if (response->code < 200 || response->code >= 300) {
    return HttpError(url, response->code, response->error_body);
  }
  return absl::OkStatus();
}

absl::Status RegistryClient::Authorize(const std::string& www_authenticate) {
  RAUHA_ASSIGN_OR_RETURN(Challenge challenge, ParseChallenge(www_authenticate));
  const std::string registry = ref_.registry;
  if (challenge.scheme == "basic") {
    if (!credentials_) {
      return absl::PermissionDeniedError(
          StrCat("registry ", registry,
                 " requires credentials: add them to the auths file (rauhad --registry-auth)"));
    }
    if (!MaySendSecrets(base_url())) {
      return absl::FailedPreconditionError(
          StrCat("registry ", registry, " asks for a password over plain HTTP; refused"));
    }
    std::lock_guard lock(mu_);
    authorization_ =
        "Authorization: Basic " + Base64(credentials_->username + ":" + credentials_->password);
    return absl::OkStatus();
  }
  if (challenge.scheme != "bearer") {
    return absl::FailedPreconditionError(StrCat(
        "registry ", registry, " asks for unsupported authentication \"", challenge.scheme, "\""));
  }
  std::string realm = challenge.params["realm"];
  if (realm.rfind("https://", 0) != 0 && realm.rfind("http://", 0) != 0) {
    return absl::FailedPreconditionError(
        StrCat("registry ", registry, ": token realm \"", realm, "\" is not an http(s) URL"));
  }
  std::string scope = challenge.params.count("scope") ? challenge.params["scope"]
                                                      : "repository:" + ref_.repository + ":pull";
  std::unique_ptr<CURL, CurlFree> curl(curl_easy_init());
  auto escape = [&](const std::string& s) {
    char* e = curl_easy_escape(curl.get(), s.c_str(), static_cast<int>(s.size()));
    std::string out = e ? e : "";
    curl_free(e);
    return out;
  };
  std::string url = realm + (realm.find('?') == std::string::npos ? "?" : "&");
  if (challenge.params.count("service"))
    url += "service=" + escape(challenge.params["service"]) + "&";
  url += "scope=" + escape(scope);
  Configure(curl.get());
  std::string body;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(
      curl.get(), CURLOPT_WRITEFUNCTION,
      +[](char* data, size_t size, size_t n, void* user) -> size_t {
        auto* out = static_cast<std::string*>(user);
        if (out->size() > (1 << 20)) return 0;
        out->append(data, size * n);
        return size * n;
      });
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
  if (credentials_ && MaySendSecrets(realm)) {
    curl_easy_setopt(curl.get(), CURLOPT_USERNAME, credentials_->username.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_PASSWORD, credentials_->password.c_str());
  }
  CURLcode rc = curl_easy_perform(curl.get());
  long code = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &code);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(
        StrCat("token request to ", realm, ": ", errbuf[0] ? errbuf : curl_easy_strerror(rc)));
  }
  if (code != 200) {
    absl::Status st = HttpError(realm, code, body);
    return absl::Status(st.code(), StrCat("token for ", scope, ": ", st.message()));
  }
  auto j = nlohmann::json::parse(body, nullptr, false);
  std::string token;
  if (j.is_object()) {
    if (j.contains("token") && j["token"].is_string()) token = j["token"].get<std::string>();
    if (token.empty() && j.contains("access_token") && j["access_token"].is_string()) {
      token = j["access_token"].get<std::string>();
    }
  }
  if (token.empty()) {
    return absl::FailedPreconditionError(
        StrCat("token server ", realm, " answered without a token"));
  }
  std::lock_guard lock(mu_);
  authorization_ = "Authorization: Bearer " + token;
  return absl::OkStatus();
}

absl::StatusOr<FetchedManifest> RegistryClient::GetManifest(const std::string& tag_or_digest) {
  FetchedManifest out;
  std::string path = "/manifests/" + tag_or_digest;
  bool too_large = false;
  auto sink = [&](const char* data, size_t n, long) {
    if (out.body.size() + n > kMaxManifestBytes) {
      too_large = true;
      return false;
    }
    out.body.append(data, n);
    return true;
  };
  Response response;
  absl::Status st = Request(path, {"Accept: " + ManifestAccept()}, sink, &response);
  if (too_large) {
    return absl::FailedPreconditionError(
        StrCat("manifest ", base_url(), path, " is larger than ", kMaxManifestBytes, " bytes"));
  }
  if (absl::IsNotFound(st)) {
    return absl::NotFoundError(StrCat("manifest ", ref_.Name(), IsDigest(tag_or_digest) ? "@" : ":",
                                      tag_or_digest, " not found on ", ref_.registry, " (",
                                      st.message(), ")"));
  }
  RAUHA_RETURN_IF_ERROR(st);
  out.content_type = response.headers["content-type"];
  out.digest_header = response.headers["docker-content-digest"];
  return out;
}

absl::Status RegistryClient::GetBlob(const std::string& digest, BlobWriter* writer,
                                     const std::function<bool(uint64_t)>& progress) {
  std::string path = "/blobs/" + digest;
  for (int attempt = 0; attempt < 2; ++attempt) {
    uint64_t start = writer->offset();
    std::vector<std::string> headers;
    if (start > 0) headers.push_back(StrCat("Range: bytes=", start, "-"));
    absl::Status sink_status;
    bool first = true;
    Response response;
    auto sink = [&](const char* data, size_t n, long code) {
      if (first) {
        first = false;
        // A server that ignores Range sends the whole blob: start over.
        if (start > 0 && code == 200) sink_status = writer->Restart();
        if (!sink_status.ok()) return false;
      }
      sink_status = writer->Write(data, n);
      if (!sink_status.ok()) return false;
      if (!progress(writer->offset())) {
        sink_status = absl::CancelledError("pull cancelled");
        return false;
      }
      return true;
    };
    absl::Status st = Request(path, headers, sink, &response);
    if (!sink_status.ok()) return sink_status;
    if (response.code == 416 && start > 0) {
      // The partial file is not a prefix the server recognises: download it whole.
      RAUHA_RETURN_IF_ERROR(writer->Restart());
      continue;
    }
    return st;
  }
  return absl::UnavailableError(StrCat("GET ", base_url(), path, ": range requests keep failing"));
}

}  // namespace rauha::image
