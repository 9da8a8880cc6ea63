#include "rauha-common/kernel_probe.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <fstream>
#include <sstream>

#include "rauha-common/fd.h"
#include "rauha-common/landlock_abi.h"
#include "rauha-common/strcat.h"
#include "rauha-common/userns.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

namespace rauha {
namespace {

std::string ReadText(const std::string& path, bool* ok = nullptr) {
  std::ifstream in(path);
  if (ok) *ok = static_cast<bool>(in);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string Errno(std::string_view what, int err) { return StrCat(what, ": ", strerror(err)); }

bool HasWord(std::string_view text, std::string_view word, char sep) {
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(sep, start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view w = text.substr(start, end - start);
    while (!w.empty() && (w.back() == '\n' || w.back() == ' ')) w.remove_suffix(1);
    if (w == word) return true;
    start = end + 1;
  }
  return false;
}

KernelFeature CgroupFeature(const absl::StatusOr<CgroupLayout>& layout) {
  if (!layout.ok()) return {"cgroup", false, ToStd(layout.status().message())};
  std::string detail = StrCat(ToString(layout->mode));
  if (!layout->unified_mount.empty()) {
    std::string ctrls;
    for (const std::string& c : layout->unified_controllers) ctrls += StrCat(" ", c);
    detail +=
        StrCat("; v2 ", layout->unified_mount, " [", ctrls.empty() ? "" : ctrls.substr(1), "]");
  }
  if (!layout->v1_mounts.empty()) {
    std::string ctrls;
    for (const auto& [c, mount] : layout->v1_mounts) ctrls += StrCat(" ", c);
    detail += StrCat("; v1 [", ctrls.substr(1), "]");
  }
  return {"cgroup", true, detail};
}

// unshare() in a forked child, so the prober's own namespaces never change (and user
// namespaces, which refuse multi-threaded callers, can be tried from a threaded daemon).
KernelFeature NamespaceFeature(const char* name, int flag) {
  std::string fname = StrCat("namespace.", name);
  pid_t pid = fork();
  if (pid < 0) return {fname, false, Errno("fork", errno)};
  if (pid == 0) _exit(unshare(flag) == 0 ? 0 : (errno & 0x7f) + 1);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {fname, true, "unshare works"};
  if (WIFEXITED(status)) return {fname, false, Errno("unshare", WEXITSTATUS(status) - 1)};
  return {fname, false, "probe child died"};
}

void AddSeccomp(std::vector<KernelFeature>& out) {
  if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0) {
    out.push_back({"seccomp", false, Errno("prctl(PR_GET_SECCOMP)", errno)});
    return;
  }
  // A NULL filter program faults (EFAULT) only where filter mode exists (EINVAL otherwise).
  errno = 0;
  bool filter = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, nullptr, 0, 0) < 0 && errno == EFAULT;
  if (!filter) {
    out.push_back({"seccomp", false, "seccomp filter mode (SECCOMP_MODE_FILTER) is missing"});
    return;
  }
  bool ok = false;
  std::string actions = ReadText("/proc/sys/kernel/seccomp/actions_avail", &ok);
  out.push_back({"seccomp", true, ok ? StrCat("filter mode; actions: ", actions) : "filter mode"});
  bool notif = HasWord(actions, "user_notif", ' ');
  out.push_back({"seccomp.user_notif", notif,
                 notif ? "SECCOMP_RET_USER_NOTIF" : "user_notif not in actions_avail"});
}

KernelFeature LandlockFeature() {
  int err = 0;
  int abi = LandlockAbi(&err);
  if (abi >= 1) return {"landlock", true, StrCat("ABI ", abi)};
  if (err == EOPNOTSUPP) {
    return {"landlock", false, "built in but disabled at boot (add landlock to lsm=)"};
  }
  return {"landlock", false, Errno("landlock_create_ruleset", err)};
}

int SilentPrint(enum libbpf_print_level, const char*, va_list) { return 0; }

// A trivial LSM program on file_open: the real question is whether BPF_PROG_LOAD accepts
// trampoline programs (some kernels refuse them, EPERM with an empty log, although "bpf" is
// an active LSM).
KernelFeature BpfLsmFeature() {
  int probe = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_LSM, nullptr);
  bool ok = false;
  std::string lsms = ReadText("/sys/kernel/security/lsm", &ok);
  std::string lsm_note = "active LSM list unknown (/sys/kernel/security/lsm unreadable)";
  if (ok) {
    lsm_note = HasWord(lsms, "bpf", ',')
                   ? "bpf is an active LSM"
                   : StrCat("bpf not in active LSMs (", lsms, "): add it to lsm=");
  }
  bool in_lsm = !ok || HasWord(lsms, "bpf", ',');

  std::string load;
  bool loaded = false;
  struct btf* vmlinux = btf__load_vmlinux_btf();
  if (!vmlinux) {
    load = Errno("loading vmlinux BTF", errno);
  } else {
    int btf_id = btf__find_by_name_kind(vmlinux, "bpf_lsm_file_open", BTF_KIND_FUNC);
    btf__free(vmlinux);
    if (btf_id < 0) {
      load = "no bpf_lsm_file_open in vmlinux BTF (kernel built without CONFIG_BPF_LSM)";
    } else {
      struct bpf_insn insns[] = {
          {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},
          {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
      };
      bpf_prog_load_opts opts{};
      opts.sz = sizeof(opts);
      opts.expected_attach_type = BPF_LSM_MAC;
      opts.attach_btf_id = static_cast<__u32>(btf_id);
      int fd = bpf_prog_load(BPF_PROG_TYPE_LSM, "rauha_probe", "GPL", insns, 2, &opts);
      if (fd >= 0) {
        close(fd);
        loaded = true;
        load = "lsm/file_open loads";
      } else {
        load = Errno("BPF_PROG_LOAD lsm/file_open", -fd);
      }
    }
  }
  std::string detail = StrCat(load, "; ", lsm_note, "; libbpf probe ", probe == 1 ? "ok" : "no");
  return {"bpf_lsm", loaded && in_lsm, detail};
}

KernelFeature CgroupBpfFeature() {
  int probe = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, nullptr);
  if (probe == 1) return {"cgroup_bpf", true, "cgroup/connect4 programs load"};
  if (probe < 0) return {"cgroup_bpf", false, Errno("probing cgroup/sock_addr programs", -probe)};
  return {"cgroup_bpf", false, "BPF_PROG_TYPE_CGROUP_SOCK_ADDR is refused by this kernel"};
}

// Asks nf_tables for its rule-set generation: a netfilter netlink socket opens even where
// nf_tables is absent, the GETGEN answer does not.
KernelFeature NftablesFeature() {
  UniqueFd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER));
  if (!fd) return {"nftables", false, Errno("socket(NETLINK_NETFILTER)", errno)};
  struct timeval tv = {1, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct {
    nlmsghdr nh;
    nfgenmsg nf;
  } req{};
  req.nh.nlmsg_len = sizeof(req);
  req.nh.nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  req.nh.nlmsg_seq = 1;
  req.nf.nfgen_family = AF_UNSPEC;
  req.nf.version = NFNETLINK_V0;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd.get(), &req, sizeof(req), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) <
      0) {
    return {"nftables", false, Errno("sending NFT_MSG_GETGEN", errno)};
  }
  alignas(nlmsghdr) char buf[8192];
  ssize_t n = recv(fd.get(), buf, sizeof(buf), 0);
  if (n < 0) return {"nftables", false, Errno("receiving the NFT_MSG_GETGEN answer", errno)};
  auto* nh = reinterpret_cast<nlmsghdr*>(buf);
  if (!NLMSG_OK(nh, static_cast<size_t>(n))) return {"nftables", false, "malformed answer"};
  if (nh->nlmsg_type == NLMSG_ERROR) {
    auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(nh));
    if (e->error != 0) return {"nftables", false, Errno("NFT_MSG_GETGEN", -e->error)};
  }
  return {"nftables", true, "nf_tables answers over netlink"};
}

KernelFeature OverlayFeature() {
  std::string fs = ReadText("/proc/filesystems");
  for (std::string_view rest = fs; !rest.empty();) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    size_t tab = line.rfind('\t');
    if (line.substr(tab == std::string_view::npos ? 0 : tab + 1) == "overlay") {
      return {"overlayfs", true, "overlay in /proc/filesystems"};
    }
  }
  return {"overlayfs", false, "overlay not in /proc/filesystems (modprobe overlay)"};
}

}  // namespace

KernelInfo ProbeKernel() {
  KernelInfo info;
  struct utsname u;
  if (uname(&u) == 0) info.kernel_release = u.release;

  absl::StatusOr<CgroupLayout> layout = DetectCgroupLayout();
  if (layout.ok()) info.cgroups = *layout;
  info.features.push_back(CgroupFeature(layout));

  const std::pair<const char*, int> kNamespaces[] = {
      {"user", CLONE_NEWUSER},    {"pid", CLONE_NEWPID}, {"mount", CLONE_NEWNS},
      {"uts", CLONE_NEWUTS},      {"ipc", CLONE_NEWIPC}, {"net", CLONE_NEWNET},
      {"cgroup", CLONE_NEWCGROUP}};
  for (const auto& [name, flag] : kNamespaces) {
    info.features.push_back(NamespaceFeature(name, flag));
  }

  // What a zone's own user namespace needs: one with a map, and an idmapped mount from it.
  std::string userns_detail;
  bool userns = ProbeZoneUserNamespaces("/usr", &userns_detail);
  info.features.push_back({"userns.idmapped_mounts", userns, userns_detail});

  AddSeccomp(info.features);
  info.features.push_back(LandlockFeature());

  libbpf_print_fn_t old_print = libbpf_set_print(SilentPrint);
  info.features.push_back(BpfLsmFeature());
  info.features.push_back(CgroupBpfFeature());
  libbpf_set_print(old_print);

  struct stat st;
  if (stat("/sys/kernel/btf/vmlinux", &st) == 0) {
    info.features.push_back(
        {"btf", true, StrCat("/sys/kernel/btf/vmlinux, ", st.st_size, " bytes")});
  } else {
    info.features.push_back({"btf", false, Errno("/sys/kernel/btf/vmlinux", errno)});
  }
  info.features.push_back(NftablesFeature());
  info.features.push_back(OverlayFeature());

  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
  if (pidfd >= 0) {
    close(pidfd);
    info.features.push_back({"pidfd", true, "pidfd_open works"});
  } else {
    info.features.push_back({"pidfd", false, Errno("pidfd_open", errno)});
  }
  // clone3 with a NULL, zero-sized argument: EINVAL where the syscall exists, ENOSYS where not;
  // it never creates a process.
  errno = 0;
  long rc = syscall(SYS_clone3, nullptr, 0);
  int err = errno;
  if (rc < 0 && err == EINVAL) {
    info.features.push_back({"clone3", true, "clone3 exists"});
  } else {
    info.features.push_back({"clone3", false, Errno("clone3", err)});
  }
  return info;
}

nlohmann::json ToJson(const KernelInfo& info) {
  nlohmann::json v1 = nlohmann::json::object();
  for (const auto& [c, mount] : info.cgroups.v1_mounts) v1[c] = mount;
  nlohmann::json features = nlohmann::json::array();
  for (const KernelFeature& f : info.features) {
    features.push_back({{"name", f.name}, {"available", f.available}, {"detail", f.detail}});
  }
  return {{"kernel", info.kernel_release},
          {"cgroup",
           {{"mode", std::string(ToString(info.cgroups.mode))},
            {"unified_mount", info.cgroups.unified_mount},
            {"unified_controllers", info.cgroups.unified_controllers},
            {"v1", v1}}},
          {"features", features}};
}

}  // namespace rauha
