#include "rauhad/linux/bpf/pinned_link.h"

#include <bpf/bpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "rauha-common/errors.h"
#include "rauha-common/fd.h"
#include "rauha-common/strcat.h"

namespace rauha::bpf {
namespace {

// What kind of BPF object an fd from bpf_obj_get is ("anon_inode:bpf-link", "...-map", ...).
bool IsLinkFd(int fd) {
  char target[64] = {};
  std::string proc = StrCat("/proc/self/fd/", fd);
  ssize_t n = ::readlink(proc.c_str(), target, sizeof(target) - 1);
  return n > 0 && std::strcmp(target, "anon_inode:bpf-link") == 0;
}

// The pinned link at `path`, or nullptr when nothing is pinned there (or the pin is no link:
// then it is unlinked).
absl::StatusOr<bpf_link*> OpenPinnedLink(const std::string& path) {
  if (::access(path.c_str(), F_OK) != 0) {
    if (errno == ENOENT) return nullptr;
    return ErrnoStatus(errno, StrCat("access ", path));
  }
  bpf_link* link = bpf_link__open(path.c_str());
  if (link == nullptr) return ErrnoStatus(errno, StrCat("opening the pinned link ", path));
  if (!IsLinkFd(bpf_link__fd(link))) {
    bpf_link__destroy(link);
    ::unlink(path.c_str());
    return nullptr;
  }
  return link;
}

absl::StatusOr<bpf_link_info> LinkInfo(int fd, const std::string& path) {
  bpf_link_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0)
    return ErrnoStatus(errno, StrCat("reading the pinned link ", path));
  return info;
}

// The name the kernel keeps for a program (BPF_OBJ_NAME_LEN - 1 bytes at most).
std::string KernelProgName(uint32_t prog_id) {
  UniqueFd fd(bpf_prog_get_fd_by_id(prog_id));
  if (!fd) return "";
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) return "";
  return std::string(info.name, strnlen(info.name, sizeof(info.name)));
}

}  // namespace

absl::StatusOr<bpf_link*> AdoptCgroupLink(const std::string& path, bpf_program* prog,
                                          uint64_t cgroup_id) {
  RAUHA_ASSIGN_OR_RETURN(bpf_link * link, OpenPinnedLink(path));
  if (link == nullptr) return nullptr;
  absl::StatusOr<bpf_link_info> info = LinkInfo(bpf_link__fd(link), path);
  if (!info.ok()) {
    bpf_link__destroy(link);
    return info.status();
  }
  if (info->type != BPF_LINK_TYPE_CGROUP || info->cgroup.cgroup_id != cgroup_id ||
      info->cgroup.attach_type != bpf_program__expected_attach_type(prog)) {
    RemoveLink(link);
    return nullptr;
  }
  if (bpf_link__update_program(link, prog) != 0) {
    int err = errno;
    RemoveLink(link);
    return ErrnoStatus(err, StrCat("switching the pinned link ", path, " to the new ",
                                   bpf_program__section_name(prog), " program"));
  }
  return link;
}

absl::StatusOr<bpf_link*> AdoptGlobalLink(const std::string& path, bpf_program* prog) {
  RAUHA_ASSIGN_OR_RETURN(bpf_link * link, OpenPinnedLink(path));
  if (link == nullptr) return nullptr;
  absl::StatusOr<bpf_link_info> info = LinkInfo(bpf_link__fd(link), path);
  if (!info.ok()) {
    bpf_link__destroy(link);
    return info.status();
  }
  std::string want = std::string(bpf_program__name(prog)).substr(0, BPF_OBJ_NAME_LEN - 1);
  if (info->type == BPF_LINK_TYPE_CGROUP || KernelProgName(info->prog_id) != want) {
    RemoveLink(link);
    return nullptr;
  }
  return link;
}

void RemoveLink(bpf_link* link) {
  if (link == nullptr) return;
  // EOPNOTSUPP for links the kernel cannot detach early (LSM/tracing): they go with the pin.
  (void)bpf_link_detach(bpf_link__fd(link));
  if (bpf_link__pin_path(link) != nullptr) (void)bpf_link__unpin(link);
  bpf_link__destroy(link);
}

void RemovePinnedLink(const std::string& path) {
  absl::StatusOr<bpf_link*> link = OpenPinnedLink(path);
  if (link.ok() && *link != nullptr) {
    RemoveLink(*link);
  } else if (!link.ok()) {
    ::unlink(path.c_str());
  }
}

bool PinnedMapReusable(bpf_map* map, const std::string& path) {
  UniqueFd fd(bpf_obj_get(path.c_str()));
  if (!fd) return false;
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  bool fits =
      bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0 && info.type == bpf_map__type(map) &&
      info.key_size == bpf_map__key_size(map) && info.value_size == bpf_map__value_size(map) &&
      info.max_entries == bpf_map__max_entries(map) && info.map_flags == bpf_map__map_flags(map) &&
      info.map_extra == bpf_map__map_extra(map);
  if (!fits) {
    std::fprintf(stderr,
                 "rauhad: the pinned map %s does not fit this BPF object (type, sizes or "
                 "flags differ): making a new one\n",
                 path.c_str());
    ::unlink(path.c_str());
  }
  return fits;
}

absl::Status PinProgram(int prog_fd, const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return ErrnoStatus(errno, StrCat("unlink ", path));
  if (bpf_obj_pin(prog_fd, path.c_str()) != 0) return ErrnoStatus(errno, StrCat("pinning ", path));
  return absl::OkStatus();
}

absl::Status PinProgramOfLink(int link_fd, const std::string& path) {
  RAUHA_ASSIGN_OR_RETURN(bpf_link_info info, LinkInfo(link_fd, path));
  UniqueFd prog(bpf_prog_get_fd_by_id(info.prog_id));
  if (!prog) return ErrnoStatus(errno, StrCat("opening program ", info.prog_id, " for ", path));
  return PinProgram(prog.get(), path);
}

}  // namespace rauha::bpf
