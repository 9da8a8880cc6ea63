// SPDX-License-Identifier: GPL-2.0
// Rauha's kernel enforcer: one CO-RE object, built against this host's vmlinux.h and relocated
// by libbpf on the running kernel. Layout of maps and events: rauha_bpf.h.
//
// Every program returns "allow" at once for a task in no zone. The zone lookup (current cgroup
// v2 id, then a hash lookup in rauha_zones) is the dearest part of that exit, so hooks whose
// check applies only to some calls test the cheap discriminators first: file_open's open mode,
// then the task's no_new_privs flag (a plain load). A read-only open, the common case, never
// touches a map. Reordering these early exits changes no decision: each returns 0.
//
// Arming: the shim's child runs its setup (mounts, joining the v1 cgroups through cgroupfs,
// writing uid maps, dropping capabilities) inside the zone's cgroup with full privileges, and
// sets no_new_privs right before it execs the workload. The LSM checks that setup would trip
// (file_open, bprm_check, mounts, capable, userns_create, bpf, perf_event_open) therefore apply
// only to tasks with no_new_privs, which the workload and everything it starts inherit and
// cannot clear. ptrace, signals, connect and module loading are checked from the start.
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "rauha_bpf.h"

char LICENSE[] SEC("license") = "GPL";

// uapi/kernel constants vmlinux.h does not carry (macros, not types).
#define EPERM 1
#define AF_INET 2
#define AF_INET6 10
#define AF_PACKET 17
#define SOCK_RAW 3
#define FMODE_WRITE 0x2
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFCHR 0020000
#define S_IFIFO 0010000
#define CGROUP_SUPER_MAGIC 0x27e0eb
#define CGROUP2_SUPER_MAGIC 0x63677270
#define ANON_INODE_FS_MAGIC 0x09041934
#define PFA_NO_NEW_PRIVS 0
#define CAP_OPT_NOAUDIT 0x2
#define DEVCG_DEV_BLOCK 1
#define DEVCG_DEV_CHAR 2
#define LSM_AUDIT_DATA_PATH 1
#define LSM_AUDIT_DATA_NET 2
#define LSM_AUDIT_DATA_TASK 5
#define LSM_AUDIT_DATA_DENTRY 10
#define LSM_AUDIT_DATA_FILE 12
// enum kernel_read_file_id / kernel_load_data_id: module, kexec image, kexec initramfs, policy.
#define KREAD_FIRST_DENIED 2
#define KREAD_LAST_DENIED 5

// Wake the consumer only when this much is waiting; it also polls every 10 ms.
const volatile __u64 rauha_wakeup_bytes = 1 << 20;
// Events lost across all zones (a full ring buffer).
__u64 rauha_total_lost = 0;

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, RAUHA_ZONES_MAX);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, __u64);
  __type(value, struct rauha_zone);
} rauha_zones SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, RAUHA_ZONES_MAX);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, __u64);
  __type(value, struct rauha_counters);
} rauha_counters SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 22);  // resized by the loader
} rauha_events SEC(".maps");

struct scratch {
  char path[RAUHA_PATH_LEN];
};
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct scratch);
} rauha_scratch SEC(".maps");

static __always_inline struct scratch* get_scratch(void) {
  __u32 zero = 0;
  return bpf_map_lookup_elem(&rauha_scratch, &zero);
}

// ---- events -------------------------------------------------------------------------------

static __always_inline __u64 task_pidns_ino(struct task_struct* task) {
  struct pid* pid = BPF_CORE_READ(task, thread_pid);
  if (!pid) return 0;
  unsigned int level = BPF_CORE_READ(pid, level) & 31;
  struct pid_namespace* ns = NULL;
  void* upid = (void*)pid + bpf_core_field_offset(struct pid, numbers) +
               level * bpf_core_type_size(struct upid);
  bpf_probe_read_kernel(&ns, sizeof(ns), upid + bpf_core_field_offset(struct upid, ns));
  if (!ns) return 0;
  return BPF_CORE_READ(ns, ns.inum);
}

static __always_inline __u64 task_cgroup_id(struct task_struct* task) {
  return BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
}

// Counts the denial and reserves its event; NULL (counted as lost) when the buffer is full.
static __always_inline struct rauha_event* deny_begin(__u64 cgid, __u16 hook, __u16 reason) {
  struct rauha_counters* c = bpf_map_lookup_elem(&rauha_counters, &cgid);
  if (c && hook < RAUHA_HOOK_COUNT) __sync_fetch_and_add(&c->denied[hook], 1);
  struct rauha_event* e = bpf_ringbuf_reserve(&rauha_events, sizeof(*e), 0);
  if (!e) {
    if (c) __sync_fetch_and_add(&c->lost, 1);
    __sync_fetch_and_add(&rauha_total_lost, 1);
    return NULL;
  }
  __builtin_memset(e, 0, sizeof(*e));
  e->ktime_ns = bpf_ktime_get_ns();
  e->cgroup_id = cgid;
  __u64 pid_tgid = bpf_get_current_pid_tgid();
  e->pid = pid_tgid >> 32;
  e->tid = (__u32)pid_tgid;
  bpf_get_current_comm(e->comm, sizeof(e->comm));
  e->pidns_ino = task_pidns_ino((struct task_struct*)bpf_get_current_task());
  e->hook = hook;
  e->reason = reason;
  e->ret = -EPERM;
  return e;
}

static __always_inline void deny_submit(struct rauha_event* e) {
  __u64 flags = bpf_ringbuf_query(&rauha_events, BPF_RB_AVAIL_DATA) >= rauha_wakeup_bytes
                    ? BPF_RB_FORCE_WAKEUP
                    : BPF_RB_NO_WAKEUP;
  bpf_ringbuf_submit(e, flags);
}

// ---- zone lookup ----------------------------------------------------------------------------

// LSM and kprobe programs: the current cgroup itself must be a zone.
static __always_inline struct rauha_zone* current_zone(__u64* cgid) {
  *cgid = bpf_get_current_cgroup_id();
  return bpf_map_lookup_elem(&rauha_zones, cgid);
}

// cgroup programs run for the zone's cgroup and its descendants: walk up on a miss.
static __always_inline struct rauha_zone* current_zone_or_ancestor(__u64* cgid) {
  __u64 id = bpf_get_current_cgroup_id();
  struct rauha_zone* z = bpf_map_lookup_elem(&rauha_zones, &id);
  if (z) {
    *cgid = id;
    return z;
  }
  for (int level = 1; level < 16; level++) {
    id = bpf_get_current_ancestor_cgroup_id(level);
    if (!id) break;
    z = bpf_map_lookup_elem(&rauha_zones, &id);
    if (z) {
      *cgid = id;
      return z;
    }
  }
  return NULL;
}

// A direct load through the trusted BTF pointer (still CO-RE relocated): no helper call.
static __always_inline bool armed(void) {
  struct task_struct* task = bpf_get_current_task_btf();
  return task->atomic_flags & (1UL << PFA_NO_NEW_PRIVS);
}

// ---- network decisions ----------------------------------------------------------------------

static __always_inline bool rule_matches(const struct rauha_net_rule* r, __u8 family,
                                         const __u32 a[4]) {
  if (r->family != family) return false;
  return ((a[0] ^ r->addr[0]) & r->mask[0]) == 0 && ((a[1] ^ r->addr[1]) & r->mask[1]) == 0 &&
         ((a[2] ^ r->addr[2]) & r->mask[2]) == 0 && ((a[3] ^ r->addr[3]) & r->mask[3]) == 0;
}

// IPv4-mapped IPv6 addresses are decided as IPv4.
static __always_inline __u8 normalise_addr(__u8 family, __u32 a[4]) {
  if (family == 6 && a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0xffff)) {
    a[0] = a[3];
    a[1] = a[2] = a[3] = 0;
    return 4;
  }
  return family;
}

static __always_inline bool is_loopback(__u8 family, const __u32 a[4]) {
  if (family == 4) return (a[0] & bpf_htonl(0xff000000)) == bpf_htonl(0x7f000000);
  return a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == bpf_htonl(1);
}

// 0 = allowed, else the reason. family 4 or 6, port host order.
static __always_inline __u16 egress_reason(const struct rauha_zone* z, __u8 family, __u32 a[4],
                                           __u16 port) {
  if (z->network_mode == RAUHA_NET_HOST) return 0;
  family = normalise_addr(family, a);
  if (is_loopback(family, a)) return 0;
  for (int i = 0; i < RAUHA_MAX_PEERS; i++) {
    if (i >= z->n_peers) break;
    if (rule_matches(&z->peers[i], family, a)) return 0;
  }
  for (int i = 0; i < RAUHA_MAX_NET_RULES; i++) {
    if (i >= z->n_egress) break;
    const struct rauha_net_rule* r = &z->egress[i];
    if ((r->port == 0 || r->port == port) && rule_matches(r, family, a)) return 0;
  }
  return RAUHA_REASON_NOT_EGRESS;
}

// A zone binds loopback, the wildcard, or its own address (a peer entry): never an address
// of the host or of another zone (IP_FREEBIND would let any process bind one). Which ports
// are reachable from outside is nftables' decision ([network].allowed_ingress).
static __always_inline __u16 bind_reason(const struct rauha_zone* z, __u8 family, __u32 a[4],
                                         __u16 port) {
  if (z->network_mode == RAUHA_NET_HOST) return 0;
  family = normalise_addr(family, a);
  if (is_loopback(family, a)) return 0;
  if ((a[0] | a[1] | a[2] | a[3]) == 0) return 0;
  for (int i = 0; i < RAUHA_MAX_PEERS; i++) {
    if (i >= z->n_peers) break;
    if (rule_matches(&z->peers[i], family, a)) return 0;
  }
  return RAUHA_REASON_NOT_INGRESS;
}

static __always_inline void fill_sock_addr(struct rauha_event* e, __u16 af, const __u32 a[4],
                                           __u16 port, __u32 proto) {
  e->family = af;
  e->addr[0] = a[0];
  e->addr[1] = a[1];
  e->addr[2] = a[2];
  e->addr[3] = a[3];
  e->port = port;
  e->proto = proto;
}

// kind: 0 connect, 1 sendmsg, 2 bind.
static __always_inline int sock_addr4(struct bpf_sock_addr* ctx, __u16 hook, int kind) {
  __u64 cgid;
  struct rauha_zone* z = current_zone_or_ancestor(&cgid);
  if (!z) return 1;
  __u32 a[4] = {ctx->user_ip4, 0, 0, 0};
  __u16 port = bpf_ntohs((__u16)ctx->user_port);
  __u16 reason = kind == 2 ? bind_reason(z, 4, a, port) : egress_reason(z, 4, a, port);
  if (!reason) return 1;
  struct rauha_event* e = deny_begin(cgid, hook, reason);
  if (e) {
    __u32 orig[4] = {ctx->user_ip4, 0, 0, 0};
    fill_sock_addr(e, AF_INET, orig, port, ctx->protocol);
    deny_submit(e);
  }
  return 0;
}

static __always_inline int sock_addr6(struct bpf_sock_addr* ctx, __u16 hook, int kind) {
  __u64 cgid;
  struct rauha_zone* z = current_zone_or_ancestor(&cgid);
  if (!z) return 1;
  __u32 orig[4] = {ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3]};
  __u32 a[4] = {orig[0], orig[1], orig[2], orig[3]};
  __u16 port = bpf_ntohs((__u16)ctx->user_port);
  __u16 reason = kind == 2 ? bind_reason(z, 6, a, port) : egress_reason(z, 6, a, port);
  if (!reason) return 1;
  struct rauha_event* e = deny_begin(cgid, hook, reason);
  if (e) {
    fill_sock_addr(e, AF_INET6, orig, port, ctx->protocol);
    deny_submit(e);
  }
  return 0;
}

SEC("cgroup/connect4")
int rauha_connect4(struct bpf_sock_addr* ctx) { return sock_addr4(ctx, RAUHA_HOOK_CG_CONNECT4, 0); }
SEC("cgroup/connect6")
int rauha_connect6(struct bpf_sock_addr* ctx) { return sock_addr6(ctx, RAUHA_HOOK_CG_CONNECT6, 0); }
SEC("cgroup/sendmsg4")
int rauha_sendmsg4(struct bpf_sock_addr* ctx) { return sock_addr4(ctx, RAUHA_HOOK_CG_SENDMSG4, 1); }
SEC("cgroup/sendmsg6")
int rauha_sendmsg6(struct bpf_sock_addr* ctx) { return sock_addr6(ctx, RAUHA_HOOK_CG_SENDMSG6, 1); }
SEC("cgroup/bind4")
int rauha_bind4(struct bpf_sock_addr* ctx) { return sock_addr4(ctx, RAUHA_HOOK_CG_BIND4, 2); }
SEC("cgroup/bind6")
int rauha_bind6(struct bpf_sock_addr* ctx) { return sock_addr6(ctx, RAUHA_HOOK_CG_BIND6, 2); }

// Raw inet sockets need CAP_NET_RAW in the zone's policy. Raw netlink sockets (what `ip` uses)
// are not network access and stay allowed. The kernel runs this hook for inet sockets only, so
// the AF_PACKET branch is for kernels that may widen it; packet sockets are seccomp's and the
// capability bounding set's to refuse.
SEC("cgroup/sock_create")
int rauha_sock_create(struct bpf_sock* ctx) {
  __u64 cgid;
  struct rauha_zone* z = current_zone_or_ancestor(&cgid);
  if (!z || z->allow_raw_sockets) return 1;
  __u32 family = ctx->family, type = ctx->type;
  __u16 reason = 0;
  if (family == AF_PACKET)
    reason = RAUHA_REASON_PACKET_SOCKET;
  else if (type == SOCK_RAW && (family == AF_INET || family == AF_INET6))
    reason = RAUHA_REASON_RAW_SOCKET;
  if (!reason) return 1;
  struct rauha_event* e = deny_begin(cgid, RAUHA_HOOK_CG_SOCK_CREATE, reason);
  if (e) {
    e->family = family;
    e->proto = ctx->protocol;
    e->detail2 = type;
    deny_submit(e);
  }
  return 0;
}

SEC("cgroup/dev")
int rauha_dev(struct bpf_cgroup_dev_ctx* ctx) {
  __u64 cgid;
  struct rauha_zone* z = current_zone_or_ancestor(&cgid);
  if (!z) return 1;
  __u32 type = ctx->access_type & 0xffff, access = ctx->access_type >> 16;
  __u32 want = type == DEVCG_DEV_BLOCK ? 'b' : 'c';
  for (int i = 0; i < RAUHA_MAX_DEVICES; i++) {
    if (i >= z->n_devices) break;
    const struct rauha_dev_rule* d = &z->devices[i];
    if (d->type == want && d->major == ctx->major &&
        (d->minor == RAUHA_DEV_ANY_MINOR || d->minor == ctx->minor))
      return 1;
  }
  struct rauha_event* e = deny_begin(cgid, RAUHA_HOOK_CG_DEV, RAUHA_REASON_DEVICE);
  if (e) {
    e->dev_type = want;
    e->dev_major = ctx->major;
    e->dev_minor = ctx->minor;
    e->detail = access;
    deny_submit(e);
  }
  return 0;
}

SEC("cgroup/sysctl")
int rauha_sysctl(struct bpf_sysctl* ctx) {
  if (!ctx->write) return 1;
  __u64 cgid;
  if (!current_zone_or_ancestor(&cgid)) return 1;
  struct rauha_event* e = deny_begin(cgid, RAUHA_HOOK_CG_SYSCTL, RAUHA_REASON_SYSCTL_WRITE);
  if (e) {
    bpf_sysctl_get_name(ctx, e->path, sizeof(e->path), 0);
    deny_submit(e);
  }
  return 0;
}

// ---- LSM ------------------------------------------------------------------------------------

static __always_inline bool prefix_matches(const struct rauha_prefix* p, const char* path) {
  __u32 len = p->len;
  if (len == 0 || len >= RAUHA_PREFIX_LEN) return false;
  if (len == 1 && p->s[0] == '/') return true;
  for (__u32 i = 0; i < RAUHA_PREFIX_LEN; i++) {
    if (i >= len) break;
    if (path[i] != p->s[i]) return false;
  }
  char next = path[len & (RAUHA_PATH_LEN - 1)];
  return next == '/' || next == 0;
}

static __always_inline bool any_prefix(const struct rauha_prefix* list, __u8 n, const char* path) {
  for (int i = 0; i < RAUHA_MAX_PREFIXES; i++) {
    if (i >= n) break;
    if (prefix_matches(&list[i], path)) return true;
  }
  return false;
}

static __always_inline int deny_path(__u64 cgid, __u16 hook, __u16 reason, const char* path,
                                     __u64 detail) {
  struct rauha_event* e = deny_begin(cgid, hook, reason);
  if (e) {
    if (path) bpf_probe_read_kernel_str(e->path, sizeof(e->path), path);
    e->detail = detail;
    deny_submit(e);
  }
  return -EPERM;
}

SEC("lsm/file_open")
int BPF_PROG(rauha_file_open, struct file* file) {
  // Only armed write opens are checked: test both before the zone lookup.
  __u32 fmode = file->f_mode;
  if (!(fmode & FMODE_WRITE) || !armed()) return 0;
  __u64 cgid;
  struct rauha_zone* z = current_zone(&cgid);
  if (!z) return 0;
  struct inode* inode = file->f_inode;
  __u32 mode = inode->i_mode & S_IFMT;
  unsigned long magic = inode->i_sb->s_magic;
  bool cgroupfs = magic == CGROUP_SUPER_MAGIC || magic == CGROUP2_SUPER_MAGIC;
  if (!cgroupfs &&
      (mode == S_IFCHR || mode == S_IFIFO || mode == S_IFSOCK || magic == ANON_INODE_FS_MAGIC))
    return 0;
  struct scratch* s = get_scratch();
  if (!s) return 0;
  long n = bpf_d_path((struct path*)&file->f_path, s->path, sizeof(s->path));
  if (cgroupfs)
    return deny_path(cgid, RAUHA_HOOK_LSM_FILE_OPEN, RAUHA_REASON_CGROUPFS_WRITE,
                     n > 0 ? s->path : NULL, fmode);
  if (n <= 0)
    return deny_path(cgid, RAUHA_HOOK_LSM_FILE_OPEN, RAUHA_REASON_PATH_UNRESOLVED, NULL, fmode);
  if (any_prefix(z->writable, z->n_writable, s->path)) return 0;
  return deny_path(cgid, RAUHA_HOOK_LSM_FILE_OPEN, RAUHA_REASON_NOT_WRITABLE, s->path, fmode);
}

SEC("lsm/bprm_check_security")
int BPF_PROG(rauha_bprm_check, struct linux_binprm* bprm) {
  if (!armed()) return 0;
  __u64 cgid;
  struct rauha_zone* z = current_zone(&cgid);
  if (!z || (z->n_exec_allowed == 0 && z->n_exec_denied == 0)) return 0;
  struct scratch* s = get_scratch();
  if (!s) return 0;
  long n = bpf_d_path((struct path*)&bprm->file->f_path, s->path, sizeof(s->path));
  if (n <= 0)
    return deny_path(cgid, RAUHA_HOOK_LSM_BPRM_CHECK, RAUHA_REASON_PATH_UNRESOLVED, NULL, 0);
  if (any_prefix(z->exec_denied, z->n_exec_denied, s->path))
    return deny_path(cgid, RAUHA_HOOK_LSM_BPRM_CHECK, RAUHA_REASON_EXEC_DENIED, s->path, 0);
  if (z->n_exec_allowed && !any_prefix(z->exec_allowed, z->n_exec_allowed, s->path))
    return deny_path(cgid, RAUHA_HOOK_LSM_BPRM_CHECK, RAUHA_REASON_EXEC_NOT_ALLOWED, s->path, 0);
  return 0;
}

// A zone's task may act only on tasks of its own zone cgroup.
static __always_inline int cross_zone(struct task_struct* target, __u16 hook, __u64 detail) {
  __u64 cgid;
  struct rauha_zone* z = current_zone(&cgid);
  if (!z) return 0;
  __u64 tcg = task_cgroup_id(target);
  if (tcg == cgid) return 0;
  __u16 reason =
      bpf_map_lookup_elem(&rauha_zones, &tcg) ? RAUHA_REASON_OTHER_ZONE : RAUHA_REASON_OUTSIDE_ZONE;
  struct rauha_event* e = deny_begin(cgid, hook, reason);
  if (e) {
    e->target_pid = BPF_CORE_READ(target, tgid);
    e->target_cgroup_id = tcg;
    e->detail = detail;
    deny_submit(e);
  }
  return -EPERM;
}

SEC("lsm/ptrace_access_check")
int BPF_PROG(rauha_ptrace, struct task_struct* child, unsigned int mode) {
  return cross_zone(child, RAUHA_HOOK_LSM_PTRACE, mode);
}

// cred != NULL: an asynchronous signal (SIGIO, USB) sent on behalf of another task.
SEC("lsm/task_kill")
int BPF_PROG(rauha_task_kill, struct task_struct* p, struct kernel_siginfo* info, int sig,
             const struct cred* cred) {
  if (cred) return 0;
  return cross_zone(p, RAUHA_HOOK_LSM_TASK_KILL, (__u64)sig);
}

SEC("lsm/socket_connect")
int BPF_PROG(rauha_socket_connect, struct socket* sock, struct sockaddr* address, int addrlen) {
  __u64 cgid;
  struct rauha_zone* z = current_zone(&cgid);
  if (!z) return 0;
  __u16 af = 0;
  bpf_probe_read_kernel(&af, sizeof(af), &address->sa_family);
  __u32 a[4] = {}, orig[4] = {};
  __u16 port_be = 0;
  __u8 family;
  if (af == AF_INET) {
    struct sockaddr_in* sin = (struct sockaddr_in*)address;
    bpf_probe_read_kernel(&orig[0], 4, &sin->sin_addr);
    bpf_probe_read_kernel(&port_be, 2, &sin->sin_port);
    family = 4;
  } else if (af == AF_INET6) {
    if (addrlen < 24) return 0;  // the kernel refuses it anyway
    struct sockaddr_in6* sin6 = (struct sockaddr_in6*)address;
    bpf_probe_read_kernel(orig, 16, &sin6->sin6_addr);
    bpf_probe_read_kernel(&port_be, 2, &sin6->sin6_port);
    family = 6;
  } else {
    return 0;
  }
  a[0] = orig[0], a[1] = orig[1], a[2] = orig[2], a[3] = orig[3];
  __u16 port = bpf_ntohs(port_be);
  __u16 reason = egress_reason(z, family, a, port);
  if (!reason) return 0;
  struct rauha_event* e = deny_begin(cgid, RAUHA_HOOK_LSM_SOCKET_CONNECT, reason);
  if (e) {
    fill_sock_addr(e, af, orig, port, BPF_CORE_READ(sock, sk, sk_protocol));
    deny_submit(e);
  }
  return -EPERM;
}

// Privileged operations a zone never performs once armed.
static __always_inline int deny_privileged(__u16 hook, __u16 reason, __u64 detail, __u64 detail2,
                                           const char* text) {
  __u64 cgid;
  if (!armed() || !current_zone(&cgid)) return 0;
  struct rauha_event* e = deny_begin(cgid, hook, reason);
  if (e) {
    e->detail = detail;
    e->detail2 = detail2;
    if (text) bpf_probe_read_kernel_str(e->path, sizeof(e->path), text);
    deny_submit(e);
  }
  return -EPERM;
}

SEC("lsm/sb_mount")
int BPF_PROG(rauha_sb_mount, const char* dev_name, const struct path* path, const char* type,
             unsigned long flags, void* data) {
  return deny_privileged(RAUHA_HOOK_LSM_SB_MOUNT, RAUHA_REASON_PRIVILEGED, 0, flags, type);
}

SEC("lsm/move_mount")
int BPF_PROG(rauha_move_mount, const struct path* from_path, const struct path* to_path) {
  return deny_privileged(RAUHA_HOOK_LSM_MOVE_MOUNT, RAUHA_REASON_PRIVILEGED, 0, 0, NULL);
}

SEC("lsm/bpf")
int BPF_PROG(rauha_bpf, int cmd, union bpf_attr* attr, unsigned int size) {
  return deny_privileged(RAUHA_HOOK_LSM_BPF, RAUHA_REASON_PRIVILEGED, (__u64)cmd, 0, NULL);
}

// `type` is the security check (PERF_SECURITY_OPEN, _CPU, _KERNEL, _TRACEPOINT); the event's
// own type (hardware, software, tracepoint, ...) is attr->type.
SEC("lsm/perf_event_open")
int BPF_PROG(rauha_perf_event_open, struct perf_event_attr* attr, int type) {
  return deny_privileged(RAUHA_HOOK_LSM_PERF_EVENT_OPEN, RAUHA_REASON_PRIVILEGED,
                         BPF_CORE_READ(attr, type), (__u64)type, NULL);
}

SEC("lsm/userns_create")
int BPF_PROG(rauha_userns_create, const struct cred* cred) {
  return deny_privileged(RAUHA_HOOK_LSM_USERNS_CREATE, RAUHA_REASON_PRIVILEGED, 0, 0, NULL);
}

// Module loading (and kexec, IMA policy) from a zone, armed or not; firmware stays allowed.
static __always_inline int deny_kernel_load(__u16 hook, int id) {
  if (id < KREAD_FIRST_DENIED || id > KREAD_LAST_DENIED) return 0;
  __u64 cgid;
  if (!current_zone(&cgid)) return 0;
  struct rauha_event* e = deny_begin(cgid, hook, RAUHA_REASON_PRIVILEGED);
  if (e) {
    e->detail = id;
    deny_submit(e);
  }
  return -EPERM;
}

SEC("lsm/kernel_read_file")
int BPF_PROG(rauha_kernel_read_file, struct file* file, int id, bool contents) {
  return deny_kernel_load(RAUHA_HOOK_LSM_KERNEL_READ_FILE, id);
}

SEC("lsm/kernel_load_data")
int BPF_PROG(rauha_kernel_load_data, int id, bool contents) {
  return deny_kernel_load(RAUHA_HOOK_LSM_KERNEL_LOAD_DATA, id);
}

// Runs after the capability module granted the capability: deny what the policy does not list
// (inside a user namespace a task holds every capability of that namespace). Non-audited
// probes (ns_capable_noaudit) are refused silently, as the capability module does.
SEC("lsm/capable")
int BPF_PROG(rauha_capable, const struct cred* cred, struct user_namespace* ns, int cap,
             unsigned int opts) {
  if (!armed()) return 0;
  __u64 cgid;
  struct rauha_zone* z = current_zone(&cgid);
  if (!z) return 0;
  if (cap >= 0 && cap < 64 && (z->caps_allowed & (1ULL << cap))) return 0;
  if (opts & CAP_OPT_NOAUDIT) return -EPERM;
  struct rauha_event* e = deny_begin(cgid, RAUHA_HOOK_LSM_CAPABLE, RAUHA_REASON_CAPABILITY);
  if (e) {
    e->detail = cap;
    deny_submit(e);
  }
  return -EPERM;
}

// ---- Landlock observer ----------------------------------------------------------------------

// Best-effort path of a dentry up to the task's root, crossing mounts when `mnt` is known,
// written leaf first into fixed slots (rauha_event.path_parts): no variable offsets, so the
// verifier explores one state per step.
static __always_inline void dentry_path(struct rauha_event* e, struct dentry* d,
                                        struct vfsmount* mnt) {
  struct task_struct* task = (struct task_struct*)bpf_get_current_task();
  struct dentry* root_d = BPF_CORE_READ(task, fs, root.dentry);
  struct vfsmount* root_mnt = BPF_CORE_READ(task, fs, root.mnt);
  struct mount* m = mnt ? container_of(mnt, struct mount, mnt) : NULL;
  __u32 n = 0;
  for (int i = 0; i < RAUHA_PATH_SLOTS + 4; i++) {
    if (d == root_d && (!m || (void*)mnt == (void*)root_mnt)) break;
    struct dentry* parent = BPF_CORE_READ(d, d_parent);
    struct dentry* mnt_root = m ? BPF_CORE_READ(m, mnt.mnt_root) : NULL;
    if (d == parent || d == mnt_root) {
      if (!m) break;
      struct mount* mp = BPF_CORE_READ(m, mnt_parent);
      if (mp == m) break;
      d = BPF_CORE_READ(m, mnt_mountpoint);
      m = mp;
      mnt = (struct vfsmount*)((void*)mp + bpf_core_field_offset(struct mount, mnt));
      continue;
    }
    if (n >= RAUHA_PATH_SLOTS) {
      n |= RAUHA_PATH_PARTS_TRUNCATED;
      break;
    }
    bpf_probe_read_kernel_str(&e->path[(n & (RAUHA_PATH_SLOTS - 1)) * RAUHA_PATH_SLOT],
                              RAUHA_PATH_SLOT, BPF_CORE_READ(d, d_name.name));
    n++;
    d = parent;
  }
  e->path_parts = n | RAUHA_PATH_PARTS_SLOTTED;
}

SEC("kprobe/landlock_log_denial")
int BPF_KPROBE(rauha_landlock, const void* subject, const struct landlock_request* req) {
  __u64 cgid;
  if (!current_zone(&cgid)) return 0;
  struct rauha_event* e = deny_begin(cgid, RAUHA_HOOK_LANDLOCK, RAUHA_REASON_LANDLOCK);
  if (!e) return 0;
  e->ret = 0;
  e->detail = BPF_CORE_READ(req, access);
  e->detail2 = BPF_CORE_READ(req, type);
  char atype = BPF_CORE_READ(req, audit.type);
  if (atype == LSM_AUDIT_DATA_PATH) {
    dentry_path(e, BPF_CORE_READ(req, audit.u.path.dentry), BPF_CORE_READ(req, audit.u.path.mnt));
  } else if (atype == LSM_AUDIT_DATA_DENTRY) {
    dentry_path(e, BPF_CORE_READ(req, audit.u.dentry), NULL);
  } else if (atype == LSM_AUDIT_DATA_FILE) {
    const struct file* f = BPF_CORE_READ(req, audit.u.file);
    dentry_path(e, BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt));
  } else if (atype == LSM_AUDIT_DATA_NET) {
    struct lsm_network_audit* net = BPF_CORE_READ(req, audit.u.net);
    e->family = BPF_CORE_READ(net, family);
    __u16 dport = BPF_CORE_READ(net, dport), sport = BPF_CORE_READ(net, sport);
    e->port = bpf_ntohs(dport ? dport : sport);
    e->proto = 6;  // Landlock network rules are TCP only
  } else if (atype == LSM_AUDIT_DATA_TASK) {
    struct task_struct* t = BPF_CORE_READ(req, audit.u.tsk);
    if (t) {
      e->target_pid = BPF_CORE_READ(t, tgid);
      e->target_cgroup_id = task_cgroup_id(t);
    }
  }
  deny_submit(e);
  return 0;
}
