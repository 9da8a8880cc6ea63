#include "rauhad/egress/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstdio>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"
#include "rauhad/egress/destination_guard.h"
#include "rauhad/egress/proxy_request.h"
#include "rauhad/egress/tls_sni.h"
#include "rauhad/egress/zone_listener.h"

namespace rauha::egress {
namespace {

constexpr size_t kMaxHelloBytes = 5 + 16384 + 2048;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Best effort: the socket's buffer is empty this early, so a short answer fits.
void Answer(int fd, const char* status, const std::string& body) {
  std::string a = StrCat("HTTP/1.1 ", status,
                         "\r\nContent-Type: text/plain\r\nConnection: close"
                         "\r\nContent-Length: ",
                         body.size() + 1, "\r\n\r\n", body, "\n");
  (void)!::send(fd, a.data(), a.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace

struct EgressProxy::Zone {
  std::string name;
  std::vector<policy::HostRule> rules;
  UniqueFd listener;
  ProxyZoneStats stats;
};

struct EgressProxy::Conn {
  enum class State { kHead, kHello, kResolving, kConnecting, kRelay };
  uint64_t id = 0;
  std::string zone_id;
  UniqueFd client, upstream;
  State state = State::kHead;
  bool is_connect = false;
  std::string host;
  uint16_t port = 0;
  policy::HostRule rule;
  std::string up;    // from the zone, not yet sent upstream (or the head being read)
  std::string down;  // from upstream, not yet sent to the zone
  Addresses addrs;
  size_t next_addr = 0;
  bool client_eof = false, upstream_eof = false;
  bool up_shut = false, down_shut = false;
  bool upstream_watched = false;
  bool upstream_gone = false;  // hung up entirely: out of the epoll set
  // What each fd is registered for: epoll_ctl only when it changes (one syscall per event less).
  uint32_t client_mask = EPOLLIN;
  uint32_t upstream_mask = 0;
};

absl::StatusOr<std::unique_ptr<EgressProxy>> EgressProxy::Create(ProxyOptions options,
                                                                 EventSink sink) {
  std::unique_ptr<EgressProxy> p(new EgressProxy(std::move(options), std::move(sink)));
  if (!p->epoll_ || !p->wake_) return ErrnoStatus(errno, "egress proxy: epoll/eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = p->wake_.get();
  if (::epoll_ctl(p->epoll_.get(), EPOLL_CTL_ADD, p->wake_.get(), &ev) != 0)
    return ErrnoStatus(errno, "egress proxy: epoll_ctl");
  p->loop_ = std::thread([raw = p.get()] { raw->Loop(); });
  return p;
}

EgressProxy::EgressProxy(ProxyOptions options, EventSink sink)
    : sink_(std::move(sink)),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  resolver_ =
      std::make_unique<Resolver>(std::move(options.hosts), [this](uint64_t ticket, Addresses a) {
        {
          std::lock_guard lock(resolved_mu_);
          resolved_.emplace_back(ticket, std::move(a));
        }
        uint64_t one = 1;
        (void)!::write(wake_.get(), &one, sizeof(one));
      });
}

EgressProxy::~EgressProxy() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
  if (loop_.joinable()) loop_.join();
  resolver_.reset();  // its threads post to wake_ and resolved_
}

absl::Status EgressProxy::SetZone(const std::string& zone_id, const std::string& zone_name,
                                  pid_t shim_pid, const std::vector<policy::HostRule>& rules) {
  if (rules.empty()) {
    RemoveZone(zone_id);
    return absl::OkStatus();
  }
  std::lock_guard lock(mu_);
  auto it = zones_.find(zone_id);
  if (it != zones_.end()) {
    it->second->rules = rules;
    it->second->name = zone_name;
    return absl::OkStatus();
  }
  RAUHA_ASSIGN_OR_RETURN(UniqueFd listener, ListenInZone(shim_pid));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listener.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listener.get(), &ev) != 0)
    return ErrnoStatus(errno, "egress proxy: epoll_ctl (zone listener)");
  auto z = std::make_unique<Zone>();
  z->name = zone_name;
  z->rules = rules;
  zone_of_listener_[listener.get()] = zone_id;
  z->listener = std::move(listener);
  zones_[zone_id] = std::move(z);
  return absl::OkStatus();
}

void EgressProxy::RemoveZone(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  auto it = zones_.find(zone_id);
  if (it == zones_.end()) return;
  std::vector<uint64_t> ids;
  for (const auto& [id, c] : conns_) {
    if (c->zone_id == zone_id) ids.push_back(id);
  }
  for (uint64_t id : ids) Close(id);
  zone_of_listener_.erase(it->second->listener.get());
  zones_.erase(it);  // closing the listener takes it out of the epoll set
}

ProxyZoneStats EgressProxy::Stats(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  auto it = zones_.find(zone_id);
  return it == zones_.end() ? ProxyZoneStats{} : it->second->stats;
}

void EgressProxy::Loop() {
  epoll_event events[64];
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), events, 64, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "rauhad: egress proxy: epoll_wait: %s\n", std::strerror(errno));
      return;
    }
    std::lock_guard lock(mu_);
    if (stop_) return;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wake_.get()) {
        uint64_t v;
        (void)!::read(wake_.get(), &v, sizeof(v));
        OnResolved();
      } else if (auto l = zone_of_listener_.find(fd); l != zone_of_listener_.end()) {
        OnListener(l->second);
      } else if (auto c = conn_of_fd_.find(fd); c != conn_of_fd_.end()) {
        OnConn(c->second, fd, events[i].events);
      }
    }
  }
}

void EgressProxy::OnListener(const std::string& zone_id) {
  Zone& z = *zones_.at(zone_id);
  for (;;) {
    UniqueFd fd(::accept4(z.listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) return;  // EAGAIN, or an error the next accept will see again
    ++z.stats.connections;
    if (z.stats.open >= kMaxConnectionsPerZone) {
      ++z.stats.refused;
      Answer(fd.get(), "503 Service Unavailable",
             StrCat("the zone has ", kMaxConnectionsPerZone, " proxy connections open"));
      continue;
    }
    auto c = std::make_unique<Conn>();
    c->id = next_id_++;
    c->zone_id = zone_id;
    c->client = std::move(fd);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = c->client.get();
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, c->client.get(), &ev) != 0) continue;
    ++z.stats.open;
    conn_of_fd_[c->client.get()] = c->id;
    conns_[c->id] = std::move(c);
  }
}

bool EgressProxy::Allowed(const Zone& z, const std::string& host, uint16_t port,
                          const policy::HostRule** matched) const {
  for (const auto& r : z.rules) {
    if (policy::HostRuleAllows(r, host, port)) {
      *matched = &r;
      return true;
    }
  }
  return false;
}

void EgressProxy::Refuse(Conn& c, const std::string& reason, const char* answer) {
  auto zit = zones_.find(c.zone_id);
  if (zit != zones_.end()) ++zit->second->stats.refused;
  EnforcementEvent e;
  e.time_ns = NowNs();
  e.zone_id = c.zone_id;
  e.layer = "proxy";
  e.hook = c.is_connect ? "proxy/connect" : "proxy/http";
  e.action = "connect";
  e.decision = "deny";
  e.object = c.host.empty() ? std::string() : StrCat(c.host, ":", c.port);
  e.message =
      StrCat("the egress proxy refused ", e.object.empty() ? "a request" : e.object, ": ", reason);
  // Published before the client learns of it: a task that saw the refusal finds the event.
  if (sink_) sink_(e);
  if (answer) Answer(c.client.get(), answer, e.message);
  Close(c.id);
}

void EgressProxy::Close(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  conn_of_fd_.erase(c.client.get());
  if (c.upstream) conn_of_fd_.erase(c.upstream.get());
  if (auto z = zones_.find(c.zone_id); z != zones_.end() && z->second->stats.open > 0)
    --z->second->stats.open;
  conns_.erase(it);  // closing the fds takes them out of the epoll set
}

void EgressProxy::Advance(Conn& c) {
  Zone& z = *zones_.at(c.zone_id);
  if (c.state == Conn::State::kHead) {
    auto req = ParseProxyRequest(c.up);
    if (!req.ok()) return Refuse(c, ToStd(req.status().message()), "400 Bad Request");
    if (!req->has_value()) return;
    ProxyRequest& r = **req;
    c.is_connect = r.is_connect;
    c.host = r.host;
    c.port = r.port;
    const policy::HostRule* rule = nullptr;
    if (!Allowed(z, c.host, c.port, &rule)) {
      return Refuse(c, StrCat("not in the zone's [network] allowed_hosts"), "403 Forbidden");
    }
    c.rule = *rule;
    if (c.is_connect) {
      c.up.erase(0, r.head_bytes);  // what follows the head is the tunnel's first bytes
      static constexpr std::string_view kOk = "HTTP/1.1 200 Connection established\r\n\r\n";
      if (::send(c.client.get(), kOk.data(), kOk.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(kOk.size())) {
        return Close(c.id);
      }
      c.state = Conn::State::kHello;
    } else {
      c.up = r.upstream_head + c.up.substr(r.head_bytes);
      c.state = Conn::State::kResolving;
    }
  }
  if (c.state == Conn::State::kHello) {
    SniResult sni = ParseClientHelloSni(c.up);
    switch (sni.status) {
      case SniStatus::kNeedMore:
        if (c.up.size() >= kMaxHelloBytes) return Refuse(c, "the ClientHello is too long", nullptr);
        return;
      case SniStatus::kNotTls:
        return Refuse(c, "the tunnel does not start with a TLS ClientHello", nullptr);
      case SniStatus::kNoName:
        return Refuse(c, "the TLS ClientHello names no server (SNI)", nullptr);
      case SniStatus::kFound:
        if (sni.name != c.host) {
          return Refuse(
              c, StrCat("the TLS server name \"", sni.name, "\" disagrees with the CONNECT line"),
              nullptr);
        }
    }
    c.state = Conn::State::kResolving;
  }
  if (c.state == Conn::State::kResolving) {
    Watch(c);  // stop reading the client while we resolve and connect
    auto answer = resolver_->Lookup(c.id, c.host);
    if (!answer) return;  // OnResolved continues
    c.addrs = std::move(*answer);
    StartConnect(c);
  }
}

void EgressProxy::OnResolved() {
  std::vector<std::pair<uint64_t, Addresses>> done;
  {
    std::lock_guard lock(resolved_mu_);
    done.swap(resolved_);
  }
  for (auto& [id, addrs] : done) {
    auto it = conns_.find(id);
    if (it == conns_.end() || it->second->state != Conn::State::kResolving) continue;
    it->second->addrs = std::move(addrs);
    StartConnect(*it->second);
  }
}

void EgressProxy::StartConnect(Conn& c) {
  if (c.next_addr == 0) {
    // Only what the name resolved to, minus what the proxy never reaches unless the rule is
    // that very address.
    Addresses ok;
    std::string why;
    for (const auto& a : c.addrs) {
      std::string refused = RefusedDestination(a);
      if (!refused.empty() && c.rule.host != AddressText(a)) {
        why = StrCat(AddressText(a), " is ", refused);
        continue;
      }
      ok.push_back(a);
    }
    if (ok.empty()) {
      return Refuse(c,
                    why.empty() ? std::string("the name does not resolve")
                                : StrCat("it resolves to ", why,
                                         ", which the proxy does not reach unless a rule names "
                                         "that address"),
                    c.is_connect ? nullptr : "403 Forbidden");
    }
    c.addrs = std::move(ok);
  }
  while (c.next_addr < c.addrs.size()) {
    sockaddr_storage a = c.addrs[c.next_addr++];
    socklen_t len = sizeof(sockaddr_in);
    if (a.ss_family == AF_INET) {
      reinterpret_cast<sockaddr_in&>(a).sin_port = htons(c.port);
    } else {
      reinterpret_cast<sockaddr_in6&>(a).sin6_port = htons(c.port);
      len = sizeof(sockaddr_in6);
    }
    if (c.upstream) {
      conn_of_fd_.erase(c.upstream.get());
      c.upstream.reset();
      c.upstream_watched = false;
      c.upstream_mask = 0;
    }
    UniqueFd fd(::socket(a.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) continue;
    int rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), len);
    if (rc != 0 && errno != EINPROGRESS) continue;
    c.upstream = std::move(fd);
    conn_of_fd_[c.upstream.get()] = c.id;
    c.state = Conn::State::kConnecting;
    Watch(c);
    return;
  }
  if (!c.is_connect) Answer(c.client.get(), "502 Bad Gateway", "could not connect upstream");
  Close(c.id);
}

void EgressProxy::Watch(Conn& c) {
  auto set = [&](int fd, uint32_t want, uint32_t* mask, bool* watched) {
    epoll_event ev{};
    ev.events = want;
    ev.data.fd = fd;
    if (watched && !*watched) {
      ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev);
      *watched = true;
    } else if (*mask != want) {
      ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
    }
    *mask = want;
  };
  using S = Conn::State;
  uint32_t client = 0, upstream = 0;
  if (c.state == S::kHead || c.state == S::kHello) client = EPOLLIN;
  if (c.state == S::kConnecting) upstream = EPOLLOUT;
  if (c.state == S::kRelay) {
    if (!c.client_eof && c.up.size() < kBufferBytes) client |= EPOLLIN;
    if (!c.down.empty()) client |= EPOLLOUT;
    if (!c.upstream_eof && c.down.size() < kBufferBytes) upstream |= EPOLLIN;
    if (!c.up.empty()) upstream |= EPOLLOUT;
  }
  set(c.client.get(), client, &c.client_mask, nullptr);
  if (c.upstream && !c.upstream_gone) {
    set(c.upstream.get(), upstream, &c.upstream_mask, &c.upstream_watched);
  }
}

void EgressProxy::OnConn(uint64_t id, int fd, uint32_t events) {
  Conn& c = *conns_.at(id);
  Zone& z = *zones_.at(c.zone_id);
  using S = Conn::State;
  bool is_client = fd == c.client.get();
  if (!is_client && c.state == S::kConnecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return StartConnect(c);  // the next address, or 502
    c.state = S::kRelay;
  } else if (is_client && (c.state == S::kHead || c.state == S::kHello)) {
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      if (n < 0 && errno == EAGAIN) return;
      return Close(id);  // gone before it said what it wanted
    }
    c.up.append(buf, static_cast<size_t>(n));
    Advance(c);
    return;
  } else if (c.state != S::kRelay) {
    if (events & (EPOLLERR | EPOLLHUP)) Close(id);  // the client left while we resolved
    return;
  }
  // Relay: read what there is room for, write what is pending, pass half-closes on.
  auto pull = [&](int from, std::string& into, bool& eof) {
    if (eof || into.size() >= kBufferBytes) return true;
    ssize_t n = ::recv(from, scratch_.get(), kBufferBytes - into.size(), 0);
    if (n > 0) into.append(scratch_.get(), static_cast<size_t>(n));
    if (n == 0) eof = true;
    return n >= 0 || errno == EAGAIN || errno == EINTR;
  };
  auto push = [&](int to, std::string& from, uint64_t& counter) {
    if (from.empty()) return true;
    ssize_t n = ::send(to, from.data(), from.size(), MSG_NOSIGNAL);
    if (n > 0) {
      if (static_cast<size_t>(n) == from.size()) {
        from.clear();
      } else {
        from.erase(0, static_cast<size_t>(n));
      }
      counter += static_cast<uint64_t>(n);
    }
    return n >= 0 || errno == EAGAIN || errno == EINTR;
  };
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    bool ok = is_client ? pull(fd, c.up, c.client_eof) : pull(fd, c.down, c.upstream_eof);
    if (!ok) return Close(id);
  }
  if (!push(c.upstream.get(), c.up, z.stats.bytes_out) ||
      !push(c.client.get(), c.down, z.stats.bytes_in)) {
    return Close(id);
  }
  if (c.client_eof && c.up.empty() && !c.up_shut && !c.upstream_gone) {
    ::shutdown(c.upstream.get(), SHUT_WR);
    c.up_shut = true;
  }
  if (c.upstream_eof && c.down.empty() && !c.down_shut) {
    ::shutdown(c.client.get(), SHUT_WR);
    c.down_shut = true;
  }
  // A side that hung up entirely (both directions) and was read to its end reports EPOLLHUP
  // for ever: the client's end is the connection's; upstream's leaves what is still buffered
  // for the client to deliver.
  if ((events & EPOLLHUP) && is_client && c.client_eof) return Close(id);
  if ((events & EPOLLHUP) && !is_client && c.upstream_eof && !c.upstream_gone) {
    if (!c.up.empty()) return Close(id);  // undeliverable
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, c.upstream.get(), nullptr);
    c.upstream_gone = true;
    c.up_shut = true;
  }
  if (c.up_shut && c.down_shut) return Close(id);
  Watch(c);
}

}  // namespace rauha::egress
