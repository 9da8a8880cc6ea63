// Content-addressed blobs under <state-dir>/blobs: sha256/<hex> holds verified blobs only;
// ingest/ holds downloads in progress. A blob becomes visible by rename(2) after its bytes
// hashed to its digest, so a reader never sees a partial or unverified blob.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rauha-common/fd.h"
#include "rauhad/image/digest.h"

namespace rauha::image {

class BlobWriter;

class ContentStore {
 public:
  // `root` is <state-dir>/blobs; Init() creates it.
  explicit ContentStore(std::string root) : root_(std::move(root)) {}
  absl::Status Init() const;

  const std::string& root() const { return root_; }
  std::string BlobPath(const std::string& digest) const;
  // Size of a stored blob, NotFound if absent.
  absl::StatusOr<uint64_t> Size(const std::string& digest) const;
  bool Has(const std::string& digest) const { return Size(digest).ok(); }
  // A small stored blob (manifest, config) read whole and hashed again: DataLoss if the file
  // no longer matches its name, FailedPrecondition past `max_size`.
  absl::StatusOr<std::string> ReadSmall(const std::string& digest, uint64_t max_size) const;
  // Removes a stored blob and any partial download of it; OK if absent.
  absl::Status Remove(const std::string& digest) const;
  // Digests of every stored blob.
  std::vector<std::string> List() const;

  // A writer for a blob of known digest (and size, 0 = unknown). With `resume`, the partial
  // file is ingest/<hex>.partial and survives the writer (one resumable writer per blob at a
  // time: the puller shares downloads): a partial download left by an earlier attempt is kept,
  // its bytes hashed again so the hash state continues where it stopped, and offset() tells
  // where to ask the server to start. Without, the temp file is private and removed unless
  // committed.
  absl::StatusOr<std::unique_ptr<BlobWriter>> Ingest(const std::string& digest, uint64_t size,
                                                     bool resume) const;
  // A writer whose digest is learnt from the bytes (import of a docker save archive).
  absl::StatusOr<std::unique_ptr<BlobWriter>> IngestUnknown() const;

 private:
  std::string root_;
};

class BlobWriter {
 public:
  ~BlobWriter();
  uint64_t offset() const { return written_; }
  // Appends and hashes; ResourceExhausted past the expected size (the sender is lying).
  absl::Status Write(const void* data, size_t size);
  // Back to zero bytes (the server ignored a Range request and sent everything).
  absl::Status Restart();
  // Verifies size and digest, fsyncs and renames into the store; returns the digest. On a
  // mismatch the partial file is removed and DataLoss names both digests.
  absl::StatusOr<std::string> Commit();
  // Removes the temp file. A resumable writer destroyed uncommitted keeps it instead.
  void Discard();

 private:
  friend class ContentStore;
  BlobWriter() = default;
  const ContentStore* store_ = nullptr;
  std::string expected_digest_;  // "" for IngestUnknown
  uint64_t expected_size_ = 0;   // 0: unknown
  std::string temp_path_;
  UniqueFd fd_;
  Sha256 hash_;
  uint64_t written_ = 0;
  bool resumable_ = false;
  bool done_ = false;
};

}  // namespace rauha::image
