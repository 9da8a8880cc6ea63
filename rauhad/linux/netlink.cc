#include "rauhad/linux/netlink.h"

#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <sched.h>

#include <cerrno>
#include <memory>
#include <thread>

#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/strcat.h"

namespace rauha::netlink {
namespace {

struct SockFree {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct LinkPut {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};
struct AddrPut {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
struct RtAddrPut {
  void operator()(rtnl_addr* a) const { rtnl_addr_put(a); }
};
struct RoutePut {
  void operator()(rtnl_route* r) const { rtnl_route_put(r); }
};
struct CacheFree {
  void operator()(nl_cache* c) const { nl_cache_free(c); }
};
using Sock = std::unique_ptr<nl_sock, SockFree>;
using Link = std::unique_ptr<rtnl_link, LinkPut>;
using Addr = std::unique_ptr<nl_addr, AddrPut>;
using RtAddr = std::unique_ptr<rtnl_addr, RtAddrPut>;
using Route = std::unique_ptr<rtnl_route, RoutePut>;
using Cache = std::unique_ptr<nl_cache, CacheFree>;

// libnl returns -NLE_* codes; its text is the errno's meaning ("Object exists").
absl::Status NlError(int err, std::string_view what) {
  int code = err < 0 ? -err : err;
  std::string text = nl_geterror(code);
  absl::StatusCode sc = code == NLE_EXIST ? absl::StatusCode::kAlreadyExists
                        : code == NLE_OBJ_NOTFOUND || code == NLE_NODEV
                            ? absl::StatusCode::kNotFound
                        : code == NLE_PERM ? absl::StatusCode::kPermissionDenied
                                           : absl::StatusCode::kInternal;
  return absl::Status(sc, StrCat(what, ": ", text, " (netlink error ", code, ")"));
}

absl::StatusOr<Sock> OpenRoute() {
  Sock sock(nl_socket_alloc());
  if (!sock) return absl::ResourceExhaustedError("nl_socket_alloc: out of memory");
  if (int err = nl_connect(sock.get(), NETLINK_ROUTE); err < 0) {
    return NlError(err, "connecting a NETLINK_ROUTE socket");
  }
  return sock;
}

// A netlink socket stays bound to the namespace it was created in, so a helper thread that
// enters the zone's namespace only to create it leaves every rauhad thread where it was.
absl::StatusOr<Sock> OpenRouteIn(const std::string& netns_path) {
  UniqueFd ns(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns) return ErrnoStatus(errno, StrCat("open ", netns_path));
  absl::StatusOr<Sock> result = absl::InternalError("netns helper thread did not run");
  std::thread helper([&] {
    if (::setns(ns.get(), CLONE_NEWNET) != 0) {
      result = ErrnoStatus(errno, StrCat("setns ", netns_path));
      return;
    }
    result = OpenRoute();
  });
  helper.join();
  return result;
}

absl::StatusOr<Addr> ParseAddr(const std::string& text) {
  nl_addr* a = nullptr;
  if (int err = nl_addr_parse(text.c_str(), AF_INET, &a); err < 0) {
    return NlError(err, StrCat("parsing address ", text));
  }
  return Addr(a);
}

absl::StatusOr<Link> GetLink(nl_sock* sock, const std::string& name) {
  rtnl_link* l = nullptr;
  if (int err = rtnl_link_get_kernel(sock, 0, name.c_str(), &l); err < 0) {
    return NlError(err, StrCat("looking up link ", name));
  }
  return Link(l);
}

absl::Status SetUp(nl_sock* sock, rtnl_link* link, const std::string& name) {
  Link change(rtnl_link_alloc());
  if (!change) return absl::ResourceExhaustedError("rtnl_link_alloc: out of memory");
  rtnl_link_set_flags(change.get(), IFF_UP);
  if (int err = rtnl_link_change(sock, link, change.get(), 0); err < 0) {
    return NlError(err, StrCat("bringing ", name, " up"));
  }
  return absl::OkStatus();
}

absl::Status AddAddress(nl_sock* sock, int ifindex, const std::string& cidr, const std::string& dev,
                        bool exist_ok) {
  RAUHA_ASSIGN_OR_RETURN(Addr local, ParseAddr(cidr));
  RtAddr addr(rtnl_addr_alloc());
  if (!addr) return absl::ResourceExhaustedError("rtnl_addr_alloc: out of memory");
  rtnl_addr_set_ifindex(addr.get(), ifindex);
  if (int err = rtnl_addr_set_local(addr.get(), local.get()); err < 0) {
    return NlError(err, StrCat("address ", cidr));
  }
  int err = rtnl_addr_add(sock, addr.get(), exist_ok ? 0 : NLM_F_EXCL);
  if (err < 0 && !(exist_ok && err == -NLE_EXIST)) {
    return NlError(err, StrCat("adding address ", cidr, " to ", dev));
  }
  return absl::OkStatus();
}

// `gateway` empty: a link-scope route to `dst` on the device.
absl::Status AddRoute(nl_sock* sock, int ifindex, const std::string& dst,
                      const std::string& gateway) {
  RAUHA_ASSIGN_OR_RETURN(Addr dst_addr, ParseAddr(dst));
  Route route(rtnl_route_alloc());
  if (!route) return absl::ResourceExhaustedError("rtnl_route_alloc: out of memory");
  rtnl_route_set_family(route.get(), AF_INET);
  rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
  rtnl_route_set_protocol(route.get(), RTPROT_STATIC);
  if (int err = rtnl_route_set_dst(route.get(), dst_addr.get()); err < 0) {
    return NlError(err, StrCat("route destination ", dst));
  }
  rtnl_route_set_scope(route.get(), gateway.empty() ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE);
  rtnl_nexthop* nh = rtnl_route_nh_alloc();
  if (!nh) return absl::ResourceExhaustedError("rtnl_route_nh_alloc: out of memory");
  rtnl_route_nh_set_ifindex(nh, ifindex);
  if (!gateway.empty()) {
    auto gw = ParseAddr(gateway);
    if (!gw.ok()) {
      rtnl_route_nh_free(nh);
      return gw.status();
    }
    rtnl_route_nh_set_gateway(nh, gw->get());
  }
  rtnl_route_add_nexthop(route.get(), nh);  // the route owns nh from here
  if (int err = rtnl_route_add(sock, route.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0) {
    return NlError(err, StrCat("adding route ", dst,
                               gateway.empty() ? std::string() : StrCat(" via ", gateway)));
  }
  return absl::OkStatus();
}

// Inside the zone: eth0 gets a /32 and reaches everything through the gateway, so even
// zone-to-zone traffic is routed by the host and passes the forward hook, where policy lives.
absl::Status ConfigureZoneSide(const ZoneLink& l) {
  RAUHA_ASSIGN_OR_RETURN(Sock sock, OpenRouteIn(l.zone_netns));
  for (const char* name : {"lo", "eth0"}) {
    RAUHA_ASSIGN_OR_RETURN(Link link, GetLink(sock.get(), name));
    RAUHA_RETURN_IF_ERROR(SetUp(sock.get(), link.get(), StrCat(name, " in ", l.zone_netns)));
  }
  RAUHA_ASSIGN_OR_RETURN(Link eth0, GetLink(sock.get(), "eth0"));
  int ifindex = rtnl_link_get_ifindex(eth0.get());
  RAUHA_RETURN_IF_ERROR(AddAddress(sock.get(), ifindex, l.address_cidr, "eth0 of the zone", false));
  RAUHA_RETURN_IF_ERROR(AddRoute(sock.get(), ifindex, StrCat(l.gateway, "/32"), ""));
  return AddRoute(sock.get(), ifindex, "0.0.0.0/0", l.gateway);
}

}  // namespace

absl::Status EnsureBridge(const std::string& bridge, const std::string& gateway_cidr) {
  RAUHA_ASSIGN_OR_RETURN(Sock sock, OpenRoute());
  auto existing = GetLink(sock.get(), bridge);
  if (!existing.ok()) {
    Link br(rtnl_link_bridge_alloc());
    if (!br) return absl::ResourceExhaustedError("rtnl_link_bridge_alloc: out of memory");
    rtnl_link_set_name(br.get(), bridge.c_str());
    rtnl_link_set_flags(br.get(), IFF_UP);
    int err = rtnl_link_add(sock.get(), br.get(), NLM_F_CREATE | NLM_F_EXCL);
    if (err < 0 && err != -NLE_EXIST) return NlError(err, StrCat("creating bridge ", bridge));
    existing = GetLink(sock.get(), bridge);
    if (!existing.ok()) return existing.status();
  } else if (!rtnl_link_is_bridge(existing->get())) {
    return absl::FailedPreconditionError(
        StrCat("link ", bridge, " exists and is not a bridge; pass another --bridge"));
  }
  if (!(rtnl_link_get_flags(existing->get()) & IFF_UP)) {
    RAUHA_RETURN_IF_ERROR(SetUp(sock.get(), existing->get(), StrCat("bridge ", bridge)));
  }
  return AddAddress(sock.get(), rtnl_link_get_ifindex(existing->get()), gateway_cidr,
                    StrCat("bridge ", bridge), /*exist_ok=*/true);
}

namespace {

// IFLA_BRPORT_ISOLATED on a bridge port: isolated ports exchange no frames with each other,
// only with the bridge's own interface (the zones' gateway). Without it a zone allowed
// CAP_NET_RAW could send Ethernet frames straight to another zone's MAC, past the routed
// (nftables-filtered) path. libnl 3.7 has no setter for it: one RTM_SETLINK built with its
// message API.
absl::Status IsolateBridgePort(nl_sock* sock, int ifindex, const std::string& name) {
  std::unique_ptr<nl_msg, decltype(&nlmsg_free)> msg(
      nlmsg_alloc_simple(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK), nlmsg_free);
  if (!msg) return absl::ResourceExhaustedError("nlmsg_alloc_simple: out of memory");
  ifinfomsg ifi{};
  ifi.ifi_family = AF_BRIDGE;
  ifi.ifi_index = ifindex;
  if (nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0)
    return absl::InternalError("building RTM_SETLINK: no room");
  nlattr* protinfo = nla_nest_start(msg.get(), IFLA_PROTINFO | NLA_F_NESTED);
  if (!protinfo || nla_put_u8(msg.get(), IFLA_BRPORT_ISOLATED, 1) < 0)
    return absl::InternalError("building RTM_SETLINK: no room");
  nla_nest_end(msg.get(), protinfo);
  if (int err = nl_send_auto(sock, msg.get()); err < 0)
    return NlError(err, StrCat("isolating bridge port ", name));
  if (int err = nl_wait_for_ack(sock); err < 0)
    return NlError(err, StrCat("isolating bridge port ", name));
  return absl::OkStatus();
}

}  // namespace

absl::Status AttachZone(const ZoneLink& l) {
  RAUHA_ASSIGN_OR_RETURN(Sock sock, OpenRoute());
  RAUHA_ASSIGN_OR_RETURN(Link br, GetLink(sock.get(), l.bridge));
  UniqueFd ns(::open(l.zone_netns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns) return ErrnoStatus(errno, StrCat("open ", l.zone_netns));

  Link veth(rtnl_link_veth_alloc());
  if (!veth) return absl::ResourceExhaustedError("rtnl_link_veth_alloc: out of memory");
  rtnl_link_set_name(veth.get(), l.host_name.c_str());
  rtnl_link_set_master(veth.get(), rtnl_link_get_ifindex(br.get()));
  rtnl_link_set_flags(veth.get(), IFF_UP);
  {
    Link peer(rtnl_link_veth_get_peer(veth.get()));
    rtnl_link_set_name(peer.get(), "eth0");
    rtnl_link_set_ns_fd(peer.get(), ns.get());
  }
  // One request: the pair is born with the peer in the zone and the host end on the bridge.
  if (int err = rtnl_link_add(sock.get(), veth.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0) {
    return NlError(err, StrCat("creating veth ", l.host_name, " (peer eth0 in ", l.zone_netns,
                               ") on bridge ", l.bridge));
  }
  auto st = IsolateBridgePort(sock.get(), static_cast<int>(::if_nametoindex(l.host_name.c_str())),
                              l.host_name);
  if (st.ok()) st = ConfigureZoneSide(l);
  if (!st.ok()) {
    (void)DeleteLink(l.host_name);
    return Annotate(st, StrCat("configuring the zone side of ", l.host_name));
  }
  return absl::OkStatus();
}

absl::Status DeleteLink(const std::string& name) {
  RAUHA_ASSIGN_OR_RETURN(Sock sock, OpenRoute());
  Link link(rtnl_link_alloc());
  if (!link) return absl::ResourceExhaustedError("rtnl_link_alloc: out of memory");
  rtnl_link_set_name(link.get(), name.c_str());
  int err = rtnl_link_delete(sock.get(), link.get());
  if (err < 0 && err != -NLE_NODEV && err != -NLE_OBJ_NOTFOUND) {
    return NlError(err, StrCat("deleting link ", name));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> BridgePorts(const std::string& bridge,
                                                     const std::string& prefix) {
  RAUHA_ASSIGN_OR_RETURN(Sock sock, OpenRoute());
  std::vector<std::string> out;
  auto br = GetLink(sock.get(), bridge);
  if (!br.ok()) return out;
  int br_index = rtnl_link_get_ifindex(br->get());
  nl_cache* raw = nullptr;
  if (int err = rtnl_link_alloc_cache(sock.get(), AF_UNSPEC, &raw); err < 0) {
    return NlError(err, "listing links");
  }
  Cache cache(raw);
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    auto* link = reinterpret_cast<rtnl_link*>(o);
    const char* name = rtnl_link_get_name(link);
    if (rtnl_link_get_master(link) == br_index && name &&
        std::string_view(name).substr(0, prefix.size()) == prefix) {
      out.emplace_back(name);
    }
  }
  return out;
}

bool LinkExists(const std::string& name) { return ::if_nametoindex(name.c_str()) != 0; }

}  // namespace rauha::netlink
