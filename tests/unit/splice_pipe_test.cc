// SplicePipe against the real kernel: TCP connections over loopback (this process's own, made
// here), bytes moved socket -> pipe -> socket with splice(2), non-blocking, as the egress proxy
// does. What arrives must be every byte in order, the counts must be what arrived, and the
// bounds (max_written, read/write off) must hold.
#include "rauhad/egress/splice_pipe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

namespace rauha::egress {
namespace {

// A connected pair of loopback TCP sockets, both non-blocking.
struct TcpPair {
  UniqueFd a, b;
};

TcpPair Connect() {
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(::listen(listener.get(), 1), 0);
  EXPECT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  TcpPair p;
  p.a.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(::connect(p.a.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  p.b.reset(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  for (int fd : {p.a.get(), p.b.get()}) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return p;
}

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 4093) & 0xff);
  return s;
}

// Writes all of `data` into `fd` (non-blocking: waits for room), then closes it.
void WriteAllAndClose(UniqueFd fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd.get(), data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
    } else {
      pollfd p{fd.get(), POLLOUT, 0};
      ::poll(&p, 1, 1000);
    }
  }
}

// Reads `fd` to its end (non-blocking: waits for data).
std::string ReadToEnd(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      return out;
    } else {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 10000) == 0) return out;  // stuck: the caller's comparison says so
    }
  }
}

TEST(SplicePipeTest, MovesEveryByteInOrderAndCountsThem) {
  // writer -> [src.a | src.b] -> pipe -> [dst.a | dst.b] -> reader
  TcpPair src = Connect(), dst = Connect();
  auto pipe = SplicePipe::Open(256 * 1024);
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  const std::string data = Pattern(16 * 1024 * 1024 + 4321);
  std::thread writer(WriteAllAndClose, std::move(src.a), data);
  std::string got;
  std::thread reader([&] { got = ReadToEnd(dst.b.get()); });
  uint64_t written = 0;
  bool eof = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!(eof && pipe->pending() == 0) && std::chrono::steady_clock::now() < deadline) {
    // Wait as the proxy does: for what the pipe says it wants.
    pollfd p[2] = {{src.b.get(), static_cast<short>(pipe->WantsRead(eof) ? POLLIN : 0), 0},
                   {dst.a.get(), static_cast<short>(pipe->WantsWrite() ? POLLOUT : 0), 0}};
    ::poll(p, 2, 1000);
    auto m = pipe->Pump(src.b.get(), dst.a.get(), !eof, true, UINT64_MAX, 1 << 20);
    ASSERT_EQ(m.error, 0) << std::strerror(m.error);
    written += m.written;
    eof |= m.eof;
  }
  ::shutdown(dst.a.get(), SHUT_WR);
  writer.join();
  reader.join();
  EXPECT_TRUE(eof);
  EXPECT_EQ(written, data.size());
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data) << "the bytes differ";
}

TEST(SplicePipeTest, HonoursMaxWrittenAndWriteOff) {
  TcpPair src = Connect(), dst = Connect();
  auto pipe = SplicePipe::Open(64 * 1024);
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  const std::string data = Pattern(10000);
  ASSERT_EQ(::send(src.a.get(), data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
  // Read only: everything lands in the pipe, nothing goes out (until all of it has arrived).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (pipe->pending() < data.size() && std::chrono::steady_clock::now() < deadline) {
    auto m = pipe->Pump(src.b.get(), dst.a.get(), true, false, UINT64_MAX, UINT64_MAX);
    ASSERT_EQ(m.error, 0);
    EXPECT_EQ(m.written, 0u);
    if (pipe->pending() < data.size()) {
      pollfd p{src.b.get(), POLLIN, 0};
      ::poll(&p, 1, 1000);
    }
  }
  ASSERT_EQ(pipe->pending(), data.size());
  EXPECT_TRUE(pipe->WantsWrite());
  // At most 3000 bytes may go.
  auto m = pipe->Pump(src.b.get(), dst.a.get(), false, true, 3000, UINT64_MAX);
  EXPECT_EQ(m.written, 3000u);
  EXPECT_EQ(pipe->pending(), data.size() - 3000);
  char buf[8192];
  pollfd p{dst.b.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  std::string got;
  while (got.size() < 3000) {
    ssize_t n = ::recv(dst.b.get(), buf, sizeof(buf), 0);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
    if (n <= 0) ::poll(&p, 1, 1000);
    if (n == 0) break;
  }
  EXPECT_EQ(got, data.substr(0, 3000));
  // The rest, and the source's end.
  src.a.reset();
  uint64_t rest = 0;
  bool eof = false;
  while (!eof && std::chrono::steady_clock::now() < deadline) {
    auto r = pipe->Pump(src.b.get(), dst.a.get(), true, true, UINT64_MAX, UINT64_MAX);
    ASSERT_EQ(r.error, 0);
    rest += r.written;
    eof = r.eof;
    if (!eof) {
      pollfd q{src.b.get(), POLLIN, 0};
      ::poll(&q, 1, 1000);
    }
  }
  EXPECT_TRUE(eof);
  EXPECT_EQ(rest, data.size() - 3000);
  EXPECT_EQ(pipe->pending(), 0u);
  EXPECT_FALSE(pipe->WantsRead(/*eof=*/true));
}

TEST(SplicePipeTest, BrokenDestinationIsAnError) {
  // splice(2) into a socket has no MSG_NOSIGNAL: like rauhad (main.cc), ignore SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  TcpPair src = Connect(), dst = Connect();
  auto pipe = SplicePipe::Open(64 * 1024);
  ASSERT_TRUE(pipe.ok()) << pipe.status();
  dst.b.reset();  // the reader is gone: writing gets EPIPE or ECONNRESET
  const std::string data = Pattern(200000);
  std::thread writer(WriteAllAndClose, std::move(src.a), data);
  int error = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  bool eof = false;
  while (error == 0 && std::chrono::steady_clock::now() < deadline) {
    auto m = pipe->Pump(src.b.get(), dst.a.get(), !eof, true, UINT64_MAX, UINT64_MAX);
    error = m.error;
    eof |= m.eof;
    if (eof && pipe->pending() == 0) break;
    pollfd p{src.b.get(), POLLIN, 0};
    ::poll(&p, 1, 100);
  }
  // Drain the source so the writer can finish.
  src.b.reset();
  writer.join();
  EXPECT_TRUE(error == EPIPE || error == ECONNRESET) << std::strerror(error);
}

TEST(SplicePipeTest, PoolKeepsOnlyEmptyPipesUpToItsBound) {
  SplicePipePool pool(64 * 1024, 2);
  auto a = pool.Take(), b = pool.Take(), c = pool.Take();
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  pool.Give(*std::move(a));
  pool.Give(*std::move(b));
  pool.Give(*std::move(c));
  EXPECT_EQ(pool.kept(), 2u);
  // A pipe holding bytes is closed, not kept.
  TcpPair src = Connect(), dst = Connect();
  auto d = pool.Take();
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(pool.kept(), 1u);
  ASSERT_EQ(::send(src.a.get(), "x", 1, 0), 1);
  pollfd p{src.b.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  ASSERT_EQ(d->Pump(src.b.get(), dst.a.get(), true, false, UINT64_MAX, UINT64_MAX).error, 0);
  ASSERT_EQ(d->pending(), 1u);
  pool.Give(*std::move(d));
  EXPECT_EQ(pool.kept(), 1u);
}

}  // namespace
}  // namespace rauha::egress
