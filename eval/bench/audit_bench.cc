// The audit log's cost: what one record adds on rauhad's request path (signed and written, with
// and without its fsync; concurrent durable appends sharing fsyncs), what one sandbox adds
// (the records a temporary-zone sandbox writes), and how fast the offline verifier runs.
//
//   audit_bench [--records N] [--dir DIR]      (DIR: a scratch directory on the state disk)
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "rauha-common/audit/chain_verifier.h"
#include "rauhad/audit/audit_log.h"

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Stats {
  double p50 = 0, p99 = 0, mean = 0;
};

Stats Summarise(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  Stats s;
  if (v.empty()) return s;
  s.p50 = v[v.size() / 2];
  s.p99 = v[std::min(v.size() - 1, v.size() * 99 / 100)];
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  return s;
}

nlohmann::json Body(int i) {
  return {{"task_id", "0b7c6f1e-3f7a-4c1e-9d7b-" + std::to_string(100000000000 + i)},
          {"command_sha256", std::string(64, 'a')},
          {"stdout_sha256", std::string(64, 'b')},
          {"stderr_sha256", std::string(64, 'c')},
          {"status", "succeeded"},
          {"exit_code", 0},
          {"layers", {"cgroup-bpf", "landlock", "seccomp", "namespace", "capabilities"}}};
}

}  // namespace

int main(int argc, char** argv) {
  int records = 2000;
  std::string dir = "/var/tmp/rauha-audit-bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--records") records = std::atoi(argv[i + 1]);
    if (flag == "--dir") dir = argv[i + 1];
  }
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto log = rauha::audit::AuditLog::Open({dir + "/audit", "", 64ull << 20});
  if (!log.ok()) {
    std::fprintf(stderr, "audit_bench: %s\n", std::string(log.status().message()).c_str());
    return 1;
  }

  std::vector<double> durable, nosync;
  for (int i = 0; i < records; ++i) {
    auto t0 = Clock::now();
    (void)(*log)->Append("task.finish", "z", Body(i));
    durable.push_back(Ms(Clock::now() - t0));
    t0 = Clock::now();
    (void)(*log)->AppendNoSync("zone.state", "z", Body(i));
    nosync.push_back(Ms(Clock::now() - t0));
  }
  // 8 threads appending durably at once: fsyncs are shared.
  std::vector<double> concurrent;
  std::mutex mu;
  auto t_all = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < records / 8; ++i) {
        auto t0 = Clock::now();
        (void)(*log)->Append("task.finish", "z", Body(t * records + i));
        double ms = Ms(Clock::now() - t0);
        std::lock_guard lock(mu);
        concurrent.push_back(ms);
      }
    });
  }
  for (auto& t : threads) t.join();
  double concurrent_total = Ms(Clock::now() - t_all);

  // A temporary-zone sandbox writes: 3 durable records (zone.create, task.finish, zone.delete)
  // and about 8 unsynced ones (state transitions, task.start).
  Stats d = Summarise(durable), n = Summarise(nosync), c = Summarise(concurrent);
  double per_sandbox = 3 * d.p50 + 8 * n.p50;

  // The verifier, on one core, over everything written.
  auto segments = rauha::audit::SegmentFiles(dir + "/audit");
  std::string bytes;
  for (const auto& s : *segments) {
    std::ifstream in(s, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    bytes += ss.str();
  }
  auto key = rauha::audit::PublicKey::FromPemFile(dir + "/audit/key.pub");
  auto t0 = Clock::now();
  rauha::audit::ChainVerifier verifier(*key);
  verifier.AddSegment("log-000000.ndjson", bytes);
  auto report = verifier.Finish();
  double verify_s = Ms(Clock::now() - t0) / 1000;

  std::printf("audit log, %d records each way (ms)\n", records);
  std::printf("%-34s %8s %8s %8s\n", "", "p50", "p99", "mean");
  std::printf("%-34s %8.3f %8.3f %8.3f\n", "append + fsync (one caller)", d.p50, d.p99, d.mean);
  std::printf("%-34s %8.3f %8.3f %8.3f\n", "append, no fsync", n.p50, n.p99, n.mean);
  std::printf("%-34s %8.3f %8.3f %8.3f\n", "append + fsync (8 callers at once)", c.p50, c.p99,
              c.mean);
  std::printf("8 callers: %.0f durable records/s\n", concurrent.size() / (concurrent_total / 1000));
  std::printf("per temporary-zone sandbox (3 durable + 8 unsynced, p50): %.3f ms\n", per_sandbox);
  std::printf("verify: %llu records in %.3f s = %.0f records/s (%s)\n",
              static_cast<unsigned long long>(report.records), verify_s, report.records / verify_s,
              report.intact ? "intact" : report.error.c_str());
  std::filesystem::remove_all(dir);
  return report.intact ? 0 : 1;
}
