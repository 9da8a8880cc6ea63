// userns_bench: what a zone's own user namespace costs.
//
//   userns_bench mounts [--count N] [--repo DIR]
//       In a private mount namespace: attaching a copy of DIR (default: a fresh directory in
//       /tmp) as the shim attaches the repo, plain (open_tree + move_mount) and idmapped
//       (open_tree + mount_setattr MOUNT_ATTR_IDMAP + move_mount), interleaved, N each; plus
//       making one user namespace with its maps (what the shim does once per zone, and once
//       per (repo owner, task user) pair for the idmap). Median and p90 in microseconds.
//   userns_bench layers [--count N] [--layers K]
//       In a private mount namespace: an image root of K layers (default 5; small dirs in
//       /tmp) plain (overlayfs over the layer dirs), idmapped per layer (each layer an
//       open_tree clone with MOUNT_ATTR_IDMAP through a zone's user namespace, attached,
//       overlayfs over those) and idmapped once (the directory holding the layers cloned and
//       idmapped once, overlayfs over the layers in it: what the shim does), mounted and
//       unmounted again, interleaved, N each.
//   userns_bench sandbox --socket PATH [--count N] [--image REF]
//       RunSandbox of /bin/true, interleaved: the default policy with and without
//       [zone] userns (a fresh temporary zone each: zone start-up included), then in two
//       named zones, one of each (the per-task cost alone). Run rauhad with --warm-zones 0.
//       With --image, every call runs `/bin/busybox true` on that image's root (its layers
//       idmapped where userns is on).
//
// Needs root. A failed call or mount aborts with the error: nothing failed is averaged in.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "rauha-common/userns.h"
#include "rauha/v1/sandbox.grpc.pb.h"
#include "rauha/v1/zone.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

double Us(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "userns_bench: %s\n", what.c_str());
  std::exit(1);
}

void Check(bool ok, const std::string& what) {
  if (!ok) Die(what + ": " + std::strerror(errno));
}

struct Stats {
  double median = 0, p90 = 0;
};

Stats Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return {};
  return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 9 / 10)]};
}

void Row(const char* name, const std::vector<double>& v) {
  Stats s = Summarize(v);
  std::printf("| %-52s | %9.1f | %9.1f | %5zu |\n", name, s.median, s.p90, v.size());
}

void AttachDetach(int tree, const std::string& target) {
  Check(::syscall(SYS_move_mount, tree, "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) == 0,
        "move_mount");
  Check(::umount2(target.c_str(), MNT_DETACH) == 0, "umount2");
}

int Mounts(long count, std::string repo) {
  Check(::unshare(CLONE_NEWNS) == 0, "unshare(CLONE_NEWNS)");
  Check(::mount("", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0, "make / private");
  char tmpl[] = "/tmp/userns-bench-XXXXXX";
  Check(::mkdtemp(tmpl) != nullptr, "mkdtemp");
  std::string dir = tmpl;
  if (repo.empty()) {
    repo = dir + "/repo";
    Check(::mkdir(repo.c_str(), 0755) == 0, "mkdir repo");
    Check(::chown(repo.c_str(), 1234, 1234) == 0, "chown repo");
  }
  std::string target = dir + "/target";
  Check(::mkdir(target.c_str(), 0755) == 0, "mkdir target");
  std::vector<rauha::IdMapping> zone = {{0, 100000000, rauha::kZoneIdCount}};
  std::vector<double> plain, idmapped, bind, make_ns;
  for (long i = 0; i < count; ++i) {
    auto t0 = Clock::now();
    auto ns = rauha::CreateUserNamespace({{1234, 100000000, 1}}, {{1234, 100000000, 1}});
    auto t1 = Clock::now();
    if (!ns.ok()) Die(std::string(ns.status().message()));
    make_ns.push_back(Us(t0, t1));

    t0 = Clock::now();
    Check(::mount(repo.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) == 0, "bind");
    Check(::umount2(target.c_str(), MNT_DETACH) == 0, "umount2");
    t1 = Clock::now();
    bind.push_back(Us(t0, t1));

    t0 = Clock::now();
    int tree = static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, repo.c_str(),
                                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
    Check(tree >= 0, "open_tree");
    AttachDetach(tree, target);
    ::close(tree);
    t1 = Clock::now();
    plain.push_back(Us(t0, t1));

    t0 = Clock::now();
    auto idtree = rauha::IdmappedTree(AT_FDCWD, repo, ns->user.get(), 0);
    if (!idtree.ok()) Die(std::string(idtree.status().message()));
    AttachDetach(idtree->get(), target);
    idtree->reset();
    t1 = Clock::now();
    idmapped.push_back(Us(t0, t1));
  }
  std::printf("| %-52s | %9s | %9s | %5s |\n|---|---:|---:|---:|\n", "step (µs)", "median", "p90",
              "n");
  Row("bind mount + umount (mount MS_BIND)", bind);
  Row("open_tree + move_mount + umount (the repo, plain)", plain);
  Row("open_tree + MOUNT_ATTR_IDMAP + move_mount + umount", idmapped);
  Row("make a user namespace with its maps (per zone / pair)", make_ns);
  ::rmdir(target.c_str());
  if (repo == dir + "/repo") ::rmdir(repo.c_str());
  ::rmdir(dir.c_str());
  return 0;
}

// An image root as the shim builds it, K layers: plain (overlayfs over the layer dirs) vs
// idmapped (each layer cloned with MOUNT_ATTR_IDMAP through a zone's user namespace and
// attached, then overlayfs over those), each torn down again. Interleaved, N each.
int Layers(long count, long layer_count) {
  Check(::unshare(CLONE_NEWNS) == 0, "unshare(CLONE_NEWNS)");
  Check(::mount("", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0, "make / private");
  char tmpl[] = "/tmp/userns-bench-XXXXXX";
  Check(::mkdtemp(tmpl) != nullptr, "mkdtemp");
  const std::string dir = tmpl;
  // Layers on the host's disk (as rauhad's layer cache), a few files each.
  const std::string cache = dir + "/cache";
  Check(::mkdir(cache.c_str(), 0755) == 0, "mkdir cache");
  std::vector<std::string> layers;
  for (long i = 0; i < layer_count; ++i) {
    std::string l = cache + "/layer" + std::to_string(i);
    Check(::mkdir(l.c_str(), 0755) == 0, "mkdir layer");
    for (int f = 0; f < 8; ++f) {
      std::string file = l + "/f" + std::to_string(i) + "-" + std::to_string(f);
      int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      Check(fd >= 0, "create a layer file");
      ::close(fd);
    }
    layers.push_back(l);
  }
  // The task's tmpfs, holding the upper and work dirs, the merged root and the idmapped lowers.
  const std::string scratch = dir + "/scratch";
  Check(::mkdir(scratch.c_str(), 0700) == 0, "mkdir scratch");
  Check(::mount("bench", scratch.c_str(), "tmpfs", 0, "mode=0700") == 0, "mount tmpfs");
  std::vector<rauha::IdMapping> zone = {{0, 100000000, rauha::kZoneIdCount}};
  auto ns = rauha::CreateUserNamespace(zone, zone);
  if (!ns.ok()) Die(std::string(ns.status().message()));
  long round = 0;
  // 0: plain; 1: each layer idmapped; 2: their directory idmapped once (what the shim does).
  auto build = [&](int idmapped) {
    std::string base = scratch + "/" + std::to_string(round++);
    std::string upper = base + "/upper", work = base + "/work", root = base + "/root";
    for (const std::string& d : {base, upper, work, root}) {
      Check(::mkdir(d.c_str(), 0755) == 0, "mkdir " + d);
    }
    std::vector<std::string> lowers = layers;
    if (idmapped == 2) {
      std::string at = base + "/lower";
      Check(::mkdir(at.c_str(), 0700) == 0, "mkdir lower");
      auto tree = rauha::IdmappedTree(AT_FDCWD, cache, ns->user.get(),
                                      MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
      if (!tree.ok()) Die(std::string(tree.status().message()));
      Check(::syscall(SYS_move_mount, tree->get(), "", AT_FDCWD, at.c_str(),
                      MOVE_MOUNT_F_EMPTY_PATH) == 0,
            "move_mount lower");
      for (long i = 0; i < layer_count; ++i) lowers[i] = at + "/layer" + std::to_string(i);
      Check(::chown(upper.c_str(), 100000000, 100000000) == 0, "chown upper");
    } else if (idmapped == 1) {
      for (long i = 0; i < layer_count; ++i) {
        std::string at = base + "/lower" + std::to_string(i);
        Check(::mkdir(at.c_str(), 0700) == 0, "mkdir lower");
        auto tree = rauha::IdmappedTree(AT_FDCWD, layers[i], ns->user.get(),
                                        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
        if (!tree.ok()) Die(std::string(tree.status().message()));
        Check(::syscall(SYS_move_mount, tree->get(), "", AT_FDCWD, at.c_str(),
                        MOVE_MOUNT_F_EMPTY_PATH) == 0,
              "move_mount lower");
        lowers[i] = at;
      }
      Check(::chown(upper.c_str(), 100000000, 100000000) == 0, "chown upper");
    }
    std::string data = "lowerdir=";
    for (size_t i = 0; i < lowers.size(); ++i) data += (i ? ":" : "") + lowers[i];
    data += ",upperdir=" + upper + ",workdir=" + work;
    Check(::mount("bench", root.c_str(), "overlay", MS_NOSUID | MS_NODEV, data.c_str()) == 0,
          "mount overlay");
    // What a task's exit does to it: the mount namespace goes, every mount with it.
    Check(::umount2(root.c_str(), MNT_DETACH) == 0, "umount overlay");
    if (idmapped == 2) Check(::umount2((base + "/lower").c_str(), MNT_DETACH) == 0, "umount");
    if (idmapped == 1) {
      for (long i = 0; i < layer_count; ++i) {
        std::string at = base + "/lower" + std::to_string(i);
        Check(::umount2(at.c_str(), MNT_DETACH) == 0, "umount lower");
      }
    }
  };
  std::vector<double> plain, each, once;
  for (long i = 0; i < count; ++i) {
    auto t0 = Clock::now();
    build(0);
    auto t1 = Clock::now();
    build(1);
    auto t2 = Clock::now();
    build(2);
    auto t3 = Clock::now();
    plain.push_back(Us(t0, t1));
    each.push_back(Us(t1, t2));
    once.push_back(Us(t2, t3));
  }
  std::printf("| %-52s | %9s | %9s | %5s |\n|---|---:|---:|---:|\n",
              ("image root of " + std::to_string(layer_count) + " layers (µs)").c_str(), "median",
              "p90", "n");
  Row("overlayfs over the layer dirs (plain)", plain);
  Row("each layer idmapped, overlayfs over them", each);
  Row("their directory idmapped once, overlayfs (the shim)", once);
  Check(::umount2(scratch.c_str(), MNT_DETACH) == 0, "umount scratch");
  for (const auto& l : layers) {
    for (int f = 0; f < 8; ++f) {
      std::string file = l + "/f" + l.substr(l.rfind("layer") + 5) + "-" + std::to_string(f);
      ::unlink(file.c_str());
    }
    ::rmdir(l.c_str());
  }
  ::rmdir(cache.c_str());
  ::rmdir(scratch.c_str());
  ::rmdir(dir.c_str());
  return 0;
}

namespace sv1 = rauha::sandbox::v1;
namespace zv1 = rauha::zone::v1;

double RunOnce(sv1::SandboxService::Stub& stub, sv1::RunSandboxRequest req) {
  // On an image: its busybox (the host's /bin/true is not there).
  if (req.image().empty()) {
    req.add_command("/bin/true");
  } else {
    req.add_command("/bin/busybox");
    req.add_command("true");
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  sv1::SandboxResult result;
  auto t0 = Clock::now();
  grpc::Status st = stub.RunSandbox(&ctx, req, &result);
  auto t1 = Clock::now();
  if (!st.ok()) Die("RunSandbox: " + st.error_message());
  if (result.status() != "succeeded") Die("RunSandbox: " + result.status() + " " + result.error());
  return Us(t0, t1);
}

int Sandbox(const std::string& socket, long count, const std::string& image) {
  auto channel = grpc::CreateChannel("unix://" + socket, grpc::InsecureChannelCredentials());
  auto stub = sv1::SandboxService::NewStub(channel);
  auto zones = zv1::ZoneService::NewStub(channel);
  const std::string on = "[zone]\nuserns = true\n", off = "[zone]\nuserns = false\n";
  for (const auto& [name, policy] : {std::pair{"bench-userns-on", on}, {"bench-userns-off", off}}) {
    zv1::CreateZoneRequest req;
    req.set_name(name);
    req.set_policy_toml(policy);
    zv1::CreateZoneResponse resp;
    grpc::ClientContext ctx;
    grpc::Status st = zones->CreateZone(&ctx, req, &resp);
    if (!st.ok()) Die("CreateZone " + std::string(name) + ": " + st.error_message());
  }
  std::vector<double> fresh_on, fresh_off, task_on, task_off;
  sv1::RunSandboxRequest fon, foff, ton, toff;
  fon.set_policy_toml(on);
  foff.set_policy_toml(off);
  ton.set_name("bench-userns-on");
  toff.set_name("bench-userns-off");
  for (auto* r : {&fon, &foff, &ton, &toff}) r->set_image(image);
  for (int warm = 0; warm < 3; ++warm) RunOnce(*stub, fon), RunOnce(*stub, foff);
  for (long i = 0; i < count; ++i) {
    fresh_on.push_back(RunOnce(*stub, fon));
    fresh_off.push_back(RunOnce(*stub, foff));
    task_on.push_back(RunOnce(*stub, ton));
    task_off.push_back(RunOnce(*stub, toff));
  }
  std::printf("| %-52s | %9s | %9s | %5s |\n|---|---:|---:|---:|\n",
              image.empty() ? "RunSandbox /bin/true (µs)" : "RunSandbox --image, busybox true (µs)",
              "median", "p90", "n");
  Row("fresh zone, userns on", fresh_on);
  Row("fresh zone, userns off", fresh_off);
  Row("existing zone (task only), userns on", task_on);
  Row("existing zone (task only), userns off", task_off);
  for (const char* name : {"bench-userns-on", "bench-userns-off"}) {
    zv1::DeleteZoneRequest req;
    req.set_name(name);
    req.set_force(true);
    zv1::DeleteZoneResponse resp;
    grpc::ClientContext ctx;
    (void)zones->DeleteZone(&ctx, req, &resp);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2)
    Die("usage: userns_bench mounts|layers|sandbox [--count N] [--layers K] [--socket PATH] "
        "[--repo DIR]");
  std::string mode = argv[1], socket, repo, image;
  long count = 200, layer_count = 5;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--count") {
      count = std::strtol(argv[i + 1], nullptr, 10);
    } else if (flag == "--socket") {
      socket = argv[i + 1];
    } else if (flag == "--image") {
      image = argv[i + 1];
    } else if (flag == "--layers") {
      layer_count = std::strtol(argv[i + 1], nullptr, 10);
    } else if (flag == "--repo") {
      repo = argv[i + 1];
    } else {
      Die("unknown flag " + flag);
    }
  }
  if (count <= 0) Die("--count must be positive");
  if (mode == "mounts") return Mounts(count, repo);
  if (mode == "layers") {
    if (layer_count <= 0 || layer_count > 100) Die("--layers must be 1 to 100");
    return Layers(count, layer_count);
  }
  if (mode == "sandbox" && !socket.empty()) return Sandbox(socket, count, image);
  Die("usage: userns_bench mounts|layers|sandbox [--count N] [--layers K] [--socket PATH] [--repo "
      "DIR]");
}
