// rauhad's gRPC socket without a moment at a wider mode than 0600. gRPC creates and binds
// that socket itself (its mode is then the socket inode's 0777 less the umask, and it is
// reachable at once), so it binds it in a directory only rauhad's user can enter, beside the
// final path; once gRPC listens, the socket is made 0600 there and renamed into place (a
// rename keeps the inode, and so the mode).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rauha {

class PrivateSocket {
 public:
  // Makes the directory `final_path` + "'s bind directory" (".<name>.bind" beside it, 0700),
  // first removing one a killed rauhad left (a directory of this user holding at most a
  // socket). FailedPrecondition when that name is taken by anything else, InvalidArgument
  // when the path to bind would not fit a unix socket address.
  static absl::StatusOr<PrivateSocket> Prepare(const std::string& final_path);

  PrivateSocket(PrivateSocket&& other) noexcept;
  PrivateSocket& operator=(PrivateSocket&&) = delete;
  // Removes the directory and whatever is in it when Publish() did not happen.
  ~PrivateSocket();

  // Where gRPC is to bind.
  const std::string& bind_path() const { return bind_path_; }
  // chmod 0600 the bound socket, rename it to the final path (replacing a stale one), remove
  // the directory.
  absl::Status Publish();

 private:
  PrivateSocket(std::string final_path, std::string dir);
  void Remove();

  std::string final_path_;
  std::string dir_;
  std::string bind_path_;
};

// The bind directory of `final_path`: ".<name>.bind" in the same directory.
std::string PrivateSocketDir(const std::string& final_path);

}  // namespace rauha
