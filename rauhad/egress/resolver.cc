#include "rauhad/egress/resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <cstring>
#include <sstream>

#include "rauha-common/strcat.h"

namespace rauha::egress {
namespace {

std::optional<sockaddr_storage> ParseAddress(const std::string& s) {
  sockaddr_storage ss{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, s.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    return ss;
  }
  if (::inet_pton(AF_INET6, s.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    return ss;
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<std::map<std::string, Addresses>> ParseHostsFile(std::string_view text) {
  std::map<std::string, Addresses> out;
  std::istringstream in{std::string(text)};
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string address, name;
    if (!(words >> address)) continue;
    auto a = ParseAddress(address);
    if (!a)
      return absl::InvalidArgumentError(
          StrCat("line ", n, ": \"", address, "\" is not an address"));
    bool any = false;
    while (words >> name) {
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out[name].push_back(*a);
      any = true;
    }
    if (!any) return absl::InvalidArgumentError(StrCat("line ", n, ": an address without names"));
  }
  return out;
}

Resolver::Resolver(std::optional<std::map<std::string, Addresses>> hosts, Done done, int threads)
    : hosts_(std::move(hosts)), done_(std::move(done)) {
  if (hosts_) return;
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

Resolver::~Resolver() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

std::optional<Addresses> Resolver::Lookup(uint64_t ticket, const std::string& name) {
  if (auto literal = ParseAddress(name)) return Addresses{*literal};
  if (hosts_) {
    auto it = hosts_->find(name);
    return it == hosts_->end() ? Addresses{} : it->second;
  }
  {
    std::lock_guard lock(mu_);
    queue_.emplace_back(ticket, name);
  }
  cv_.notify_one();
  return std::nullopt;
}

void Resolver::Work() {
  for (;;) {
    std::pair<uint64_t, std::string> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    Addresses out;
    if (::getaddrinfo(job.second.c_str(), nullptr, &hints, &res) == 0) {
      for (addrinfo* a = res; a; a = a->ai_next) {
        sockaddr_storage ss{};
        std::memcpy(&ss, a->ai_addr, a->ai_addrlen);
        out.push_back(ss);
      }
      ::freeaddrinfo(res);
    }
    done_(job.first, std::move(out));
  }
}

}  // namespace rauha::egress
