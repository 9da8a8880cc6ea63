// runsandbox_bench: the latency of one RunSandbox gRPC call, measured inside one process over
// one already-connected channel, so the figure excludes process start-up and connecting.
//
//   runsandbox_bench --socket PATH [--count N] [-- CMD ARGS...]   N calls, one line each
//   runsandbox_bench --socket PATH --serve    [-- CMD ARGS...]   one call per line on stdin
//   --image REF                    on that image's root (RunSandboxRequest.image)
//
// Each call runs CMD (default /bin/true) in a fresh temporary zone and prints the call's
// wall-clock latency in nanoseconds on its own line. --serve lets a script interleave this
// contender with others (bash coproc): write any line, read one latency back. A call that
// does not return status "succeeded" with exit code 0 is printed to stderr and the program
// exits 1, so a benchmark never averages failures in.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "rauha/v1/sandbox.grpc.pb.h"

namespace {

namespace sv1 = rauha::sandbox::v1;

struct Options {
  std::string socket;
  long count = 1;
  bool serve = false;
  std::string image;  // RunSandboxRequest.image: run on this image's root instead of the host view
  std::vector<std::string> command = {"/bin/true"};
};

int Usage(const char* why) {
  std::fprintf(stderr,
               "runsandbox_bench: %s\n"
               "usage: runsandbox_bench --socket PATH [--count N | --serve] [--image REF] [-- CMD "
               "ARGS...]\n",
               why);
  return 2;
}

// One RunSandbox call; returns its latency in ns, or -1 after printing why it failed.
long long RunOnce(sv1::SandboxService::Stub& stub, const sv1::RunSandboxRequest& req) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  sv1::SandboxResult result;
  const auto start = std::chrono::steady_clock::now();
  grpc::Status status = stub.RunSandbox(&ctx, req, &result);
  const auto end = std::chrono::steady_clock::now();
  if (!status.ok()) {
    std::fprintf(stderr, "runsandbox_bench: RunSandbox: gRPC code %d: %s\n",
                 static_cast<int>(status.error_code()), status.error_message().c_str());
    return -1;
  }
  if (result.status() != "succeeded" || !result.has_exit_code() || result.exit_code() != 0) {
    std::fprintf(stderr, "runsandbox_bench: RunSandbox: status %s, exit code %d, error: %s\n",
                 result.status().c_str(), result.has_exit_code() ? result.exit_code() : -1,
                 result.error().c_str());
    return -1;
  }
  return std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--socket" && i + 1 < argc) {
      opt.socket = argv[++i];
    } else if (arg == "--count" && i + 1 < argc) {
      char* end = nullptr;
      opt.count = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || opt.count < 1) return Usage("--count wants a positive integer");
    } else if (arg == "--image" && i + 1 < argc) {
      opt.image = argv[++i];
    } else if (arg == "--serve") {
      opt.serve = true;
    } else if (arg == "--") {
      opt.command.assign(argv + i + 1, argv + argc);
      if (opt.command.empty()) return Usage("no command after --");
      break;
    } else {
      return Usage(("unknown argument " + arg).c_str());
    }
  }
  if (opt.socket.empty()) return Usage("--socket is required");

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);  // as the CLI's channel (rauha-cli/client.cc)
  auto channel =
      grpc::CreateCustomChannel("unix:" + opt.socket, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    std::fprintf(stderr, "runsandbox_bench: cannot connect to %s within 10s (is rauhad up?)\n",
                 opt.socket.c_str());
    return 1;
  }
  auto stub = sv1::SandboxService::NewStub(channel);

  sv1::RunSandboxRequest req;
  for (const auto& word : opt.command) req.add_command(word);
  req.set_image(opt.image);

  if (opt.serve) {
    std::string line;
    while (std::getline(std::cin, line)) {
      const long long ns = RunOnce(*stub, req);
      if (ns < 0) return 1;
      std::printf("%lld\n", ns);
      std::fflush(stdout);
    }
    return 0;
  }
  for (long i = 0; i < opt.count; ++i) {
    const long long ns = RunOnce(*stub, req);
    if (ns < 0) return 1;
    std::printf("%lld\n", ns);
  }
  return 0;
}
