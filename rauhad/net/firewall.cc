#include "rauhad/net/firewall.h"

#include <nftables/libnftables.h>

#include <cctype>

#include "rauha-common/strcat.h"
#include "rauhad/net/drop_packet.h"

namespace rauha::net {
namespace {

// The text of an nft_ctx buffer. Each nft_ctx_get_*_buffer call hands over what was written
// and resets the buffer: read once.
std::string TakeBuffer(const char* buffer) { return buffer ? buffer : ""; }

}  // namespace

std::string DropRuleCommands(const std::string& table, const std::string& chain,
                             const std::string& match, DropKind kind,
                             const std::string& zone_short_id, uint16_t log_group) {
  std::string head = StrCat("add rule ", table, " ", chain, " ", match, match.empty() ? "" : " ");
  std::string counter = StrCat("counter name \"", DropCounterName(kind, zone_short_id), "\" ");
  std::string out;
  if (log_group != 0) {
    out += StrCat(head, "limit rate ", Firewall::kDropLogRate, "/second burst ",
                  Firewall::kDropLogBurst, " packets ", counter, "log prefix \"",
                  DropPrefix(kind, zone_short_id), "\" group ", log_group, " drop\n");
  }
  return out + StrCat(head, counter, "drop\n");
}

std::string ShortId(const std::string& zone_id) {
  std::string out;
  for (char c : zone_id) {
    if (out.size() == 8) break;
    if (std::isxdigit(static_cast<unsigned char>(c))) out += c;
  }
  return out;
}

Firewall::Firewall(std::string table, std::string bridge, std::string subnet_cidr,
                   std::string gateway, uint16_t log_group)
    : table_(std::move(table)),
      bridge_(std::move(bridge)),
      subnet_(std::move(subnet_cidr)),
      gateway_(std::move(gateway)),
      log_group_(log_group) {
  ctx_ = nft_ctx_new(NFT_CTX_DEFAULT);
  if (ctx_) {
    nft_ctx_buffer_output(ctx_);
    nft_ctx_buffer_error(ctx_);
  }
}

Firewall::~Firewall() {
  if (ctx_) nft_ctx_free(ctx_);
}

absl::Status Firewall::Run(const std::string& commands) {
  std::lock_guard lock(mu_);
  if (!ctx_) return absl::ResourceExhaustedError("nft_ctx_new failed (out of memory?)");
  // A buffer is one netlink batch: the kernel applies all of it or none.
  int rc = nft_run_cmd_from_buffer(ctx_, commands.c_str());
  std::string err = TakeBuffer(nft_ctx_get_error_buffer(ctx_));
  (void)nft_ctx_get_output_buffer(ctx_);
  if (rc != 0) {
    while (!err.empty() && err.back() == '\n') err.pop_back();
    return absl::InternalError(StrCat("nftables table inet ", table_, ": ", err,
                                      err.empty() ? "failed" : "",
                                      " (is nf_tables available in this kernel?)"));
  }
  return absl::OkStatus();
}

std::string Firewall::BaseCommands() const {
  std::string t = StrCat("inet ", table_);
  return StrCat("add table ", t, "\n",                                       //
                "add map ", t, " zone_out { type ipv4_addr : verdict; }\n",  //
                "add map ", t, " zone_in { type ipv4_addr : verdict; }\n",   //
                "add chain ", t,                                             //
                " forward { type filter hook forward priority filter; policy accept; }\n",
                "add rule ", t, " forward iifname != \"", bridge_, "\" oifname != \"", bridge_,
                "\" accept\n",                                                     //
                "add rule ", t, " forward ct state established,related accept\n",  //
                "add rule ", t, " forward iifname \"", bridge_, "\" ip saddr vmap @zone_out\n",
                "add rule ", t, " forward iifname \"", bridge_, "\" drop\n",  //
                "add rule ", t, " forward ip daddr vmap @zone_in\n",          //
                "add rule ", t, " forward drop\n",                            //
                "add chain ", t,
                " input { type filter hook input priority filter; policy accept; }\n", "add rule ",
                t, " input iifname != \"", bridge_, "\" accept\n",               //
                "add rule ", t, " input ct state established,related accept\n",  //
                "add rule ", t, " input icmp type echo-request accept\n",        //
                "add rule ", t, " input ip saddr vmap @zone_out\n",              //
                "add rule ", t, " input drop\n");
}

std::string Firewall::ChainCommands(const ZoneRules& z) const {
  std::string t = StrCat("inet ", table_);
  std::string id = ShortId(z.zone_id);
  std::string out_chain = StrCat("zo_", id), in_chain = StrCat("zi_", id);
  auto drop = [&](const std::string& chain, const std::string& match, DropKind kind) {
    return DropRuleCommands(t, chain, match, kind, id, log_group_);
  };
  // "add" leaves an existing counter as it is (the kernel has no update for counters).
  std::string c;
  for (DropKind kind : {DropKind::kEgress, DropKind::kZoneToZone, DropKind::kIngress}) {
    c += StrCat("add counter ", t, " ", DropCounterName(kind, id), "\n");
  }
  for (const auto& ch : {out_chain, in_chain}) {
    c += StrCat("add chain ", t, " ", ch, "\nflush chain ", t, " ", ch, "\n");
  }
  for (const auto& peer : z.peer_addresses) {
    c += StrCat("add rule ", t, " ", out_chain, " ip daddr ", peer, " accept\n");
  }
  // Other zones only through allowed_zones, whatever the egress CIDRs say.
  c += drop(out_chain, StrCat("ip daddr != ", gateway_, " ip daddr ", subnet_),
            DropKind::kZoneToZone);
  auto match = [](const policy::NetRule& r, const char* dir) {
    std::string m = StrCat("ip ", dir, " ", r.address, "/", r.prefix_len);
    if (r.port != 0) m += StrCat(" meta l4proto { tcp, udp } th dport ", r.port);
    return m;
  };
  for (const auto& r : z.egress) {
    if (r.family != 4) continue;
    c += StrCat("add rule ", t, " ", out_chain, " ", match(r, "daddr"), " accept\n");
  }
  for (const auto& r : z.ingress) {
    if (r.family != 4) continue;
    c += StrCat("add rule ", t, " ", in_chain, " ", match(r, "saddr"), " accept\n");
  }
  c += drop(out_chain, "", DropKind::kEgress);
  c += drop(in_chain, "", DropKind::kIngress);
  c += StrCat("add element ", t, " zone_out { ", z.address, " : jump ", out_chain, " }\n");
  c += StrCat("add element ", t, " zone_in { ", z.address, " : jump ", in_chain, " }\n");
  return c;
}

absl::Status Firewall::Rebuild(const std::vector<ZoneRules>& zones) {
  // "add" first so that "delete" finds a table even on a fresh host.
  std::string c = StrCat("add table inet ", table_, "\ndelete table inet ", table_, "\n");
  c += BaseCommands();
  for (const auto& z : zones) c += ChainCommands(z);
  return Run(c);
}

absl::Status Firewall::Put(const std::vector<ZoneRules>& zones) {
  std::string c;
  for (const auto& z : zones) c += ChainCommands(z);
  return c.empty() ? absl::OkStatus() : Run(c);
}

absl::Status Firewall::Remove(const ZoneRules& gone, const std::vector<ZoneRules>& refresh) {
  std::string t = StrCat("inet ", table_);
  std::string id = ShortId(gone.zone_id);
  std::string c = StrCat("delete element ", t, " zone_out { ", gone.address, " }\n",
                         "delete element ", t, " zone_in { ", gone.address, " }\n");
  for (const char* p : {"zo_", "zi_"}) {
    c += StrCat("flush chain ", t, " ", p, id, "\ndelete chain ", t, " ", p, id, "\n");
  }
  // After the rules that name them are gone, in the same transaction.
  for (DropKind kind : {DropKind::kEgress, DropKind::kZoneToZone, DropKind::kIngress}) {
    c += StrCat("delete counter ", t, " ", DropCounterName(kind, id), "\n");
  }
  for (const auto& z : refresh) c += ChainCommands(z);
  return Run(c);
}

absl::StatusOr<std::map<std::string, DropCounts>> Firewall::DropCounters() {
  // A context of its own: a listing does not wait for the lock of rule changes.
  nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (!ctx) return absl::ResourceExhaustedError("nft_ctx_new failed (out of memory?)");
  nft_ctx_buffer_output(ctx);
  nft_ctx_buffer_error(ctx);
  std::string cmd = StrCat("list counters table inet ", table_);
  int rc = nft_run_cmd_from_buffer(ctx, cmd.c_str());
  std::string err = TakeBuffer(nft_ctx_get_error_buffer(ctx));
  std::string text = TakeBuffer(nft_ctx_get_output_buffer(ctx));
  nft_ctx_free(ctx);
  if (rc != 0) {
    while (!err.empty() && err.back() == '\n') err.pop_back();
    return absl::InternalError(StrCat("nftables: listing the counters of table inet ", table_, ": ",
                                      err.empty() ? "failed" : err));
  }
  return ParseDropCounters(text, table_);
}

absl::Status Firewall::DeleteTable() {
  return Run(StrCat("add table inet ", table_, "\ndelete table inet ", table_, "\n"));
}

}  // namespace rauha::net
