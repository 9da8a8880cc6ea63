// zone_bench: the latency of CreateZone and DeleteZone gRPC calls, measured inside one process
// over one already-connected channel, so the figures exclude process start-up and connecting.
// Driven by a script (bash coproc) one command per line on stdin, one answer line per command:
//
//   create NAME POLICYFILE   CreateZone (policy read before the clock starts) -> latency ns
//   delete NAME              DeleteZone with force                          -> latency ns
//   shim NAME                GetZone                                        -> the zone's shim pid
//   chains TABLE             chains of nftables table `inet TABLE` in this process's network
//                            namespace (0 when the table does not exist)   -> count
//
//   zone_bench --socket PATH
//
// A call that fails is printed to stderr and the program exits 1, so a benchmark never
// averages failures in. `chains` reads the kernel through libnftables, so no nft binary is
// needed; run zone_bench in rauhad's network namespace for it to see rauhad's table.
#include <nftables/libnftables.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "rauha/v1/zone.grpc.pb.h"

namespace {

namespace zv1 = rauha::zone::v1;

using Clock = std::chrono::steady_clock;

long long Ns(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
}

bool Failed(const char* call, const std::string& name, const grpc::Status& status) {
  if (status.ok()) return false;
  std::fprintf(stderr, "zone_bench: %s %s: gRPC code %d: %s\n", call, name.c_str(),
               static_cast<int>(status.error_code()), status.error_message().c_str());
  return true;
}

void Deadline(grpc::ClientContext& ctx) {
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
}

// Number of chains in `inet table`, or -1 on an error other than "no such table".
long CountChains(const std::string& table) {
  nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (!ctx) return -1;
  nft_ctx_buffer_output(ctx);
  nft_ctx_buffer_error(ctx);
  long count = 0;
  const std::string cmd = "list table inet " + table;
  if (nft_run_cmd_from_buffer(ctx, cmd.c_str()) == 0) {
    std::istringstream text(nft_ctx_get_output_buffer(ctx));
    std::string line;
    while (std::getline(text, line)) {
      const auto first = line.find_first_not_of(" \t");
      if (first != std::string::npos && line.compare(first, 6, "chain ") == 0) ++count;
    }
  } else {
    const std::string err = nft_ctx_get_error_buffer(ctx);
    if (err.find("No such file or directory") == std::string::npos) {
      std::fprintf(stderr, "zone_bench: nft %s: %s\n", cmd.c_str(), err.c_str());
      count = -1;
    }
  }
  nft_ctx_free(ctx);
  return count;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || std::string(argv[1]) != "--socket") {
    std::fprintf(stderr, "usage: zone_bench --socket PATH   (commands on stdin: see the source)\n");
    return 2;
  }
  const std::string socket = argv[2];
  auto channel = grpc::CreateChannel("unix:" + socket, grpc::InsecureChannelCredentials());
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    std::fprintf(stderr, "zone_bench: cannot connect to %s within 10s (is rauhad up?)\n",
                 socket.c_str());
    return 1;
  }
  auto stub = zv1::ZoneService::NewStub(channel);

  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream words(line);
    std::string cmd, name, file;
    words >> cmd >> name >> file;
    if (cmd == "create" && !name.empty() && !file.empty()) {
      std::ifstream in(file);
      std::stringstream policy;
      policy << in.rdbuf();
      if (!in) {
        std::fprintf(stderr, "zone_bench: cannot read policy file %s\n", file.c_str());
        return 1;
      }
      zv1::CreateZoneRequest req;
      req.set_name(name);
      req.set_policy_toml(policy.str());
      zv1::CreateZoneResponse resp;
      grpc::ClientContext ctx;
      Deadline(ctx);
      const auto t0 = Clock::now();
      const grpc::Status st = stub->CreateZone(&ctx, req, &resp);
      const auto t1 = Clock::now();
      if (Failed("CreateZone", name, st)) return 1;
      std::printf("%lld\n", Ns(t0, t1));
    } else if (cmd == "delete" && !name.empty()) {
      zv1::DeleteZoneRequest req;
      req.set_name(name);
      req.set_force(true);
      zv1::DeleteZoneResponse resp;
      grpc::ClientContext ctx;
      Deadline(ctx);
      const auto t0 = Clock::now();
      const grpc::Status st = stub->DeleteZone(&ctx, req, &resp);
      const auto t1 = Clock::now();
      if (Failed("DeleteZone", name, st)) return 1;
      std::printf("%lld\n", Ns(t0, t1));
    } else if (cmd == "shim" && !name.empty()) {
      zv1::GetZoneRequest req;
      req.set_name(name);
      zv1::GetZoneResponse resp;
      grpc::ClientContext ctx;
      Deadline(ctx);
      if (Failed("GetZone", name, stub->GetZone(&ctx, req, &resp))) return 1;
      std::printf("%u\n", resp.zone().shim_pid());
    } else if (cmd == "chains" && !name.empty()) {
      const long n = CountChains(name);
      if (n < 0) return 1;
      std::printf("%ld\n", n);
    } else {
      std::fprintf(stderr, "zone_bench: bad command line \"%s\"\n", line.c_str());
      return 1;
    }
    std::fflush(stdout);
  }
  return 0;
}
