// Names to addresses for the egress proxy, resolved on the host (zones need no DNS). With a
// hosts file (--egress-hosts, /etc/hosts syntax) only that file is consulted: tests point the
// proxy at their own "internet" and no lookup leaves the machine. Otherwise getaddrinfo runs on
// a small pool of threads and the answer is posted back to the proxy's loop (`Done`).
#pragma once

#include <sys/socket.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace rauha::egress {

using Addresses = std::vector<sockaddr_storage>;

// "ADDRESS NAME [NAME...]" lines, '#' comments. Names lower-cased.
absl::StatusOr<std::map<std::string, Addresses>> ParseHostsFile(std::string_view text);

class Resolver {
 public:
  // `done(ticket, addresses)` is called on a resolver thread (empty: no answer).
  using Done = std::function<void(uint64_t ticket, Addresses addresses)>;
  // `hosts`: when set, the only source of answers (answers synchronously through Lookup).
  Resolver(std::optional<std::map<std::string, Addresses>> hosts, Done done, int threads = 2);
  ~Resolver();

  // An answer now (hosts file), or nullopt: `done` will be called with `ticket` later.
  std::optional<Addresses> Lookup(uint64_t ticket, const std::string& name);

 private:
  void Work();

  std::optional<std::map<std::string, Addresses>> hosts_;
  Done done_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<uint64_t, std::string>> queue_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace rauha::egress
