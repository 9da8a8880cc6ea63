// CRI pod lifecycle timings through containerd's CRI service, one interleaved run per handler:
//   RunPodSandbox | CreateContainer + StartContainer | StopPodSandbox + RemovePodSandbox
// Driven by eval/bench/cri.sh (which starts containerd, rauhad and CNI); prints one line per
// handler with median and p90 of each step in ms.
//   cri_bench --address unix:///path/c.sock --log-dir DIR [--runs N] [--image REF]
//             [--handlers rauha,runc] [--hold K]
// --hold K: afterwards, start K pods (one container each) per handler, print "holding", wait
// for a line on stdin (the script measures shim memory meanwhile), then remove them.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cri-api/runtime/v1/api.grpc.pb.h"
#include "grpcpp/create_channel.h"

namespace {

namespace cri = runtime::v1;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string address;
  std::string log_dir;
  std::string image = "localhost/busybox:v1";
  std::vector<std::string> handlers = {"rauha", "runc"};
  int runs = 20;
  int hold = 0;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "cri_bench: %s\n", what.c_str());
  std::exit(1);
}

void Check(const grpc::Status& s, const std::string& what) {
  if (!s.ok()) Die(what + ": " + s.error_message());
}

class Pods {
 public:
  Pods(std::shared_ptr<grpc::Channel> channel, const Args& args)
      : rt_(cri::RuntimeService::NewStub(channel)), args_(args) {}

  cri::PodSandboxConfig Config(const std::string& name) const {
    cri::PodSandboxConfig c;
    c.mutable_metadata()->set_name(name);
    c.mutable_metadata()->set_namespace_("bench");
    c.mutable_metadata()->set_uid("uid-" + name);
    c.set_hostname(name);
    c.set_log_directory(args_.log_dir + "/" + name);
    c.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
        cri::POD);
    return c;
  }

  std::string Run(const cri::PodSandboxConfig& config, const std::string& handler) {
    grpc::ClientContext ctx;
    cri::RunPodSandboxRequest req;
    *req.mutable_config() = config;
    req.set_runtime_handler(handler);
    cri::RunPodSandboxResponse resp;
    Check(rt_->RunPodSandbox(&ctx, req, &resp), "RunPodSandbox (" + handler + ")");
    return resp.pod_sandbox_id();
  }

  void CreateAndStart(const std::string& pod, const cri::PodSandboxConfig& config) {
    cri::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod);
    *req.mutable_sandbox_config() = config;
    req.mutable_config()->mutable_metadata()->set_name("app");
    req.mutable_config()->mutable_image()->set_image(args_.image);
    for (const char* a : {"/bin/busybox", "sleep", "600"}) req.mutable_config()->add_command(a);
    req.mutable_config()->set_log_path("app.log");
    cri::CreateContainerResponse created;
    {
      grpc::ClientContext ctx;
      Check(rt_->CreateContainer(&ctx, req, &created), "CreateContainer");
    }
    grpc::ClientContext ctx;
    cri::StartContainerRequest start;
    start.set_container_id(created.container_id());
    cri::StartContainerResponse started;
    Check(rt_->StartContainer(&ctx, start, &started), "StartContainer");
  }

  void StopAndRemove(const std::string& pod) {
    {
      grpc::ClientContext ctx;
      cri::StopPodSandboxRequest req;
      req.set_pod_sandbox_id(pod);
      cri::StopPodSandboxResponse resp;
      Check(rt_->StopPodSandbox(&ctx, req, &resp), "StopPodSandbox");
    }
    grpc::ClientContext ctx;
    cri::RemovePodSandboxRequest req;
    req.set_pod_sandbox_id(pod);
    cri::RemovePodSandboxResponse resp;
    Check(rt_->RemovePodSandbox(&ctx, req, &resp), "RemovePodSandbox");
  }

 private:
  std::unique_ptr<cri::RuntimeService::Stub> rt_;
  const Args& args_;
};

double Ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::string Stat(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.1f / %.1f", v[(v.size() - 1) / 2],
                v[std::min(v.size() - 1, static_cast<size_t>(v.size() * 0.9))]);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--address") {
      args.address = value();
    } else if (a == "--log-dir") {
      args.log_dir = value();
    } else if (a == "--image") {
      args.image = value();
    } else if (a == "--runs") {
      args.runs = std::atoi(value().c_str());
    } else if (a == "--hold") {
      args.hold = std::atoi(value().c_str());
    } else if (a == "--handlers") {
      args.handlers.clear();
      std::stringstream s(value());
      for (std::string h; std::getline(s, h, ',');) args.handlers.push_back(h);
    } else {
      Die("unknown argument " + a);
    }
  }
  if (args.address.empty() || args.log_dir.empty() || args.runs < 1 || args.handlers.empty()) {
    Die("usage: cri_bench --address unix:///path --log-dir DIR [--runs N] [--image REF] "
        "[--handlers rauha,runc] [--hold K]");
  }
  Pods pods(grpc::CreateChannel(args.address, grpc::InsecureChannelCredentials()), args);
  std::map<std::string, std::vector<double>> run, start, remove;
  for (int i = 0; i < args.runs; i++) {
    for (const auto& h : args.handlers) {
      auto config = pods.Config(h + "-" + std::to_string(i));
      auto t0 = Clock::now();
      std::string pod = pods.Run(config, h);
      auto t1 = Clock::now();
      pods.CreateAndStart(pod, config);
      auto t2 = Clock::now();
      pods.StopAndRemove(pod);
      auto t3 = Clock::now();
      run[h].push_back(Ms(t0, t1));
      start[h].push_back(Ms(t1, t2));
      remove[h].push_back(Ms(t2, t3));
    }
  }
  std::printf("%d interleaved runs; ms median / p90\n", args.runs);
  std::printf("%-8s %-18s %-26s %-18s\n", "handler", "RunPodSandbox", "Create+Start container",
              "Stop+Remove pod");
  for (const auto& h : args.handlers) {
    std::printf("%-8s %-18s %-26s %-18s\n", h.c_str(), Stat(run[h]).c_str(), Stat(start[h]).c_str(),
                Stat(remove[h]).c_str());
  }
  std::fflush(stdout);
  if (args.hold > 0) {
    std::vector<std::string> held;
    for (const auto& h : args.handlers) {
      for (int i = 0; i < args.hold; i++) {
        auto config = pods.Config("hold-" + h + "-" + std::to_string(i));
        held.push_back(pods.Run(config, h));
        pods.CreateAndStart(held.back(), config);
      }
    }
    std::printf("holding\n");
    std::fflush(stdout);
    std::string line;
    std::getline(std::cin, line);
    for (const auto& pod : held) pods.StopAndRemove(pod);
  }
  return 0;
}
