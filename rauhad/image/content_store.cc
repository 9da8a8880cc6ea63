#include "rauhad/image/content_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <vector>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"

namespace rauha::image {
namespace {

absl::Status MakeDir(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return absl::InternalError(StrCat("mkdir ", path, ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, const char* p, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, StrCat("write ", path));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ContentStore::Init() const {
  RAUHA_RETURN_IF_ERROR(MakeDir(root_ + "/sha256"));
  return MakeDir(root_ + "/ingest");
}

std::string ContentStore::BlobPath(const std::string& digest) const {
  return root_ + "/sha256/" + DigestHex(digest);
}

absl::StatusOr<uint64_t> ContentStore::Size(const std::string& digest) const {
  RAUHA_RETURN_IF_ERROR(CheckDigest(digest));
  struct stat st;
  std::string path = BlobPath(digest);
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, StrCat("stat ", path));
  return static_cast<uint64_t>(st.st_size);
}

absl::StatusOr<std::string> ContentStore::ReadSmall(const std::string& digest,
                                                    uint64_t max_size) const {
  RAUHA_RETURN_IF_ERROR(CheckDigest(digest));
  std::string path = BlobPath(digest);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus(errno, StrCat("open ", path));
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, StrCat("read ", path));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_size) {
      return absl::FailedPreconditionError(
          StrCat("blob ", digest, " is larger than ", max_size, " bytes"));
    }
  }
  if (std::string got = Sha256Digest(out); got != digest) {
    return absl::DataLossError(StrCat("blob ", path, " is corrupt: its content hashes to ", got));
  }
  return out;
}

absl::Status ContentStore::Remove(const std::string& digest) const {
  RAUHA_RETURN_IF_ERROR(CheckDigest(digest));
  for (const std::string& path :
       {BlobPath(digest), root_ + "/ingest/" + DigestHex(digest) + ".partial"}) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus(errno, StrCat("unlink ", path));
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> ContentStore::List() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root_ + "/sha256", ec)) {
    std::string digest = "sha256:" + entry.path().filename().string();
    if (IsDigest(digest)) out.push_back(std::move(digest));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<BlobWriter>> ContentStore::Ingest(const std::string& digest,
                                                                 uint64_t size, bool resume) const {
  RAUHA_RETURN_IF_ERROR(CheckDigest(digest));
  if (!resume) {
    // A private temp file: writers of the same blob (an import beside a pull) never share it.
    RAUHA_ASSIGN_OR_RETURN(auto w, IngestUnknown());
    w->expected_digest_ = digest;
    w->expected_size_ = size;
    return w;
  }
  std::unique_ptr<BlobWriter> w(new BlobWriter());
  w->store_ = this;
  w->expected_digest_ = digest;
  w->expected_size_ = size;
  w->resumable_ = true;
  w->temp_path_ = root_ + "/ingest/" + DigestHex(digest) + ".partial";
  w->fd_.reset(::open(w->temp_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!w->fd_) return ErrnoStatus(errno, StrCat("open ", w->temp_path_));
  // The hash state of the partial bytes is rebuilt by reading them: SHA-256 state cannot be
  // saved portably, and re-reading a local file is far cheaper than downloading it again.
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(w->fd_.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, StrCat("read ", w->temp_path_));
    }
    if (n == 0) break;
    w->hash_.Update(buf, static_cast<size_t>(n));
    w->written_ += static_cast<uint64_t>(n);
  }
  if (size != 0 && w->written_ > size) RAUHA_RETURN_IF_ERROR(w->Restart());
  return w;
}

absl::StatusOr<std::unique_ptr<BlobWriter>> ContentStore::IngestUnknown() const {
  std::unique_ptr<BlobWriter> w(new BlobWriter());
  w->store_ = this;
  std::string templ = root_ + "/ingest/tmp.XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  w->fd_.reset(::mkostemp(buf.data(), O_CLOEXEC));
  if (!w->fd_) return ErrnoStatus(errno, StrCat("mkstemp ", templ));
  w->temp_path_ = buf.data();
  return w;
}

BlobWriter::~BlobWriter() {
  if (!done_ && !resumable_) Discard();
}

absl::Status BlobWriter::Write(const void* data, size_t size) {
  if (expected_size_ != 0 && written_ + size > expected_size_) {
    return absl::ResourceExhaustedError(
        StrCat("blob ", expected_digest_, " is longer than its stated ", expected_size_, " bytes"));
  }
  RAUHA_RETURN_IF_ERROR(WriteAll(fd_.get(), static_cast<const char*>(data), size, temp_path_));
  hash_.Update(data, size);
  written_ += size;
  return absl::OkStatus();
}

absl::Status BlobWriter::Restart() {
  if (::ftruncate(fd_.get(), 0) != 0 || ::lseek(fd_.get(), 0, SEEK_SET) != 0) {
    return ErrnoStatus(errno, StrCat("truncate ", temp_path_));
  }
  hash_.Reset();
  written_ = 0;
  return absl::OkStatus();
}

absl::StatusOr<std::string> BlobWriter::Commit() {
  std::string got = hash_.Digest();
  if (!expected_digest_.empty() && got != expected_digest_) {
    Discard();
    return absl::DataLossError(StrCat("digest mismatch: expected ", expected_digest_, ", the ",
                                      written_, " bytes received hash to ", got));
  }
  if (expected_size_ != 0 && written_ != expected_size_) {
    Discard();
    return absl::DataLossError(
        StrCat("blob ", got, ": expected ", expected_size_, " bytes, received ", written_));
  }
  if (::fsync(fd_.get()) != 0) return ErrnoStatus(errno, StrCat("fsync ", temp_path_));
  fd_.reset();
  std::string final_path = store_->BlobPath(got);
  if (::rename(temp_path_.c_str(), final_path.c_str()) != 0) {
    int err = errno;
    Discard();
    return ErrnoStatus(err, StrCat("rename ", temp_path_, " to ", final_path));
  }
  done_ = true;
  return got;
}

void BlobWriter::Discard() {
  fd_.reset();
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
  done_ = true;
}

}  // namespace rauha::image
