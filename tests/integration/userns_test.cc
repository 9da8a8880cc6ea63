// User namespaces: a zone's root is an unprivileged host id. What the kernel shows (uid maps,
// process credentials, file ownership on the host, which namespace owns what) is checked from
// the host, not taken from rauhad's word.
#include <fcntl.h>
#include <linux/bpf.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "tests/integration/daemon_fixture.h"

namespace rauha::testing {
namespace {

namespace spb = rauha::sandbox::v1;
namespace zpb = rauha::zone::v1;

using UsernsTest = DaemonTest;

// Tests that count blocks: no warm pool (whatever RAUHA_TEST_WARM_ZONES says), whose zones
// would hold blocks of their own.
class UsernsRangeTest : public DaemonTest {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      if (RequireAll()) FAIL() << "integration tests need root";
      GTEST_SKIP() << "integration tests need root";
    }
    daemon_ = std::make_unique<Daemon>(std::vector<std::string>{"--warm-zones", "0"});
    daemon_->Start();
  }
};

constexpr uint32_t kDefaultFirst = 100000000;
constexpr uint32_t kBlock = 65536;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

zpb::ZoneInfo GetZone(Daemon& d, const std::string& name) {
  zpb::GetZoneRequest req;
  req.set_name(name);
  zpb::GetZoneResponse resp;
  grpc::ClientContext ctx;
  EXPECT_TRUE(d.Zones()->GetZone(&ctx, req, &resp).ok()) << name;
  return resp.zone();
}

grpc::Status DeleteZone(Daemon& d, const std::string& name, bool force = false) {
  zpb::DeleteZoneRequest req;
  req.set_name(name);
  req.set_force(force);
  zpb::DeleteZoneResponse resp;
  grpc::ClientContext ctx;
  return d.Zones()->DeleteZone(&ctx, req, &resp);
}

std::vector<std::string> Words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// The host pid of the task's init: the shim's only child while one task runs, or 0.
pid_t TaskInitOf(pid_t shim) {
  std::istringstream in(
      ReadAll("/proc/" + std::to_string(shim) + "/task/" + std::to_string(shim) + "/children"));
  pid_t pid = 0;
  in >> pid;
  return pid;
}

// "Uid:\t100000000\t100000000\t..." of /proc/<pid>/status: the real uid as the host sees it.
std::string StatusLine(pid_t pid, const std::string& key) {
  std::istringstream in(ReadAll("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0) return line;
  }
  return "";
}

// A task of zone `zone` that sleeps until the zone is deleted, started on another thread.
class SleepingTask {
 public:
  SleepingTask(Daemon& d, const std::string& zone) : d_(d), zone_(zone) {
    done_ = std::async(std::launch::async, [this] {
      spb::RunSandboxRequest req;
      req.set_name(zone_);
      req.add_command("/bin/sleep");
      req.add_command("60");
      spb::SandboxResult result;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
      (void)d_.Sandbox()->RunSandbox(&ctx, req, &result);
    });
  }
  ~SleepingTask() {
    EXPECT_TRUE(DeleteZone(d_, zone_, /*force=*/true).ok());
    done_.wait();
  }

 private:
  Daemon& d_;
  std::string zone_;
  std::future<void> done_;
};

// Runs `body` in a forked child and returns its exit status (the child reports with it).
template <typename Body>
int InChild(Body body) {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(body());
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
}

TEST_F(UsernsRangeTest, RootInsideIsAnUnprivilegedIdOnTheHost) {
  auto r = Run({"/bin/sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map"});
  ASSERT_EQ(r.status(), "succeeded") << r.stderr() << r.error();
  auto w = Words(r.stdout());
  ASSERT_EQ(w.size(), 8u) << r.stdout();
  EXPECT_EQ(w[0], "0") << "id -u";
  EXPECT_EQ(w[1], "0") << "id -g";
  const std::string first = std::to_string(kDefaultFirst);
  EXPECT_EQ((std::vector<std::string>{w[2], w[3], w[4]}),
            (std::vector<std::string>{"0", first, "65536"}))
      << "uid_map: " << r.stdout();
  EXPECT_EQ((std::vector<std::string>{w[5], w[6], w[7]}),
            (std::vector<std::string>{"0", first, "65536"}))
      << "gid_map: " << r.stdout();
  EXPECT_TRUE(r.unavailable_controls().empty()) << r.unavailable_controls(0);

  // From the host: the task's processes run as the zone's id, with the zone's namespaces
  // owned by a user namespace that is not the host's.
  ASSERT_TRUE(CreateZone("seen").ok());
  zpb::ZoneInfo z = GetZone(*daemon_, "seen");
  ASSERT_GE(z.userns_host_first(), kDefaultFirst);
  EXPECT_EQ((z.userns_host_first() - kDefaultFirst) % kBlock, 0u);
  EXPECT_EQ(z.userns_id_count(), kBlock);
  const std::string zone_first = std::to_string(z.userns_host_first());
  EXPECT_NE(z.userns().find(zone_first + "-"), std::string::npos) << z.userns();
  {
    SleepingTask task(*daemon_, "seen");
    ASSERT_FALSE(daemon_->WaitForRunningTask().empty());
    pid_t init = TaskInitOf(static_cast<pid_t>(z.shim_pid()));
    ASSERT_GT(init, 0);
    EXPECT_EQ(Words(StatusLine(init, "Uid")),
              (std::vector<std::string>{"Uid:", zone_first, zone_first, zone_first, zone_first}));
    EXPECT_EQ(Words(StatusLine(init, "Gid")),
              (std::vector<std::string>{"Gid:", zone_first, zone_first, zone_first, zone_first}));
    std::error_code ec;
    auto task_user =
        std::filesystem::read_symlink("/proc/" + std::to_string(init) + "/ns/user", ec);
    auto host_user = std::filesystem::read_symlink("/proc/self/ns/user", ec);
    EXPECT_NE(task_user, host_user);
  }
}

TEST_F(UsernsTest, WorkspaceWritesBelongToTheRepoOwnerAndHostFilesToRootInside) {
  std::string repo = daemon_->dir() + "/repo";
  std::filesystem::create_directories(repo);
  std::ofstream(repo + "/README") << "hi\n";
  ASSERT_EQ(::chown(repo.c_str(), 1234, 1235), 0);
  ASSERT_EQ(::chown((repo + "/README").c_str(), 1234, 1235), 0);
  spb::RunSandboxRequest req;
  req.set_repo_path(repo);
  auto r = Run({"/bin/sh", "-c",
                "stat -c %u:%g /workspace /workspace/README /usr/bin/env /etc/passwd && "
                "echo made > /workspace/new && mkdir /workspace/dir && "
                "stat -c %u:%g /workspace/new /workspace/dir"},
               req);
  ASSERT_EQ(r.status(), "succeeded") << r.stderr() << r.error();
  EXPECT_EQ(r.stdout(), "0:0\n0:0\n0:0\n0:0\n0:0\n0:0\n")
      << "the repo owner's files and the host's root files both appear as root's";
  for (const char* made : {"/new", "/dir"}) {
    struct stat st {};
    ASSERT_EQ(::stat((repo + made).c_str(), &st), 0) << made;
    EXPECT_EQ(st.st_uid, 1234u) << made << " belongs to the repo owner on the host";
    EXPECT_EQ(st.st_gid, 1235u) << made;
  }

  // Another task user inside: the same files are that user's, and writes still the owner's.
  spb::RunSandboxRequest as_user = req;
  as_user.set_uid(1000);
  as_user.set_gid(1000);
  r = Run({"/bin/sh", "-c", "stat -c %u:%g /workspace/README; echo again > /workspace/other"},
          as_user);
  ASSERT_EQ(r.status(), "succeeded") << r.stderr() << r.error();
  EXPECT_EQ(r.stdout(), "1000:1000\n");
  struct stat st {};
  ASSERT_EQ(::stat((repo + "/other").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 1235u);

  // A user the zone's namespace does not map is refused before anything runs.
  spb::RunSandboxRequest outside = req;
  outside.set_uid(70000);
  grpc::Status status;
  Run({"/bin/true"}, outside, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_NE(status.error_message().find("user namespace"), std::string::npos)
      << status.error_message();
}

// Every capability the policy may grant, and a host-root-owned file the test made in a host
// directory the zone sees: none of chmod, chown, write, rename, unlink or a hard link works.
TEST_F(UsernsTest, HostRootFileCannotBeChangedWithEveryCapability) {
  std::string name = "rauha-userns-test-" + std::to_string(::getpid());
  std::string file = "/usr/local/share/" + name;
  { std::ofstream(file) << "host\n"; }
  ASSERT_EQ(::chmod(file.c_str(), 0644), 0);
  struct stat before {};
  ASSERT_EQ(::stat(file.c_str(), &before), 0);
  const std::string caps =
      "\"CAP_CHOWN\", \"CAP_DAC_OVERRIDE\", \"CAP_DAC_READ_SEARCH\", \"CAP_FOWNER\", "
      "\"CAP_FSETID\", \"CAP_KILL\", \"CAP_SETGID\", \"CAP_SETUID\", \"CAP_SETPCAP\", "
      "\"CAP_LINUX_IMMUTABLE\", \"CAP_NET_BIND_SERVICE\", \"CAP_NET_ADMIN\", \"CAP_NET_RAW\", "
      "\"CAP_IPC_LOCK\", \"CAP_IPC_OWNER\", \"CAP_SYS_MODULE\", \"CAP_SYS_RAWIO\", "
      "\"CAP_SYS_CHROOT\", \"CAP_SYS_PTRACE\", \"CAP_SYS_ADMIN\", \"CAP_SYS_BOOT\", "
      "\"CAP_SYS_NICE\", \"CAP_SYS_RESOURCE\", \"CAP_MKNOD\", \"CAP_LEASE\", \"CAP_AUDIT_WRITE\", "
      "\"CAP_SETFCAP\", \"CAP_MAC_OVERRIDE\", \"CAP_MAC_ADMIN\", \"CAP_BPF\", \"CAP_PERFMON\", "
      "\"CAP_CHECKPOINT_RESTORE\"";
  spb::RunSandboxRequest req;
  req.set_policy_toml(PolicyWith("pids_max = 64", "", caps));
  std::string script =
      "export f=" + file +
      "; for try in 'chmod 777 $f' 'chown 5:5 $f' 'echo x >> $f' 'mv $f $f.2' 'rm -f $f' "
      "'ln $f /tmp/l' 'chattr +i $f' 'touch $f'; do if sh -c \"$try\" 2>/dev/null; then echo "
      "\"CHANGED: $try\"; fi; done; stat -c %u:%g $f; echo done";
  auto r = Run({"/bin/sh", "-c", script}, req);
  EXPECT_EQ(r.status(), "succeeded") << r.stderr() << r.error();
  EXPECT_EQ(r.stdout(), "0:0\ndone\n") << "nothing may change it";
  struct stat after {};
  ASSERT_EQ(::stat(file.c_str(), &after), 0);
  EXPECT_EQ(after.st_mode, before.st_mode);
  EXPECT_EQ(after.st_uid, 0u);
  EXPECT_EQ(after.st_gid, 0u);
  EXPECT_EQ(after.st_size, before.st_size);
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_EQ(ReadAll(file), "host\n");
  std::filesystem::remove(file);
}

// CAP_SYS_ADMIN and CAP_BPF granted by policy are the zone's user namespace's: even with the
// seccomp filter out of the way (a process of the host joins the task's mount namespace, then
// its user namespace, getting every capability there), no mount over a host path, no new mount
// namespace of the host's, and no BPF program.
TEST_F(UsernsTest, CapSysAdminDoesNotMountOverHostPathsOrLoadBpf) {
  std::string policy = PolicyWith("pids_max = 64", "",
                                  "\"CAP_SYS_ADMIN\", \"CAP_BPF\", \"CAP_NET_ADMIN\", "
                                  "\"CAP_DAC_OVERRIDE\", \"CAP_SYS_MODULE\"");
  // Inside the task, with seccomp: refused too.
  spb::RunSandboxRequest req;
  req.set_policy_toml(policy);
  auto r = Run({"/bin/sh", "-c",
                "mount -t tmpfs none /usr 2>/dev/null && echo MOUNTED; grep CapEff "
                "/proc/self/status"},
               req);
  EXPECT_EQ(r.stdout().find("MOUNTED"), std::string::npos) << r.stdout();
  EXPECT_NE(r.stdout().find("CapEff"), std::string::npos) << r.stdout();

  ASSERT_TRUE(CreateZone("admin", policy).ok());
  zpb::ZoneInfo z = GetZone(*daemon_, "admin");
  SleepingTask task(*daemon_, "admin");
  ASSERT_FALSE(daemon_->WaitForRunningTask().empty());
  pid_t init = TaskInitOf(static_cast<pid_t>(z.shim_pid()));
  ASSERT_GT(init, 0);
  std::string ns = "/proc/" + std::to_string(init) + "/ns/";
  int mnt = ::open((ns + "mnt").c_str(), O_RDONLY | O_CLOEXEC);
  int user = ::open((ns + "user").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(mnt, 0);
  ASSERT_GE(user, 0);
  // Exit codes: 0 all refused; 1-9 which step failed to set up; 10+ which attempt succeeded.
  int rc = InChild([&]() -> int {
    if (::setns(mnt, CLONE_NEWNS) < 0) return 1;
    if (::setns(user, CLONE_NEWUSER) < 0) return 2;
    // Full capabilities of the zone's user namespace now: CAP_SYS_ADMIN among them.
    if (::mount("none", "/usr", "tmpfs", 0, nullptr) == 0) return 10;
    if (errno != EPERM) return 11;
    if (::mount("", "/usr", nullptr, MS_REMOUNT | MS_BIND, nullptr) == 0) return 12;
    if (::umount2("/usr", MNT_DETACH) == 0) return 13;
    bpf_insn prog[] = {{BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0}, {BPF_JMP | BPF_EXIT, 0, 0, 0, 0}};
    union bpf_attr attr {};
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.insns = reinterpret_cast<uint64_t>(prog);
    attr.insn_cnt = 2;
    attr.license = reinterpret_cast<uint64_t>("GPL");
    long fd = ::syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
    if (fd >= 0) return 14;
    // A BPF map needs CAP_BPF of the host's namespace as well.
    union bpf_attr map {};
    map.map_type = BPF_MAP_TYPE_ARRAY;
    map.key_size = 4;
    map.value_size = 4;
    map.max_entries = 1;
    if (::syscall(SYS_bpf, BPF_MAP_CREATE, &map, sizeof(map)) >= 0) return 15;
    return 0;
  });
  ::close(mnt);
  ::close(user);
  EXPECT_EQ(rc, 0) << "1-9: could not join the task's namespaces; 10-13: a mount worked; "
                      "14-15: BPF worked";
}

TEST_F(UsernsRangeTest, ZonesGetDisjointRangesReturnedOnDelete) {
  ASSERT_TRUE(CreateZone("a").ok());
  ASSERT_TRUE(CreateZone("b").ok());
  uint32_t a = GetZone(*daemon_, "a").userns_host_first();
  uint32_t b = GetZone(*daemon_, "b").userns_host_first();
  EXPECT_EQ(a, kDefaultFirst);
  EXPECT_EQ(b, kDefaultFirst + kBlock);
  ASSERT_TRUE(DeleteZone(*daemon_, "a").ok());
  ASSERT_TRUE(CreateZone("c").ok());
  EXPECT_EQ(GetZone(*daemon_, "c").userns_host_first(), a) << "a's block came back";
  ASSERT_TRUE(DeleteZone(*daemon_, "b").ok());
  ASSERT_TRUE(DeleteZone(*daemon_, "c").ok());
}

TEST_F(UsernsRangeTest, RangesSurviveKill9AndReturnOnDelete) {
  ASSERT_TRUE(CreateZone("one").ok());
  ASSERT_TRUE(CreateZone("two").ok());
  uint32_t one = GetZone(*daemon_, "one").userns_host_first();
  uint32_t two = GetZone(*daemon_, "two").userns_host_first();
  ASSERT_NE(one, 0u);
  ASSERT_NE(two, 0u);
  ASSERT_NE(one, two);
  daemon_->Kill9();
  daemon_->Start();
  EXPECT_EQ(GetZone(*daemon_, "one").userns_host_first(), one);
  EXPECT_EQ(GetZone(*daemon_, "two").userns_host_first(), two);
  ASSERT_TRUE(CreateZone("three").ok());
  uint32_t three = GetZone(*daemon_, "three").userns_host_first();
  EXPECT_NE(three, one);
  EXPECT_NE(three, two);
  // The surviving zone still runs with its ids, as the kernel shows them.
  spb::RunSandboxRequest req;
  req.set_name("one");
  auto r = Run({"/bin/cat", "/proc/self/uid_map"}, req);
  EXPECT_EQ(Words(r.stdout()), (std::vector<std::string>{"0", std::to_string(one), "65536"}));
  ASSERT_TRUE(DeleteZone(*daemon_, "one").ok());
  ASSERT_TRUE(CreateZone("four").ok());
  EXPECT_EQ(GetZone(*daemon_, "four").userns_host_first(), one);
  for (const char* z : {"two", "three", "four"}) EXPECT_TRUE(DeleteZone(*daemon_, z).ok()) << z;
}

TEST_F(UsernsTest, PolicyOffAndPrivilegedZonesKeepHostIds) {
  ASSERT_TRUE(CreateZone("off", "[zone]\nuserns = false\n").ok());
  ASSERT_TRUE(CreateZone("priv", "", "privileged").ok());
  for (const char* name : {"off", "priv"}) {
    zpb::ZoneInfo z = GetZone(*daemon_, name);
    EXPECT_EQ(z.userns_host_first(), 0u) << name;
    EXPECT_NE(z.userns().find("host ids"), std::string::npos) << z.userns();
    spb::RunSandboxRequest req;
    req.set_name(name);
    auto r = Run({"/bin/cat", "/proc/self/uid_map"}, req);
    EXPECT_EQ(Words(r.stdout()), (std::vector<std::string>{"0", "0", "4294967295"})) << name;
    EXPECT_TRUE(r.unavailable_controls().empty()) << "asked for, not missing";
  }
  // It cannot change on a live zone.
  zpb::ApplyPolicyRequest apply;
  apply.set_zone_name("off");
  apply.set_policy_toml("[zone]\nuserns = true\n");
  zpb::ApplyPolicyResponse resp;
  grpc::ClientContext ctx;
  EXPECT_EQ(daemon_->Zones()->ApplyPolicy(&ctx, apply, &resp).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST(UsernsDaemonTest, RangeOffIsReportedNotSilent) {
  Daemon d({"--userns-range", "off"});
  d.Start();
  spb::RunSandboxRequest req;
  req.add_command("/bin/cat");
  req.add_command("/proc/self/uid_map");
  spb::SandboxResult r;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(d.Sandbox()->RunSandbox(&ctx, req, &r).ok());
  }
  EXPECT_EQ(Words(r.stdout()), (std::vector<std::string>{"0", "0", "4294967295"}));
  bool listed = false;
  for (const auto& u : r.unavailable_controls()) {
    listed = listed || (u.rfind("zone.userns:", 0) == 0 && u.find("off") != std::string::npos);
  }
  EXPECT_TRUE(listed) << "unavailable_controls names zone.userns and why";
  zpb::HostEnforcement host;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(d.Zones()->GetHostEnforcement(&ctx, {}, &host).ok());
  }
  bool reported = false;
  for (const auto& l : host.layers()) {
    if (l.name() == "userns") reported = !l.active() && l.detail().find("off") != std::string::npos;
  }
  EXPECT_TRUE(reported) << "rauha info shows the userns layer off";
  d.Stop();
}

TEST(UsernsDaemonTest, BadRangeIsRefusedAtStart) {
  for (const char* bad : {"100000000", "100000000:1000", "10:65536", "4294901760:131072"}) {
    Daemon d({"--userns-range", bad});
    EXPECT_EQ(d.StartExpectingExit(), 1) << bad;
    EXPECT_NE(d.log().find("--userns-range"), std::string::npos) << d.log();
  }
}

}  // namespace
}  // namespace rauha::testing
