#include "rauha-shim/landlock.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/strcat.h"

namespace rauha::shim {
namespace {

// uapi <linux/landlock.h>, up to ABI 6.
constexpr int kRulePathBeneath = 1;

constexpr uint64_t kFsExecute = 1ull << 0;
constexpr uint64_t kFsWriteFile = 1ull << 1;
constexpr uint64_t kFsReadFile = 1ull << 2;
constexpr uint64_t kFsReadDir = 1ull << 3;
constexpr uint64_t kFsAbi1 = (1ull << 13) - 1;  // bits 4-12: the remove and make rights
constexpr uint64_t kFsRefer = 1ull << 13;       // ABI 2
constexpr uint64_t kFsTruncate = 1ull << 14;    // ABI 3
constexpr uint64_t kFsIoctlDev = 1ull << 15;    // ABI 5

constexpr uint64_t kScopeAbstractUnixSocket = 1ull << 0;  // ABI 6
constexpr uint64_t kScopeSignal = 1ull << 1;

struct RulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;  // ABI 4
  uint64_t scoped;              // ABI 6
};

struct __attribute__((packed)) PathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
};

uint64_t HandledFs(int abi) {
  uint64_t fs = kFsAbi1;
  if (abi >= 2) fs |= kFsRefer;
  if (abi >= 3) fs |= kFsTruncate;
  if (abi >= 5) fs |= kFsIoctlDev;
  return fs;
}

// Extensible struct: a kernel older than the struct refuses a size whose extra bytes it does
// not know, so pass only what this ABI reads.
size_t RulesetAttrSize(int abi) {
  if (abi >= 6) return sizeof(RulesetAttr);
  if (abi >= 4) return offsetof(RulesetAttr, scoped);
  return offsetof(RulesetAttr, handled_access_net);
}

absl::Status AddRule(int ruleset, const std::string& path, uint64_t access) {
  UniqueFd fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
  // Nothing there (a mount the root builder skipped): nothing to allow.
  if (!fd && errno == ENOENT) return absl::OkStatus();
  if (!fd) return ErrnoStatus(errno, StrCat("landlock: open ", path));
  PathBeneathAttr rule{access, fd.get()};
  if (::syscall(SYS_landlock_add_rule, ruleset, kRulePathBeneath, &rule, 0) < 0) {
    return ErrnoStatus(errno, StrCat("landlock: add a rule for ", path));
  }
  return absl::OkStatus();
}

}  // namespace

std::string LandlockSummary(int abi) {
  return StrCat("landlock: ABI ", abi, ", fs", abi >= 6 ? " + scope" : "",
                " (writes only beneath the task's writable paths",
                abi >= 6 ? "; no signals or abstract unix sockets out of the task)" : ")");
}

absl::Status ApplyLandlock(const TaskPlan& plan) {
  const int abi = plan.landlock_abi;
  const uint64_t handled = HandledFs(abi);
  RulesetAttr attr{};
  attr.handled_access_fs = handled;
  // handled_access_net stays 0: TCP is nftables' and cgroup-bpf's (see the header).
  if (abi >= 6) attr.scoped = kScopeAbstractUnixSocket | kScopeSignal;
  UniqueFd ruleset(
      static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, RulesetAttrSize(abi), 0)));
  if (!ruleset) return ErrnoStatus(errno, StrCat("landlock: create a ruleset (ABI ", abi, ")"));

  // With an exec allow-list, execute is granted only beneath it (and to the dynamic loader,
  // which the kernel opens for execution on behalf of every dynamically linked program).
  const uint64_t exec = plan.exec_allowed.empty() ? kFsExecute : 0;
  const uint64_t read = kFsReadFile | kFsReadDir | exec;
  const uint64_t all = plan.exec_allowed.empty() ? handled : (handled & ~kFsExecute);
  if (plan.root_writable) {
    RAUHA_RETURN_IF_ERROR(AddRule(ruleset.get(), "/", all));
  } else {
    RAUHA_RETURN_IF_ERROR(AddRule(ruleset.get(), "/", read));
    std::vector<std::string> writable = {"/tmp", "/dev/shm"};
    for (const auto& d : plan.overlay_dirs) writable.push_back(d);
    for (const auto& d : plan.scratch_dirs) writable.push_back(d);
    for (const auto& m : plan.mounts) {
      // A read-only mount under a writable path stays read-only through its mount flag.
      if (m.readonly) continue;
      if (m.is_dir) {
        writable.push_back(m.target);
      } else {
        // A rule on a file may carry only file rights.
        RAUHA_RETURN_IF_ERROR(
            AddRule(ruleset.get(), m.target,
                    (read & ~kFsReadDir) | kFsWriteFile | (kFsTruncate & handled)));
      }
    }
    for (const auto& w : writable) {
      RAUHA_RETURN_IF_ERROR(AddRule(ruleset.get(), w, all));
    }
    // Devices: write and ioctl, but no creating, removing or renaming entries.
    uint64_t dev = read | kFsWriteFile | ((kFsTruncate | kFsIoctlDev) & handled);
    RAUHA_RETURN_IF_ERROR(AddRule(ruleset.get(), "/dev", dev));
  }
  if (!plan.exec_allowed.empty()) {
    std::vector<std::string> exec_paths = plan.exec_allowed;
    for (const char* loader :
         {"/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
          "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"}) {
      exec_paths.push_back(loader);
    }
    for (const auto& e : exec_paths) {
      struct stat st {};
      // A rule on a file may carry only file rights.
      bool dir = ::stat(e.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
      RAUHA_RETURN_IF_ERROR(
          AddRule(ruleset.get(), e,
                  dir ? (kFsExecute | kFsReadFile | kFsReadDir) : (kFsExecute | kFsReadFile)));
    }
  }
  if (::syscall(SYS_landlock_restrict_self, ruleset.get(), 0) < 0) {
    return ErrnoStatus(errno, "landlock: restrict the workload");
  }
  return absl::OkStatus();
}

}  // namespace rauha::shim
