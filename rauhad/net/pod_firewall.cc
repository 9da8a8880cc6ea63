#include "rauhad/net/pod_firewall.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <nftables/libnftables.h>
#include <sched.h>

#include <cerrno>
#include <thread>

#include "rauha-common/errors.h"
#include "rauha-common/strcat.h"
#include "rauhad/net/firewall.h"

namespace rauha::net {

std::string PodTableName(const std::string& base, const std::string& zone_id) {
  return StrCat(base, "_", ShortId(zone_id));
}

std::string PodTableCommands(const std::string& table, const PodRules& r, uint16_t log_group) {
  std::string t = StrCat("inet ", table);
  std::string id = ShortId(r.zone_id);
  std::string c =
      StrCat("add table ", t, "\n",                                                  //
             "add counter ", t, " ", DropCounterName(DropKind::kIngress, id), "\n",  //
             "add chain ", t, " input { type filter hook input priority filter; policy accept; }\n",
             "flush chain ", t, " input\n",                                   //
             "add rule ", t, " input iifname \"lo\" accept\n",                //
             "add rule ", t, " input ct state established,related accept\n",  //
             // Without these an IPv6 address of the pod's would stop resolving.
             "add rule ", t,
             " input icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, "
             "nd-router-advert, nd-redirect } accept\n");
  for (const auto& peer : r.peer_addresses) {
    bool v6 = peer.find(':') != std::string::npos;
    c += StrCat("add rule ", t, " input ", v6 ? "ip6" : "ip", " saddr ", peer, " accept\n");
  }
  for (const auto& rule : r.ingress) {
    std::string m =
        StrCat(rule.family == 6 ? "ip6" : "ip", " saddr ", rule.address, "/", rule.prefix_len);
    if (rule.port != 0) m += StrCat(" meta l4proto { tcp, udp } th dport ", rule.port);
    c += StrCat("add rule ", t, " input ", m, " accept\n");
  }
  c += DropRuleCommands(t, "input", "", DropKind::kIngress, id, log_group);
  return c;
}

std::string PodTableRebuildCommands(const std::string& table, const PodRules& rules,
                                    uint16_t log_group) {
  return PodTableDeleteCommands(table) + PodTableCommands(table, rules, log_group);
}

std::string PodTableDeleteCommands(const std::string& table) {
  // "add" first so that "delete" finds a table even where there was none.
  return StrCat("add table inet ", table, "\ndelete table inet ", table, "\n");
}

absl::Status InNetns(int netns_fd, const std::function<absl::Status()>& fn) {
  absl::Status result = absl::InternalError("netns helper thread did not run");
  // setns changes only the calling thread's namespace: a thread of its own, gone afterwards.
  std::thread helper([&] {
    if (::setns(netns_fd, CLONE_NEWNET) != 0) {
      result = ErrnoStatus(errno, "entering the zone's joined network namespace (setns)");
      return;
    }
    result = fn();
  });
  helper.join();
  return result;
}

absl::Status RunNftIn(int netns_fd, const std::string& what, const std::string& commands,
                      std::string* output) {
  return InNetns(netns_fd, [&]() -> absl::Status {
    nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!ctx) return absl::ResourceExhaustedError("nft_ctx_new failed (out of memory?)");
    nft_ctx_buffer_output(ctx);
    nft_ctx_buffer_error(ctx);
    // A buffer is one netlink batch: the kernel applies all of it or none.
    int rc = nft_run_cmd_from_buffer(ctx, commands.c_str());
    const char* err_buf = nft_ctx_get_error_buffer(ctx);
    std::string err = err_buf ? err_buf : "";
    const char* out_buf = nft_ctx_get_output_buffer(ctx);
    if (output) *output = out_buf ? out_buf : "";
    nft_ctx_free(ctx);
    if (rc != 0) {
      while (!err.empty() && err.back() == '\n') err.pop_back();
      return absl::InternalError(StrCat("nftables in the zone's joined network namespace: ", what,
                                        ": ", err.empty() ? "failed" : err));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<std::string>> Ipv4AddressesIn(int netns_fd) {
  std::vector<std::string> out;
  absl::Status st = InNetns(netns_fd, [&]() -> absl::Status {
    ifaddrs* list = nullptr;
    // rtnetlink of the calling thread's namespace.
    if (::getifaddrs(&list) != 0) return ErrnoStatus(errno, "getifaddrs");
    for (ifaddrs* a = list; a; a = a->ifa_next) {
      if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET || (a->ifa_flags & IFF_LOOPBACK))
        continue;
      char text[INET_ADDRSTRLEN];
      const auto* in = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
      if (::inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text))) out.emplace_back(text);
    }
    ::freeifaddrs(list);
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return out;
}

}  // namespace rauha::net
