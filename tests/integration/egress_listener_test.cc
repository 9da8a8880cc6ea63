// The proxy's listener in a zone (rauhad/egress/zone_listener.h) against the real kernel: the
// zone's side of a proxied connection is a loopback hop, and gets a congestion control that
// does not pace whatever the host's default is (bbr, this host's default, cost the relay and
// the task ~20-25 % more CPU per MiB on that hop; eval/bench/README.md, egress).
// Loopback of the test's own network namespace only.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "rauha-common/fd.h"
#include "rauhad/egress/zone_listener.h"

namespace rauha::testing {
namespace {

std::string CongestionControl(int fd) {
  char name[32] = {};
  socklen_t len = sizeof(name);
  if (::getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, &len) != 0) return "error";
  return std::string(name, ::strnlen(name, len));
}

TEST(EgressZoneListenerTest, ZoneSideConnectionsUseANonPacingCongestionControl) {
  std::string host_default;
  std::ifstream("/proc/sys/net/ipv4/tcp_congestion_control") >> host_default;
  auto listener = egress::ListenInZone(::getpid(), 0);
  ASSERT_TRUE(listener.ok()) << listener.status();
  sockaddr_in a{};
  socklen_t alen = sizeof(a);
  ASSERT_EQ(::getsockname(listener->get(), reinterpret_cast<sockaddr*>(&a), &alen), 0);
  ASSERT_EQ(a.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
  UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(client);
  ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0)
      << std::strerror(errno);
  pollfd p{listener->get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1) << "the listener never saw the connection";
  UniqueFd accepted(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(accepted) << std::strerror(errno);
  std::string cc = CongestionControl(accepted.get());
  EXPECT_TRUE(cc == "cubic" || cc == "reno") << "the proxy's side of a zone connection uses " << cc
                                             << " (host default " << host_default << ")";
}

}  // namespace
}  // namespace rauha::testing
