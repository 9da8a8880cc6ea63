// Self-test of the ebpf-vm harness, run inside the guest by run-in-vm.sh: proves that the
// guest kernel has the BPF LSM enabled and that an LSM program loads, attaches and denies.
//
//  1. `bpf` is listed in /sys/kernel/security/lsm (the kernel command line's lsm= took);
//  2. bpf_lsm_file_open has a BTF id in /sys/kernel/btf/vmlinux;
//  3. a `return 0` lsm/file_open program loads and attaches, and opening still works;
//  4. a program denying file_open for this process only (by tgid) makes open() fail with
//     EPERM while attached, and opening works again once its link is closed.
// Exit 0 when all hold, 1 otherwise (each failed check names the syscall and errno). On a host
// whose kernel refuses trampoline programs, step 3 fails with EPERM: that is the point.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "rauha-common/fd.h"

namespace {

int failures = 0;

void Check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) ++failures;
}

std::string Errno(int err) { return std::string(std::strerror(err)); }

// r0 = 0; exit  — or, when deny_tgid != 0: deny (return -EPERM) for that tgid only.
std::vector<bpf_insn> Program(uint32_t deny_tgid) {
  std::vector<bpf_insn> insns;
  auto add = [&](uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    insns.push_back(bpf_insn{code, dst, src, off, imm});
  };
  if (deny_tgid != 0) {
    add(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_current_pid_tgid);  // r0 = pid_tgid
    add(BPF_ALU64 | BPF_RSH | BPF_K, BPF_REG_0, 0, 0, 32);            // r0 >>= 32 (tgid)
    add(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_0, 0, 2, static_cast<int32_t>(deny_tgid));
    add(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, -EPERM);
    add(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  }
  add(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
  add(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  return insns;
}

// Loads and attaches an lsm/file_open program; the returned link fd detaches it when closed.
rauha::UniqueFd LoadAndAttach(int btf_id, uint32_t deny_tgid, const std::string& label) {
  std::vector<bpf_insn> insns = Program(deny_tgid);
  static char log[65536];
  log[0] = '\0';
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_LSM_MAC,
              .attach_btf_id = static_cast<__u32>(btf_id), .log_level = 1, .log_size = sizeof(log),
              .log_buf = log);
  rauha::UniqueFd prog(
      bpf_prog_load(BPF_PROG_TYPE_LSM, "rauha_probe", "GPL", insns.data(), insns.size(), &opts));
  const int load_err = errno;
  Check(prog.valid(), label + ": BPF_PROG_LOAD lsm/file_open" +
                          (prog.valid() ? "" : ": " + Errno(load_err) + " " + log));
  if (!prog.valid()) return {};
  rauha::UniqueFd link(bpf_raw_tracepoint_open(nullptr, prog.get()));
  const int attach_err = errno;
  Check(link.valid(), label + ": attach (BPF_RAW_TRACEPOINT_OPEN)" +
                          (link.valid() ? "" : ": " + Errno(attach_err)));
  return link;
}

// 0 when open succeeds, else its errno.
int TryOpen(const char* path) {
  rauha::UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  return fd.valid() ? 0 : errno;
}

}  // namespace

int main() {
  utsname uts{};
  ::uname(&uts);
  std::printf("guest_probe: kernel %s\n", uts.release);

  std::ifstream lsm_file("/sys/kernel/security/lsm");
  std::string lsms;
  std::getline(lsm_file, lsms);
  bool has_bpf = false;
  std::stringstream list(lsms);
  for (std::string name; std::getline(list, name, ',');) has_bpf |= name == "bpf";
  Check(has_bpf, "bpf in /sys/kernel/security/lsm (\"" + lsms + "\")");

  const int btf_id = libbpf_find_vmlinux_btf_id("file_open", BPF_LSM_MAC);
  Check(btf_id > 0, "BTF id of bpf_lsm_file_open in /sys/kernel/btf/vmlinux" +
                        (btf_id > 0 ? " (" + std::to_string(btf_id) + ")" : ": " + Errno(-btf_id)));
  if (btf_id <= 0) return 1;

  const char* path = "/proc/self/status";
  {
    rauha::UniqueFd link = LoadAndAttach(btf_id, 0, "return 0");
    if (link.valid()) {
      const int err = TryOpen(path);
      Check(err == 0, std::string("open ") + path + " allowed under a return-0 program" +
                          (err ? ": " + Errno(err) : ""));
    }
  }
  {
    rauha::UniqueFd link = LoadAndAttach(btf_id, static_cast<uint32_t>(::getpid()), "deny self");
    if (link.valid()) {
      const int err = TryOpen(path);
      Check(err == EPERM, std::string("open ") + path + " denied with EPERM for this tgid (got " +
                              (err ? Errno(err) : "success") + ")");
    }
  }
  const int err = TryOpen(path);
  Check(err == 0, std::string("open ") + path + " allowed again after detach" +
                      (err ? ": " + Errno(err) : ""));

  std::printf("guest_probe: %s\n", failures == 0 ? "PASS" : "FAIL");
  return failures == 0 ? 0 : 1;
}
