// What a policy gets for what it leaves out (the default policy's value, per key), the
// explicit unbounded values, the device baseline, rules without a port, and the warnings for
// rules that cannot apply.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "rauha-common/policy/policy.h"
#include "rauha-common/strcat.h"

namespace rauha::policy {
namespace {

Policy Parse(const std::string& text, std::vector<std::string>* warnings = nullptr) {
  auto p = ParsePolicy(text, "t.toml", warnings);
  EXPECT_TRUE(p.ok()) << p.status() << "\n" << text;
  return p.ok() ? *p : Policy{};
}

std::vector<std::string> Texts(const std::vector<NetRule>& rules) {
  std::vector<std::string> out;
  for (const auto& r : rules) out.push_back(r.text);
  return out;
}

// The smallest policy a user writes: only [zone]. Everything else is the default's, so the
// zone is bounded and has the devices a task needs.
TEST(PolicyDefaults, PolicyWithOnlyZoneTableTakesEveryOtherValueFromTheDefault) {
  Policy p = Parse("[zone]\nname = \"mine\"\n");
  const Policy& d = DefaultPolicy();
  EXPECT_EQ(p.zone.name, "mine");
  EXPECT_EQ(p.zone.type, ZoneType::kNonGlobal);
  EXPECT_EQ(p.admission.mode, AdmissionMode::kEnforce);
  EXPECT_EQ(p.capabilities.allowed, d.capabilities.allowed);
  EXPECT_EQ(p.resources.cpu_shares, 1024u);
  EXPECT_EQ(p.resources.memory_limit_bytes, 4ull << 30);
  EXPECT_EQ(p.resources.io_weight, 100u);
  EXPECT_EQ(p.resources.pids_max, 512u);
  EXPECT_EQ(p.network.mode, NetworkMode::kIsolated);
  EXPECT_TRUE(p.network.allowed_egress.empty());
  EXPECT_EQ(p.filesystem.writable_paths, (std::vector<std::string>{"/tmp", "/var/tmp"}));
  EXPECT_TRUE(p.filesystem.shared_layers);
  EXPECT_EQ(p.devices.allowed, BaselineDevices());
  EXPECT_EQ(p.syscalls.deny, d.syscalls.deny);
  EXPECT_TRUE(p.exec.allowed.empty());
}

// Per key: a key left out of a table that is there still takes the default's value.
TEST(PolicyDefaults, EachKeyLeftOutTakesTheDefaultsValue) {
  Policy p = Parse("[resources]\npids_max = 64\n");
  EXPECT_EQ(p.resources.pids_max, 64u);
  EXPECT_EQ(p.resources.memory_limit_bytes, 4ull << 30);
  EXPECT_EQ(p.resources.memory_limit_text, "4Gi");
  EXPECT_EQ(p.resources.cpu_shares, 1024u);
  EXPECT_EQ(p.resources.io_weight, 100u);

  p = Parse("[resources]\nmemory_limit = \"64Mi\"\n");
  EXPECT_EQ(p.resources.memory_limit_bytes, 64ull << 20);
  EXPECT_EQ(p.resources.pids_max, 512u);

  p = Parse("[network]\nmode = \"bridged\"\n");
  EXPECT_TRUE(p.network.allowed_egress.empty());
  EXPECT_TRUE(p.network.allowed_zones.empty());

  p = Parse("[filesystem]\nshared_layers = false\n");
  EXPECT_EQ(p.filesystem.writable_paths, (std::vector<std::string>{"/tmp", "/var/tmp"}));

  p = Parse("[zone]\ntype = \"privileged\"\n");
  EXPECT_EQ(p.zone.type, ZoneType::kPrivileged);
  EXPECT_EQ(p.network.mode, NetworkMode::kIsolated);
  EXPECT_EQ(p.resources.memory_limit_bytes, 4ull << 30);
}

// A list written replaces the default's, also when it is empty.
TEST(PolicyDefaults, AListWrittenReplacesTheDefaultsList) {
  Policy p = Parse(
      "[capabilities]\nallowed = [\"CAP_KILL\"]\n[syscalls]\ndeny = []\n"
      "[filesystem]\nwritable_paths = []\n");
  EXPECT_EQ(p.capabilities.allowed, std::vector<std::string>{"CAP_KILL"});
  EXPECT_TRUE(p.syscalls.deny.empty());
  EXPECT_TRUE(p.filesystem.writable_paths.empty());
}

TEST(PolicyDefaults, TheDefaultPolicyHasNoRawSockets) {
  const auto& caps = DefaultPolicy().capabilities.allowed;
  EXPECT_EQ(std::count(caps.begin(), caps.end(), "CAP_NET_RAW"), 0);
  EXPECT_EQ(caps.size(), 7u);
  // A policy that grants it still may (the public presets do, and load unchanged).
  Policy p = Parse("[capabilities]\nallowed = [\"CAP_NET_RAW\"]\n");
  EXPECT_EQ(p.capabilities.allowed, std::vector<std::string>{"CAP_NET_RAW"});
}

// "max" is the explicit unbounded value; it survives the canonical round trip, so a stored
// policy does not turn back into the default's limit.
TEST(PolicyDefaults, MaxIsUnboundedAndRoundTrips) {
  Policy p = Parse("[resources]\nmemory_limit = \"max\"\npids_max = \"max\"\n");
  EXPECT_FALSE(p.resources.memory_limit_bytes);
  EXPECT_FALSE(p.resources.pids_max);
  std::string canonical = ToCanonicalToml(p);
  EXPECT_NE(canonical.find("memory_limit = \"max\"\n"), std::string::npos) << canonical;
  EXPECT_NE(canonical.find("pids_max = \"max\"\n"), std::string::npos) << canonical;
  Policy again = Parse(canonical);
  EXPECT_FALSE(again.resources.memory_limit_bytes);
  EXPECT_FALSE(again.resources.pids_max);
  EXPECT_EQ(ToCanonicalToml(again), canonical);

  auto bad = ParsePolicy("[resources]\npids_max = \"lots\"\n", "t.toml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(ToStd(bad.status().message()).rfind("t.toml:2:12: ", 0), 0u) << bad.status();
  EXPECT_NE(ToStd(bad.status().message()).find("or \"max\""), std::string::npos);
  bad = ParsePolicy("[resources]\nmemory_limit = \"unlimited\"\n", "t.toml");
  ASSERT_FALSE(bad.ok());
}

// The canonical text (what GetPolicy returns) states every limit: it is the policy in force.
TEST(PolicyDefaults, CanonicalTextShowsTheEffectivePolicy) {
  std::string canonical = ToCanonicalToml(Parse("[zone]\nname = \"z\"\n"));
  for (std::string_view line :
       {"cpu_shares = 1024\n", "memory_limit = \"4Gi\"\n", "io_weight = 100\n", "pids_max = 512\n",
        "mode = \"isolated\"\n", "writable_paths = [\"/tmp\", \"/var/tmp\"]\n",
        "allowed = [\"/dev/null\", \"/dev/zero\", \"/dev/full\", \"/dev/random\", "
        "\"/dev/urandom\", \"/dev/tty\", \"/dev/pts\", \"/dev/ptmx\"]\n",
        "deny = [\"mount\", \"umount2\", \"pivot_root\", \"kexec_load\", \"reboot\"]\n"}) {
    EXPECT_NE(canonical.find(line), std::string::npos) << line << " not in\n" << canonical;
  }
}

// Every zone has the baseline; [devices].allowed adds to it, in order, without duplicates.
TEST(PolicyDevices, BaselineComesFirstAndAllowedAddsToIt) {
  EXPECT_EQ(BaselineDevices(),
            (std::vector<std::string>{"/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                      "/dev/urandom", "/dev/tty", "/dev/pts", "/dev/ptmx"}));
  EXPECT_EQ(Parse("[devices]\nallowed = []\n").devices.allowed, BaselineDevices());
  std::vector<std::string> expected = BaselineDevices();
  expected.push_back("/dev/fuse");
  expected.push_back("/dev/kvm");
  EXPECT_EQ(
      Parse("[devices]\nallowed = [\"/dev/fuse\", \"/dev/null\", \"/dev/kvm\"]\n").devices.allowed,
      expected);
  // A list that lacks /dev/null (the defect: no task could start) still has it.
  Policy p = Parse("[devices]\nallowed = [\"/dev/urandom\"]\n");
  EXPECT_EQ(p.devices.allowed.front(), "/dev/null");
  EXPECT_EQ(Parse(ToCanonicalToml(p)).devices.allowed, p.devices.allowed);
}

// Clients of the public project write rules without a port: every port and protocol.
TEST(PolicyNetRule, RuleWithoutPortMeansEveryPort) {
  struct Case {
    std::string_view text;
    int family;
    std::string_view address;
    int prefix;
    std::string_view canonical;
  };
  for (const Case& c :
       {Case{"0.0.0.0/0", 4, "0.0.0.0", 0, "0.0.0.0/0:0"},
        Case{"10.1.2.3", 4, "10.1.2.3", 32, "10.1.2.3/32:0"},
        Case{"10.0.0.0/8", 4, "10.0.0.0", 8, "10.0.0.0/8:0"}, Case{"::/0", 6, "::", 0, "[::]/0:0"},
        Case{"2001:db8::/32", 6, "2001:db8::", 32, "[2001:db8::]/32:0"},
        Case{"[2001:db8::1]", 6, "2001:db8::1", 128, "[2001:db8::1]/128:0"},
        Case{"[::]/0", 6, "::", 0, "[::]/0:0"}}) {
    SCOPED_TRACE(c.text);
    auto rule = ParseNetRule(c.text);
    ASSERT_TRUE(rule.ok()) << rule.status();
    EXPECT_EQ(rule->family, c.family);
    EXPECT_EQ(rule->address, c.address);
    EXPECT_EQ(rule->prefix_len, c.prefix);
    EXPECT_EQ(rule->port, 0) << "no port is every port";
    EXPECT_EQ(rule->text, c.canonical);
  }
  Policy p = Parse(
      "[network]\nmode = \"bridged\"\n"
      "allowed_egress = [\"0.0.0.0/0\", \"10.1.2.3\", \"::/0\", \"10.1.2.3:0\"]\n");
  EXPECT_EQ(Texts(p.network.allowed_egress),
            (std::vector<std::string>{"0.0.0.0/0:0", "10.1.2.3/32:0", "[::]/0:0"}));
}

// Rules that cannot apply are valid, with a located warning; a bridged zone gets none.
TEST(PolicyWarnings, RulesOnAnIsolatedOrHostZoneWarnWithLocation) {
  std::vector<std::string> warnings;
  Parse(
      "[network]\nmode = \"isolated\"\nallowed_egress = [\"0.0.0.0/0\"]\nallowed_ingress = []\n"
      "allowed_zones = [\"web\"]\n",
      &warnings);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings[0].rfind("t.toml:3:18: network.allowed_egress has no effect: ", 0), 0u)
      << warnings[0];
  EXPECT_NE(warnings[0].find("\"isolated\""), std::string::npos) << warnings[0];
  EXPECT_EQ(warnings[1].rfind("t.toml:5:17: network.allowed_zones has no effect", 0), 0u)
      << warnings[1];

  warnings.clear();
  Parse("[zone]\ntype = \"privileged\"\n[network]\nmode = \"host\"\nallowed_egress = [\"::/0\"]\n",
        &warnings);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("host's network"), std::string::npos) << warnings[0];

  warnings.clear();
  Parse("[network]\nmode = \"bridged\"\nallowed_egress = [\"0.0.0.0/0\"]\n", &warnings);
  EXPECT_TRUE(warnings.empty());
  Parse("", &warnings);
  EXPECT_TRUE(warnings.empty());
}

// A zone in a network namespace it joined (a pod's) enforces its rules there: no warning; the
// same policy for a zone of its own network still warns, and host mode warns wherever.
TEST(PolicyWarnings, RulesOfAZoneInAJoinedNamespaceDoNotWarn) {
  const std::string rules =
      "[network]\nmode = \"isolated\"\nallowed_egress = [\"0.0.0.0/0\"]\n"
      "allowed_ingress = [\"10.0.0.0/8:80\"]\nallowed_zones = [\"web\"]\n";
  std::vector<std::string> warnings;
  ASSERT_TRUE(ParsePolicy(rules, "t.toml", &warnings, NetworkPlacement::kJoined).ok());
  EXPECT_TRUE(warnings.empty()) << warnings[0];
  ASSERT_TRUE(ParsePolicy(rules, "t.toml", &warnings, NetworkPlacement::kOwn).ok());
  ASSERT_EQ(warnings.size(), 3u);
  EXPECT_NE(warnings[2].find("network.allowed_zones has no effect"), std::string::npos)
      << warnings[2];
  EXPECT_NE(warnings[2].find("zones that join a pod's network namespace"), std::string::npos)
      << warnings[2];

  warnings.clear();
  ASSERT_TRUE(ParsePolicy("[zone]\ntype = \"privileged\"\n[network]\nmode = \"host\"\n"
                          "allowed_egress = [\"::/0\"]\n",
                          "t.toml", &warnings, NetworkPlacement::kJoined)
                  .ok());
  EXPECT_EQ(warnings.size(), 1u);
}

// Refused on purpose (the public project allows it): the error says why.
TEST(PolicyErrors, HostNetworkingIsRefusedForNonGlobalZonesWithTheReason) {
  auto p = ParsePolicy("[network]\nmode = \"host\"\n", "t.toml");
  ASSERT_FALSE(p.ok());
  std::string message = ToStd(p.status().message());
  EXPECT_EQ(message.rfind("t.toml:2:8: ", 0), 0u) << message;
  EXPECT_NE(message.find("only for privileged zones"), std::string::npos) << message;
  EXPECT_NE(message.find("no zone network rule"), std::string::npos) << message;
}

}  // namespace
}  // namespace rauha::policy
