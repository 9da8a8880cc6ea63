// ttrpc_bench: what one ttrpc call costs in transport alone, the handler doing nothing, so the
// figure is the server's (accept, reader, handler dispatch, answer) and the client's share of
// every fast-path `rauha sandbox` (rauha-cli/fast_path.h).
//
//   ttrpc_bench [--count N]                  an in-process ttrpc::Server with a method that
//                                             answers at once; prints two lines (µs): N calls
//                                             each on a fresh connection as the CLI makes them
//                                             (connect, CallOnConnection, close), then N calls
//                                             on one connection (ttrpc::Client)
//   ttrpc_bench --socket PATH [--count N | --serve]
//                                             rauhad's ttrpc endpoint at PATH (<socket>.ttrpc):
//                                             a fresh connection per call, as the CLI makes it,
//                                             and ZoneService/GetPolicy for the empty zone name,
//                                             which rauhad refuses (INVALID_ARGUMENT) before
//                                             touching anything: the endpoint's cost per call
//
// --count prints "<label> n=N median_us=M p95_us=P" per measurement; --serve reads one line
// per call from stdin and prints that call's latency in ns (eval/bench/startup.sh interleaves
// it with the other contenders). A call that does not get the expected answer is printed to
// stderr and the program exits 1.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "containerd-shim-rauha-v2/ttrpc/client.h"
#include "containerd-shim-rauha-v2/ttrpc/server.h"
#include "containerd-shim-rauha-v2/ttrpc/socket.h"

namespace {

using rauha::UniqueFd;
namespace ttrpc = rauha::ttrpc;

int Usage(const char* why) {
  std::fprintf(stderr,
               "ttrpc_bench: %s\nusage: ttrpc_bench [--socket PATH] [--count N | --serve]\n", why);
  return 2;
}

// One call on a connection of its own; its latency in ns (connect to answer), or -1 after
// printing why it failed. `expect` is the answer's code.
long long FreshConnectionCall(const std::string& path, const std::string& service,
                              const std::string& method, absl::StatusCode expect) {
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<UniqueFd> fd = ttrpc::ConnectUnix(path);
  if (!fd.ok()) {
    std::fprintf(stderr, "ttrpc_bench: %s\n", fd.status().ToString().c_str());
    return -1;
  }
  absl::StatusOr<std::string> answer = ttrpc::CallOnConnection(fd->get(), service, method, "");
  fd->reset();
  const auto end = std::chrono::steady_clock::now();
  if (answer.status().code() != expect) {
    std::fprintf(stderr, "ttrpc_bench: %s/%s: %s\n", service.c_str(), method.c_str(),
                 answer.status().ToString().c_str());
    return -1;
  }
  return std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count();
}

void PrintSummary(const char* label, std::vector<long long> ns) {
  std::sort(ns.begin(), ns.end());
  const size_t n = ns.size();
  const double median = n % 2 ? ns[n / 2] : (ns[n / 2 - 1] + ns[n / 2]) / 2.0;
  const double p95 = ns[std::min(n - 1, (n * 95 + 99) / 100 - 1)];  // nearest rank
  std::printf("%s n=%zu median_us=%.1f p95_us=%.1f\n", label, n, median / 1000, p95 / 1000);
}

constexpr char kZoneService[] = "rauha.zone.v1.ZoneService";

int Endpoint(const std::string& path, long count, bool serve) {
  auto once = [&] {
    // GetPolicyRequest{} (an empty payload): zone_name "" is refused by its first check.
    return FreshConnectionCall(path, kZoneService, "GetPolicy", absl::StatusCode::kInvalidArgument);
  };
  if (serve) {
    std::string line;
    while (std::getline(std::cin, line)) {
      long long ns = once();
      if (ns < 0) return 1;
      std::printf("%lld\n", ns);
      std::fflush(stdout);
    }
    return 0;
  }
  std::vector<long long> ns;
  for (long i = 0; i < count; ++i) {
    ns.push_back(once());
    if (ns.back() < 0) return 1;
  }
  PrintSummary("endpoint_fresh_connection", ns);
  return 0;
}

int InProcess(long count) {
  char tmpl[] = "/tmp/ttrpc-bench-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return Usage("mkdtemp failed");
  const std::string dir = tmpl, path = dir + "/s.sock";
  int rc = 0;
  {
    ttrpc::Server server;
    server.Register("bench.v1.Bench", "Nothing", [](const ttrpc::CallContext&, const std::string&) {
      return absl::StatusOr<std::string>("");
    });
    absl::StatusOr<UniqueFd> listener = ttrpc::ListenUnix(path);
    if (!listener.ok()) {
      std::fprintf(stderr, "ttrpc_bench: %s\n", listener.status().ToString().c_str());
      return 1;
    }
    server.Serve(std::move(*listener));
    std::vector<long long> fresh, same;
    for (long i = 0; i < count && rc == 0; ++i) {
      fresh.push_back(
          FreshConnectionCall(path, "bench.v1.Bench", "Nothing", absl::StatusCode::kOk));
      if (fresh.back() < 0) rc = 1;
    }
    absl::StatusOr<std::unique_ptr<ttrpc::Client>> client = ttrpc::Client::Connect(path);
    if (!client.ok()) rc = 1;
    for (long i = 0; i < count && rc == 0; ++i) {
      const auto start = std::chrono::steady_clock::now();
      absl::StatusOr<std::string> answer = (*client)->Call("bench.v1.Bench", "Nothing", "");
      const auto end = std::chrono::steady_clock::now();
      if (!answer.ok()) {
        std::fprintf(stderr, "ttrpc_bench: %s\n", answer.status().ToString().c_str());
        rc = 1;
      }
      same.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count());
    }
    if (rc == 0) {
      PrintSummary("inprocess_fresh_connection", fresh);
      PrintSummary("inprocess_same_connection", same);
    }
  }
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket;
  long count = 1000;
  bool serve = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--socket" && i + 1 < argc) {
      socket = argv[++i];
    } else if (arg == "--count" && i + 1 < argc) {
      char* end = nullptr;
      count = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || count < 1) return Usage("--count wants a positive number");
    } else if (arg == "--serve") {
      serve = true;
    } else {
      return Usage(("unknown argument " + arg).c_str());
    }
  }
  if (socket.empty()) {
    if (serve) return Usage("--serve needs --socket");
    return InProcess(count);
  }
  return Endpoint(socket, count, serve);
}
