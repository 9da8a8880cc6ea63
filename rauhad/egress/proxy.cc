#include "rauhad/egress/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"
#include "rauhad/egress/destination_guard.h"
#include "rauhad/egress/proxy_request.h"
#include "rauhad/egress/tls_sni.h"
#include "rauhad/egress/zone_listener.h"

namespace rauha::egress {
namespace {

constexpr size_t kMaxHelloBytes = 5 + 16384 + 2048;

// Nothing of a direction is waiting to be written.
bool Drained(const std::string& pending, const SplicePipe& pipe) {
  return pending.empty() && pipe.pending() == 0;
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The relay writes what it read as soon as it has it, often a small piece after another (a
// response's head, then its body, as two TLS records): with Nagle's algorithm the second waits
// for the peer's delayed ACK, 40 ms per response. Relays set TCP_NODELAY on both sides.
void NoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

bool IsAddressLiteral(const std::string& host) {
  in_addr v4{};
  return host.find(':') != std::string::npos || ::inet_pton(AF_INET, host.c_str(), &v4) == 1;
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
  std::vector<policy::SecretRule> secrets;
  std::unique_ptr<ZoneCa> ca;
  std::string trust_bundle;
  std::map<std::string, SecretBindings> task_bindings;  // by task id
  SecretBindings bindings;                              // all of them
  bool budget_reported = false;  // the "budget spent" event went out (until a new budget)
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
  // Directions whose bytes the proxy does not read move through a pipe with splice(2) (empty:
  // through `up`/`down`). What is in the string goes first: the head or ClientHello read before.
  SplicePipe up_pipe, down_pipe;
  Addresses addrs;
  size_t next_addr = 0;
  bool client_eof = false, upstream_eof = false;
  bool up_shut = false, down_shut = false;
  bool upstream_watched = false;
  bool upstream_gone = false;  // hung up entirely: out of the epoll set
  // What each fd is registered for: epoll_ctl only when it changes (one syscall per event less).
  uint32_t client_mask = EPOLLIN;
  uint32_t upstream_mask = 0;
  int64_t connect_deadline_ns = 0;  // while kConnecting
  // Secrets: requests rewritten (plain HTTP of a zone with secrets, or an intercepted CONNECT).
  std::unique_ptr<RequestRewriter> rewriter;
  bool intercept = false;  // CONNECT to a host a secret names: TLS ends here
  std::unique_ptr<TlsEndpoint> tls_zone, tls_up;
  std::string req_plain, up_plain, resp_plain;
  bool tls_up_closed = false, tls_zone_closed = false;
  std::set<std::string> misuse_reported;  // "secret\nwhere", one event each per connection
};

absl::StatusOr<std::unique_ptr<EgressProxy>> EgressProxy::Create(ProxyOptions options,
                                                                 EventSink sink) {
  std::unique_ptr<EgressProxy> p(new EgressProxy(std::move(options), std::move(sink)));
  if (!p->epoll_ || !p->wake_) return ErrnoStatus(errno, "egress proxy: epoll/eventfd");
  RAUHA_ASSIGN_OR_RETURN(p->server_ctx_, NewServerContext());
  RAUHA_ASSIGN_OR_RETURN(p->client_ctx_, NewClientContext(p->options_.extra_ca_file));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = p->wake_.get();
  if (::epoll_ctl(p->epoll_.get(), EPOLL_CTL_ADD, p->wake_.get(), &ev) != 0)
    return ErrnoStatus(errno, "egress proxy: epoll_ctl");
  p->loop_ = std::thread([raw = p.get()] { raw->Loop(); });
  return p;
}

EgressProxy::EgressProxy(ProxyOptions options, EventSink sink)
    : options_(options),
      sink_(std::move(sink)),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!options_.ca_dir.empty()) {
    ca_store_ = std::make_unique<ZoneCaStore>(options_.ca_dir, options_.ca_key_file);
  }
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

namespace {

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

absl::Status EgressProxy::SetZone(const std::string& zone_id, const std::string& zone_name,
                                  pid_t shim_pid, const std::vector<policy::HostRule>& rules,
                                  const std::vector<policy::SecretRule>& secrets) {
  if (rules.empty()) {
    RemoveZone(zone_id);
    return absl::OkStatus();
  }
  // The CA and its bundle first (no lock: key generation takes a millisecond or two).
  std::unique_ptr<ZoneCa> ca;
  std::string bundle;
  if (!secrets.empty()) {
    if (options_.trust_dir.empty()) {
      return absl::FailedPreconditionError("this rauhad's egress proxy has no trust directory");
    }
    {
      std::lock_guard lock(mu_);
      auto it = zones_.find(zone_id);
      if (it != zones_.end() && it->second->ca) bundle = it->second->trust_bundle;
    }
    if (bundle.empty()) {
      if (ca_store_) {
        // The same CA as before a restart: tasks that outlived it keep trusting the proxy.
        std::string replaced;
        RAUHA_ASSIGN_OR_RETURN(ca, ca_store_->LoadOrCreate(zone_id, zone_name, &replaced));
        if (!replaced.empty()) {
          std::fprintf(stderr, "rauhad: egress proxy: zone %s gets a new CA: %s\n",
                       zone_name.c_str(), replaced.c_str());
        }
      } else {
        RAUHA_ASSIGN_OR_RETURN(ca, ZoneCa::Create(zone_name));
      }
      bundle = StrCat(options_.trust_dir, "/", zone_id, ".pem");
      if (::mkdir(options_.trust_dir.c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoStatus(errno, StrCat("mkdir ", options_.trust_dir));
      }
      RAUHA_RETURN_IF_ERROR(
          WriteTrustBundle(bundle, ReadWholeFile(options_.host_ca_bundle), ca->cert_pem()));
    }
  }
  std::lock_guard lock(mu_);
  auto it = zones_.find(zone_id);
  if (it != zones_.end()) {
    it->second->rules = rules;
    it->second->name = zone_name;
    it->second->secrets = secrets;
    if (ca) {
      it->second->ca = std::move(ca);
      it->second->trust_bundle = bundle;
    }
    return absl::OkStatus();
  }
  auto listening = ListenInZone(shim_pid);
  if (!listening.ok()) {
    if (ca) ::unlink(bundle.c_str());
    return listening.status();
  }
  UniqueFd listener = *std::move(listening);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listener.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listener.get(), &ev) != 0)
    return ErrnoStatus(errno, "egress proxy: epoll_ctl (zone listener)");
  auto z = std::make_unique<Zone>();
  z->name = zone_name;
  z->rules = rules;
  z->secrets = secrets;
  z->ca = std::move(ca);
  z->trust_bundle = z->ca ? bundle : std::string();
  if (auto kept = kept_counters_.find(zone_id); kept != kept_counters_.end()) {
    z->stats = kept->second;
    kept_counters_.erase(kept);
  }
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
  if (!it->second->trust_bundle.empty()) ::unlink(it->second->trust_bundle.c_str());
  zone_of_listener_.erase(it->second->listener.get());
  ProxyZoneStats& kept = kept_counters_[zone_id];
  kept = it->second->stats;
  kept.open = 0;
  kept.bytes_max.reset();
  zones_.erase(it);  // closing the listener takes it out of the epoll set
}

void EgressProxy::ForgetZone(const std::string& zone_id) {
  {
    std::lock_guard lock(mu_);
    kept_counters_.erase(zone_id);
  }
  if (ca_store_) ca_store_->Remove(zone_id);
}

void EgressProxy::ForgetZonesExcept(const std::set<std::string>& zone_ids) {
  {
    std::lock_guard lock(mu_);
    std::erase_if(kept_counters_, [&](const auto& kv) { return !zone_ids.count(kv.first); });
  }
  if (!ca_store_) return;
  for (const auto& id : ca_store_->ListZoneIds()) {
    if (!zone_ids.count(id)) ca_store_->Remove(id);
  }
}

void EgressProxy::SeedCounters(const std::string& zone_id, const EgressCounts& counters) {
  std::lock_guard lock(mu_);
  auto it = zones_.find(zone_id);
  // The counts only: a served zone keeps its open connections and its budget; a kept one has
  // neither.
  ProxyZoneStats& stats = it == zones_.end() ? kept_counters_[zone_id] : it->second->stats;
  static_cast<EgressCounts&>(stats) = counters;
}

std::map<std::string, ProxyZoneStats> EgressProxy::AllCounters() {
  std::lock_guard lock(mu_);
  std::map<std::string, ProxyZoneStats> out = kept_counters_;
  for (const auto& [id, z] : zones_) out[id] = z->stats;
  return out;
}

std::string EgressProxy::TrustBundlePath(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  auto it = zones_.find(zone_id);
  return it == zones_.end() ? std::string() : it->second->trust_bundle;
}

absl::Status EgressProxy::AddTaskSecrets(const std::string& zone_id, const std::string& task_id,
                                         SecretBindings bindings) {
  std::lock_guard lock(mu_);
  auto it = zones_.find(zone_id);
  if (it == zones_.end() || !it->second->ca) {
    return absl::FailedPreconditionError(
        "the zone has no egress proxy with secrets (its policy needs [network] allowed_hosts "
        "and [secrets], and a network mode other than \"host\")");
  }
  Zone& z = *it->second;
  z.task_bindings[task_id] = std::move(bindings);
  z.bindings.clear();
  for (const auto& [id, b] : z.task_bindings)
    z.bindings.insert(z.bindings.end(), b.begin(), b.end());
  return absl::OkStatus();
}

void EgressProxy::RemoveTaskSecrets(const std::string& zone_id, const std::string& task_id) {
  std::lock_guard lock(mu_);
  auto it = zones_.find(zone_id);
  if (it == zones_.end()) return;
  Zone& z = *it->second;
  if (z.task_bindings.erase(task_id) == 0) return;
  z.bindings.clear();
  for (const auto& [id, b] : z.task_bindings)
    z.bindings.insert(z.bindings.end(), b.begin(), b.end());
}

size_t EgressProxy::RevokeSecret(const std::string& name) {
  std::lock_guard lock(mu_);
  size_t revoked = 0;
  for (auto& [zone_id, z] : zones_) {
    size_t before = revoked;
    for (auto& [task_id, b] : z->task_bindings) {
      revoked += std::erase_if(b, [&](const auto& binding) { return binding->name == name; });
    }
    if (revoked == before) continue;
    z->bindings.clear();
    for (const auto& [task_id, b] : z->task_bindings)
      z->bindings.insert(z->bindings.end(), b.begin(), b.end());
  }
  return revoked;
}

void EgressProxy::SetByteBudget(const std::string& zone_id, std::optional<uint64_t> bytes_max) {
  std::lock_guard lock(mu_);
  auto it = zones_.find(zone_id);
  if (it == zones_.end()) return;
  Zone& z = *it->second;
  z.stats.bytes_max = bytes_max;
  if (BudgetLeft(z) > 0) z.budget_reported = false;  // a larger budget: the next end is news
}

uint64_t EgressProxy::BudgetLeft(const Zone& z) {
  if (!z.stats.bytes_max) return UINT64_MAX;
  uint64_t used = z.stats.bytes_in + z.stats.bytes_out;
  return used >= *z.stats.bytes_max ? 0 : *z.stats.bytes_max - used;
}

void EgressProxy::EndZoneConnections(const std::string& zone_id) {
  auto zit = zones_.find(zone_id);
  if (zit == zones_.end()) return;
  Zone& z = *zit->second;
  std::vector<uint64_t> ids;
  for (const auto& [id, c] : conns_) {
    if (c->zone_id == zone_id) ids.push_back(id);
  }
  z.stats.budget_closed += ids.size();
  if (!z.budget_reported) {
    z.budget_reported = true;
    EnforcementEvent e;
    e.time_ns = NowNs();
    e.zone_id = zone_id;
    e.layer = "proxy";
    e.hook = "proxy/budget";
    e.action = "egress_budget";
    e.decision = "deny";
    e.object = StrCat("egress_bytes_max=", *z.stats.bytes_max);
    e.message =
        StrCat("zone \"", z.name, "\" has used its egress budget of ", *z.stats.bytes_max,
               " bytes ([network] egress_bytes_max): the egress proxy "
               "closed its ",
               ids.size(), " open connection", ids.size() == 1 ? "" : "s", " and refuses new ones");
    // Published before the connections end: a task that saw its connection cut finds it.
    if (sink_) sink_(e);
  }
  for (uint64_t id : ids) Close(id);
}

std::optional<ProxyZoneStats> EgressProxy::Stats(const std::string& zone_id) {
  std::lock_guard lock(mu_);
  auto it = zones_.find(zone_id);
  if (it == zones_.end()) return std::nullopt;
  return it->second->stats;
}

void EgressProxy::Loop() {
  epoll_event events[64];
  for (;;) {
    // Connections waiting for an upstream are checked for their deadline every 250 ms.
    int timeout_ms;
    {
      std::lock_guard lock(mu_);
      timeout_ms = connecting_ > 0 ? 250 : -1;
    }
    int n = ::epoll_wait(epoll_.get(), events, 64, timeout_ms);
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
    if (connecting_ > 0) SweepConnectTimeouts();
  }
}

void EgressProxy::SweepConnectTimeouts() {
  const int64_t now = NowNs();
  std::vector<uint64_t> late;
  for (const auto& [id, c] : conns_) {
    if (c->state == Conn::State::kConnecting && c->connect_deadline_ns != 0 &&
        now >= c->connect_deadline_ns) {
      late.push_back(id);
    }
  }
  for (uint64_t id : late) {
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    Conn& c = *it->second;
    // A CONNECT was answered 200 already (the ClientHello had to be read): it is closed.
    Refuse(c,
           StrCat("the upstream did not accept the connection within ", options_.connect_timeout_ms,
                  " ms"),
           c.is_connect ? nullptr : "504 Gateway Timeout");
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
    NoDelay(fd.get());
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
  e.object = c.host.empty() ? std::string() : HostPort(c.host, c.port);
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
  pipes_.Give(std::move(c.up_pipe));
  pipes_.Give(std::move(c.down_pipe));
  conn_of_fd_.erase(c.client.get());
  if (c.upstream) conn_of_fd_.erase(c.upstream.get());
  if (c.connect_deadline_ns != 0 && connecting_ > 0) --connecting_;
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
    if (BudgetLeft(z) == 0) {
      return Refuse(c,
                    StrCat("zone \"", z.name, "\" has used its egress budget of ",
                           *z.stats.bytes_max, " bytes ([network] egress_bytes_max)"),
                    "403 Forbidden");
    }
    const policy::HostRule* rule = nullptr;
    if (!Allowed(z, c.host, c.port, &rule)) {
      return Refuse(c, StrCat("not in the zone's [network] allowed_hosts"), "403 Forbidden");
    }
    c.rule = *rule;
    if (!z.secrets.empty()) {
      for (const auto& secret : z.secrets) {
        for (const auto& h : secret.hosts) {
          if (c.is_connect && policy::HostRuleAllows(h, c.host, c.port)) c.intercept = true;
        }
      }
      // Plain requests of a zone with secrets, and intercepted tunnels, have their heads read.
      if (!c.is_connect || c.intercept) {
        c.rewriter = std::make_unique<RequestRewriter>(c.host, c.port, z.bindings);
      }
    }
    if (c.is_connect) {
      c.up.erase(0, r.head_bytes);  // what follows the head is the tunnel's first bytes
      static constexpr std::string_view kOk = "HTTP/1.1 200 Connection established\r\n\r\n";
      if (::send(c.client.get(), kOk.data(), kOk.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(kOk.size())) {
        return Close(c.id);
      }
      c.state = Conn::State::kHello;
    } else {
      std::string first = r.upstream_head + c.up.substr(r.head_bytes);
      c.up.clear();
      if (c.rewriter) {
        if (auto st = Rewrite(c, first, c.up); !st.ok()) {
          return Refuse(c, ToStd(st.message()), "400 Bad Request");
        }
      } else {
        c.up = std::move(first);
      }
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
        // RFC 6066 3: a client sends no server name for an address; the address itself is what
        // the rule allowed and what the proxy connects to.
        if (IsAddressLiteral(c.host)) break;
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
    NoDelay(fd.get());
    int rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), len);
    if (rc != 0 && errno != EINPROGRESS) continue;
    c.upstream = std::move(fd);
    conn_of_fd_[c.upstream.get()] = c.id;
    c.state = Conn::State::kConnecting;
    if (c.connect_deadline_ns == 0) {
      ++connecting_;
      c.connect_deadline_ns = NowNs() + int64_t{options_.connect_timeout_ms} * 1000000;
    }
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
    bool read_client =
        c.up_pipe ? c.up_pipe.WantsRead(c.client_eof) : !c.client_eof && c.up.size() < kBufferBytes;
    bool read_upstream = c.down_pipe ? c.down_pipe.WantsRead(c.upstream_eof)
                                     : !c.upstream_eof && c.down.size() < kBufferBytes;
    if (read_client) client |= EPOLLIN;
    if (!Drained(c.down, c.down_pipe)) client |= EPOLLOUT;
    if (read_upstream) upstream |= EPOLLIN;
    if (!Drained(c.up, c.up_pipe)) upstream |= EPOLLOUT;
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
    if (connecting_ > 0) --connecting_;
    c.connect_deadline_ns = 0;
    if (c.intercept) {
      if (auto st = StartInterception(c); !st.ok()) {
        return Refuse(c, StrCat("TLS towards ", c.host, ":", c.port, ": ", ToStd(st.message())),
                      nullptr);
      }
    } else {
      // Bytes the proxy does not need to read are spliced: responses always, requests unless
      // a rewriter reads them. Without a pipe (out of fds) a direction is copied, as before.
      if (auto p = pipes_.Take(); p.ok()) c.down_pipe = *std::move(p);
      if (!c.rewriter) {
        if (auto p = pipes_.Take(); p.ok()) c.up_pipe = *std::move(p);
      }
    }
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
    // Never past the zone's budget: what is left of it is all that goes.
    size_t len = static_cast<size_t>(std::min<uint64_t>(from.size(), BudgetLeft(z)));
    if (len == 0) return true;
    ssize_t n = ::send(to, from.data(), len, MSG_NOSIGNAL);
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
  if (c.intercept) {
    // Ciphertext goes into the TLS sessions; what they send back lands in c.up / c.down.
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
      std::string raw;
      bool& eof = is_client ? c.client_eof : c.upstream_eof;
      bool ok = pull(fd, raw, eof);
      if (!ok) return Close(id);
      if (!raw.empty()) (is_client ? c.tls_zone : c.tls_up)->Feed(raw.data(), raw.size());
    }
    if (auto st = PumpTls(c); !st.ok()) {
      return Refuse(c, ToStd(st.message()), nullptr);
    }
    if (c.client_eof && !c.tls_up_closed && !c.upstream_eof) {
      c.tls_up->Close(c.up);
      c.tls_up_closed = true;
    }
    if (c.upstream_eof && !c.tls_zone_closed && c.resp_plain.empty()) {
      c.tls_zone->Close(c.down);
      c.tls_zone_closed = true;
    }
  } else if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !(is_client ? c.up_pipe : c.down_pipe)) {
    // A copied direction (a spliced one is read by PumpSpliced).
    bool ok = true;
    if (is_client && c.rewriter) {
      std::string raw;
      ok = pull(fd, raw, c.client_eof);
      if (ok && !raw.empty()) {
        if (auto st = Rewrite(c, raw, c.up); !st.ok()) {
          return Refuse(c, ToStd(st.message()), "400 Bad Request");
        }
      }
    } else {
      ok = is_client ? pull(fd, c.up, c.client_eof) : pull(fd, c.down, c.upstream_eof);
    }
    if (!ok) return Close(id);
  }
  // The strings first: a spliced direction's string holds what was read before the relay.
  if (!push(c.upstream.get(), c.up, z.stats.bytes_out) ||
      !push(c.client.get(), c.down, z.stats.bytes_in)) {
    return Close(id);
  }
  if ((c.up_pipe || c.down_pipe) && !PumpSpliced(c, z, fd)) return Close(id);
  if (BudgetLeft(z) == 0) return EndZoneConnections(c.zone_id);
  if (c.client_eof && Drained(c.up, c.up_pipe) && !c.up_shut && !c.upstream_gone) {
    ::shutdown(c.upstream.get(), SHUT_WR);
    c.up_shut = true;
  }
  if (c.upstream_eof && Drained(c.down, c.down_pipe) && !c.down_shut) {
    ::shutdown(c.client.get(), SHUT_WR);
    c.down_shut = true;
  }
  // A side that hung up entirely (both directions) and was read to its end reports EPOLLHUP
  // for ever: the client's end is the connection's; upstream's leaves what is still buffered
  // for the client to deliver.
  if ((events & EPOLLHUP) && is_client && c.client_eof) return Close(id);
  if ((events & EPOLLHUP) && !is_client && c.upstream_eof && !c.upstream_gone) {
    if (!Drained(c.up, c.up_pipe)) return Close(id);  // undeliverable
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, c.upstream.get(), nullptr);
    c.upstream_gone = true;
    c.up_shut = true;
  }
  if (c.up_shut && c.down_shut) return Close(id);
  Watch(c);
}

bool EgressProxy::PumpSpliced(Conn& c, Zone& z, int fd) {
  auto pump = [&](int from, int to, const std::string& before, SplicePipe& pipe, bool& eof,
                  uint64_t& counter) {
    if (!pipe) return true;
    // Read when this side is the one that woke us, or when the pipe held bytes (reading may
    // have stopped for want of room); write once nothing read earlier waits in `before`.
    bool read = !eof && (fd == from || pipe.pending() > 0);
    // Never past the zone's byte budget: what is left of it is all that goes.
    SplicePipe::Moved m =
        pipe.Pump(from, to, read, before.empty(), BudgetLeft(z), kSpliceBurstBytes);
    counter += m.written;
    if (m.eof) eof = true;
    return m.error == 0;
  };
  return pump(c.client.get(), c.upstream.get(), c.up, c.up_pipe, c.client_eof, z.stats.bytes_out) &&
         pump(c.upstream.get(), c.client.get(), c.down, c.down_pipe, c.upstream_eof,
              z.stats.bytes_in);
}

absl::Status EgressProxy::StartInterception(Conn& c) {
  Zone& z = *zones_.at(c.zone_id);
  if (!z.ca) return absl::FailedPreconditionError("the zone has no CA");
  RAUHA_ASSIGN_OR_RETURN(X509 * leaf, z.ca->LeafFor(c.host));
  RAUHA_ASSIGN_OR_RETURN(c.tls_zone,
                         TlsEndpoint::Server(server_ctx_.get(), leaf, z.ca->leaf_key()));
  RAUHA_ASSIGN_OR_RETURN(c.tls_up, TlsEndpoint::Client(client_ctx_.get(), c.host));
  ++z.stats.tls_terminated;
  // The zone's ClientHello, read for its SNI, is the server session's first input.
  c.tls_zone->Feed(c.up.data(), c.up.size());
  c.up.clear();
  return PumpTls(c);
}

absl::Status EgressProxy::PumpTls(Conn& c) {
  // Twice: what the second pass sends may be what the first one decrypted on the other side.
  for (int pass = 0; pass < 2; ++pass) {
    RAUHA_RETURN_IF_ERROR(c.tls_zone->Pump(c.req_plain, SIZE_MAX, c.resp_plain, c.down));
    if (!c.req_plain.empty()) {
      absl::Status st = Rewrite(c, c.req_plain, c.up_plain);
      c.req_plain.clear();
      RAUHA_RETURN_IF_ERROR(st);
    }
    auto up = c.tls_up->Pump(c.resp_plain, SIZE_MAX, c.up_plain, c.up);
    if (!up.ok()) {
      return absl::UnavailableError(StrCat("upstream ", c.host, ":", c.port, ": ", up.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status EgressProxy::Rewrite(Conn& c, std::string_view in, std::string& out) {
  std::vector<PlaceholderUse> uses;
  absl::Status st = c.rewriter->Feed(in, out, uses);
  if (!uses.empty()) ReportUses(c, uses);
  return st;
}

void EgressProxy::ReportUses(Conn& c, const std::vector<PlaceholderUse>& uses) {
  Zone& z = *zones_.at(c.zone_id);
  for (const auto& u : uses) {
    if (u.replaced) {
      ++z.stats.secrets_injected;
      continue;
    }
    ++z.stats.secret_misuses;
    if (!c.misuse_reported.insert(StrCat(u.secret, "\n", u.where)).second) continue;
    const policy::SecretRule* rule = nullptr;
    for (const auto& s : z.secrets) {
      if (s.name == u.secret) rule = &s;
    }
    std::string allowed;
    if (rule) {
      std::string hosts;
      for (const auto& h : rule->hosts) hosts += StrCat(hosts.empty() ? "" : ", ", h.text);
      allowed = StrCat(" (it goes only in header ", rule->header, " to ", hosts, ")");
    }
    EnforcementEvent e;
    e.time_ns = NowNs();
    e.zone_id = c.zone_id;
    e.layer = "proxy";
    e.hook = c.intercept ? "proxy/tls" : "proxy/http";
    e.action = "secret_misuse";
    e.decision = "deny";
    e.object = HostPort(c.host, c.port);
    e.message = StrCat("the placeholder of secret ", u.secret, " was sent to ", e.object, " in ",
                       u.where == "the request line" ? u.where : StrCat("header ", u.where),
                       ", where [secrets.", u.secret, "] does not let it go", allowed,
                       ": it was passed on unreplaced");
    if (sink_) sink_(e);
  }
}

}  // namespace rauha::egress
