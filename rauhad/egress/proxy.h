// rauhad's egress proxy: one event-driven thread (epoll) for every zone whose policy has
// [network] allowed_hosts. Each such zone gets a listener on 127.0.0.1:3128 inside its own
// network namespace (zone_listener.h); tasks get HTTP_PROXY/HTTPS_PROXY pointing there.
//
// Per connection: the request head is read (proxy_request.h). CONNECT host:port: the name must
// be allowed; the proxy answers 200, reads the TLS ClientHello and requires its SNI to be the
// same name (tls_sni.h), then connects and relays the bytes untouched. Plain HTTP: the
// absolute URL's host must be allowed; the head is rewritten to origin form and relayed. Names
// resolve on the host (resolver.h) and the proxy connects only to what the name resolved to,
// never to the host's own, loopback or link-local addresses unless the rule is that address
// (destination_guard.h). Each refusal is an enforcement event (layer "proxy", the host name).
// Bounds: kMaxConnectionsPerZone open connections per zone, kBufferBytes buffered per direction
// per connection (kSplicePipeBytes in a pipe where a direction is spliced), and the zone's byte
// budget ([network] egress_bytes_max, SetByteBudget): the proxy relays at most that many bytes
// for the zone in all (both directions, copied or spliced); once it has, every open connection
// of the zone is closed (one event, action "egress_budget") and new requests are refused (an
// event each) until a larger budget is set.
//
// Relaying: bytes the proxy need not read (a tunnelled CONNECT both ways, responses to plain
// HTTP, requests of a zone without secrets once the head is parsed) go socket -> pipe ->
// socket with splice(2) and never enter user space (splice_pipe.h); the byte counts splice
// returns are the zone's accounting. Intercepted TLS and rewritten requests are copied.
//
// Secrets ([secrets.NAME], header_rewriter.h): a zone with secrets gets a CA of its own
// (zone_ca.h) and a trust bundle file (TrustBundlePath) its tasks use. A CONNECT to a host a
// secret names is not tunnelled but ended here: TLS towards the zone with a leaf of the zone's
// CA, TLS towards the real host verified against the host's CAs (plus --egress-extra-ca), and
// the requests in between rewritten (tls_endpoint.h). Plain HTTP requests of such a zone are
// rewritten too. A placeholder that stays (another host, another header) is an event
// (action "secret_misuse"). Other CONNECTs are tunnelled untouched, as before.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "rauha-common/enforcement_event.h"
#include "rauha-common/fd.h"
#include "rauha-common/policy/policy.h"
#include "rauhad/egress/egress_counts.h"
#include "rauhad/egress/header_rewriter.h"
#include "rauhad/egress/resolver.h"
#include "rauhad/egress/splice_pipe.h"
#include "rauhad/egress/tls_endpoint.h"
#include "rauhad/egress/zone_ca.h"
#include "rauhad/egress/zone_ca_store.h"

namespace rauha::egress {

struct ProxyOptions {
  // --egress-hosts: answers only from this hosts file (tests); empty: getaddrinfo.
  std::optional<std::map<std::string, Addresses>> hosts;
  // --egress-extra-ca: PEM CAs trusted for upstreams besides the host's (tests).
  std::string extra_ca_file;
  // Where zones' trust bundles are written ("<dir>/<zone id>.pem"); empty: no secrets.
  std::string trust_dir;
  // Where zones' CAs are kept across restarts, sealed with the key in `ca_key_file`
  // (zone_ca_store.h); empty: every start of rauhad makes new ones.
  std::string ca_dir;
  std::string ca_key_file;
  // The host's CA bundle, first in each zone's bundle.
  std::string host_ca_bundle = "/etc/ssl/certs/ca-certificates.crt";
  // An upstream that does not accept the connection within this: 504 and an event.
  int connect_timeout_ms = 10000;
};

// The counts, and what is true of the zone now.
struct ProxyZoneStats : EgressCounts {
  uint64_t open = 0;
  std::optional<uint64_t> bytes_max;  // the zone's egress byte budget; nullopt: none
};

class EgressProxy {
 public:
  static constexpr size_t kMaxConnectionsPerZone = 256;
  static constexpr size_t kBufferBytes = 64 * 1024;
  static constexpr size_t kSplicePipeBytes = 256 * 1024;
  // At most this much per direction per event, so one fast connection does not starve others.
  static constexpr uint64_t kSpliceBurstBytes = 1024 * 1024;

  using EventSink = std::function<void(const EnforcementEvent&)>;
  static absl::StatusOr<std::unique_ptr<EgressProxy>> Create(ProxyOptions options, EventSink sink);
  ~EgressProxy();
  EgressProxy(const EgressProxy&) = delete;
  EgressProxy& operator=(const EgressProxy&) = delete;

  // The zone's allowed names. Non-empty: a listener in the namespace of `shim_pid` (made once;
  // later calls replace the rules, and open connections keep theirs). Empty: as RemoveZone.
  // `secrets`: the zone's [secrets] (a CA and trust bundle are made when there are any).
  absl::Status SetZone(const std::string& zone_id, const std::string& zone_name, pid_t shim_pid,
                       const std::vector<policy::HostRule>& rules,
                       const std::vector<policy::SecretRule>& secrets = {});
  // The zone's byte budget ([network] egress_bytes_max): bytes relayed both ways, in all, from
  // the zone's first connection on, across restarts (SeedCounters). nullopt: unbounded. A zone
  // the proxy does not serve: no-op.
  void SetByteBudget(const std::string& zone_id, std::optional<uint64_t> bytes_max);
  // The zone's trust bundle (host CAs + its CA), "" when it has no secrets.
  std::string TrustBundlePath(const std::string& zone_id);
  // The placeholders of one task of the zone, valid from here until RemoveTaskSecrets.
  // FailedPrecondition when the zone has no proxy listener.
  absl::Status AddTaskSecrets(const std::string& zone_id, const std::string& task_id,
                              SecretBindings bindings);
  void RemoveTaskSecrets(const std::string& zone_id, const std::string& task_id);
  // Secret `name` was removed: no task's placeholder for it is replaced in new requests (a
  // connection already open keeps the bindings it started with). How many grants lost it.
  size_t RevokeSecret(const std::string& name);
  // Closes the zone's listener and connections (a zone stopped with rauhad keeps its CA).
  void RemoveZone(const std::string& zone_id);
  // Forgets the zone's stored CA and its counters: the zone is gone.
  void ForgetZone(const std::string& zone_id);
  // Forgets the stored CAs and counters of zones not in `zone_ids` (left by a crash
  // mid-delete).
  void ForgetZonesExcept(const std::set<std::string>& zone_ids);
  // nullopt: the proxy does not serve the zone.
  std::optional<ProxyZoneStats> Stats(const std::string& zone_id);
  // A zone's counters are the zone's, not its listener's: a zone the proxy stops serving
  // (RemoveZone: stopped, or its allowed_hosts emptied) keeps them, and continues them, its
  // budget's use included, when it is served again. A restarted rauhad seeds the counters it
  // stored (egress_counters.h) before zones are served again.
  void SeedCounters(const std::string& zone_id, const EgressCounts& counters);
  // Every zone's counters, served or kept.
  std::map<std::string, ProxyZoneStats> AllCounters();

 private:
  struct Zone;
  struct Conn;
  EgressProxy(ProxyOptions options, EventSink sink);
  void Loop();
  void OnListener(const std::string& zone_id);
  void OnConn(uint64_t id, int fd, uint32_t events);
  void OnResolved();
  void Advance(Conn& c);
  void StartConnect(Conn& c);
  void Refuse(Conn& c, const std::string& reason, const char* answer);
  absl::Status StartInterception(Conn& c);
  absl::Status PumpTls(Conn& c);
  absl::Status Rewrite(Conn& c, std::string_view in, std::string& out);
  void ReportUses(Conn& c, const std::vector<PlaceholderUse>& uses);
  void SweepConnectTimeouts();
  void Close(uint64_t id);
  // Moves the spliced directions of a relayed connection; `fd` is the side that woke the loop.
  // False: the connection is broken.
  bool PumpSpliced(Conn& c, Zone& z, int fd);
  // Bytes the zone may still have relayed (SIZE_MAX: no budget).
  static uint64_t BudgetLeft(const Zone& z);
  // The zone's budget is spent: its connections are closed, one event says so.
  void EndZoneConnections(const std::string& zone_id);
  void Watch(Conn& c);
  bool Allowed(const Zone& z, const std::string& host, uint16_t port,
               const policy::HostRule** matched) const;

  ProxyOptions options_;
  SslCtxPtr server_ctx_, client_ctx_;
  EventSink sink_;
  UniqueFd epoll_;
  UniqueFd wake_;  // eventfd: resolver answers, stop
  std::mutex mu_;  // all below; the loop holds it while it handles events
  bool stop_ = false;
  uint64_t next_id_ = 1;
  size_t connecting_ = 0;  // connections in kConnecting (their deadlines are swept)
  std::map<std::string, std::unique_ptr<Zone>> zones_;   // by zone id
  std::map<std::string, ProxyZoneStats> kept_counters_;  // of zones not served now, by zone id
  std::map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::map<int, uint64_t> conn_of_fd_;
  std::map<int, std::string> zone_of_listener_;
  // One read's worth (the loop's, under mu_): relayed bytes pass through it once.
  std::unique_ptr<char[]> scratch_ = std::make_unique<char[]>(kBufferBytes);
  SplicePipePool pipes_{kSplicePipeBytes, 64};  // the loop's, under mu_
  std::mutex resolved_mu_;
  std::vector<std::pair<uint64_t, Addresses>> resolved_;
  std::unique_ptr<ZoneCaStore> ca_store_;  // null: CAs are not kept
  std::unique_ptr<Resolver> resolver_;     // after what its threads touch
  std::thread loop_;
};

}  // namespace rauha::egress
