// Reads nftables state inside a network namespace a test holds: shared by the integration and
// containerd tests.
#pragma once

#include <nftables/libnftables.h>
#include <sched.h>

#include <string>
#include <thread>

namespace rauha::testing {

// `nft list ...` through libnftables inside network namespace `netns_fd` ("" on error). A
// thread of its own: setns changes only the calling thread, and libnftables' netlink socket
// belongs to the namespace it is made in.
inline std::string NftListIn(int netns_fd, const std::string& command) {
  std::string text;
  std::thread([&] {
    if (::setns(netns_fd, CLONE_NEWNET) != 0) return;
    nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    nft_ctx_buffer_output(ctx);
    nft_ctx_buffer_error(ctx);
    if (nft_run_cmd_from_buffer(ctx, command.c_str()) == 0) text = nft_ctx_get_output_buffer(ctx);
    nft_ctx_free(ctx);
  }).join();
  return text;
}

}  // namespace rauha::testing
