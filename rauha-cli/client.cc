#include "rauha-cli/client.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

#include "absl/status/status.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "rauha-common/strcat.h"

namespace rauha::cli {

std::string ResolveSocketPath(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("RAUHA_SOCKET"); env != nullptr && *env != '\0') return env;
  return kDefaultSocket;
}

std::string ResolveHost(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("RAUHA_HOST"); env != nullptr && *env != '\0') return env;
  return "";
}

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        rauha::StrCat(flag, " ", path, ": cannot read it: ", std::strerror(errno)));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Waits until `channel` is connected, at most connect_timeout_s.
absl::StatusOr<std::shared_ptr<grpc::Channel>> AwaitReady(
    std::shared_ptr<grpc::Channel> channel, const ClientOptions& options,
    const std::function<absl::Status(std::string_view)>& unreachable, std::string_view hint) {
  const auto deadline =
      std::chrono::system_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(options.connect_timeout_s * 1000));
  for (;;) {
    grpc_connectivity_state state = channel->GetState(/*try_to_connect=*/true);
    if (state == GRPC_CHANNEL_READY) return channel;
    // A refused connect shows up as TRANSIENT_FAILURE at once; waiting out gRPC's reconnect
    // backoff would only delay the same answer.
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) {
      return unreachable(hint);
    }
    if (!channel->WaitForStateChange(state, deadline)) {
      char seconds[32];
      std::snprintf(seconds, sizeof(seconds), "%g", options.connect_timeout_s);
      return unreachable(
          rauha::StrCat("no answer within ", seconds, "s (--timeout-connect); ", hint));
    }
  }
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectTcp(const std::string& host,
                                                          const ClientOptions& options,
                                                          const grpc::ChannelArguments& args) {
  auto unreachable = [&](std::string_view why) {
    return absl::UnavailableError(rauha::StrCat("cannot reach rauhad at ", host, ": ", why));
  };
  const bool tls = !options.tls_ca.empty() || !options.tls_cert.empty() || !options.tls_key.empty();
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (tls) {
    if (options.tls_ca.empty() || options.tls_cert.empty() || options.tls_key.empty()) {
      return absl::InvalidArgumentError(
          "TLS to rauhad needs --tls-ca, --tls-cert and --tls-key (rauhad requires a client "
          "certificate)");
    }
    grpc::SslCredentialsOptions ssl;
    auto ca = ReadFile("--tls-ca", options.tls_ca);
    if (!ca.ok()) return ca.status();
    auto cert = ReadFile("--tls-cert", options.tls_cert);
    if (!cert.ok()) return cert.status();
    auto key = ReadFile("--tls-key", options.tls_key);
    if (!key.ok()) return key.status();
    ssl.pem_root_certs = *ca;
    ssl.pem_cert_chain = *cert;
    ssl.pem_private_key = *key;
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  auto channel = grpc::CreateCustomChannel(host, creds, args);
  return AwaitReady(channel, options, unreachable,
                    tls ? "is rauhad listening there (rauhad --listen), and do its certificate "
                          "and yours match --tls-ca and rauhad's --tls-client-ca?"
                        : "is rauhad listening there (rauhad --listen ... --insecure-loopback)? "
                          "Beyond loopback it requires mutual TLS: pass --tls-ca, --tls-cert, "
                          "--tls-key");
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(const ClientOptions& options) {
  grpc::ChannelArguments args;
  // A task's stdout and stderr can make a result larger than gRPC's 4 MiB default.
  args.SetMaxReceiveMessageSize(-1);
  if (std::string host = ResolveHost(options.host); !host.empty()) {
    return ConnectTcp(host, options, args);
  }
  const std::string path = ResolveSocketPath(options.socket);
  auto unreachable = [&](std::string_view why) {
    return absl::UnavailableError(rauha::StrCat("cannot reach rauhad at ", path, ": ", why));
  };
  constexpr std::string_view kNotRunning = "is it running? (start it with: rauhad)";
  constexpr std::string_view kRootOnly =
      "Permission denied: the socket is root-only by default; run rauha as root, or point "
      "--socket at a socket you may use";

  // The socket file says more than gRPC's retry loop would: missing means no daemon, EACCES
  // means a daemon we may not talk to (connect(2) on a unix socket needs write permission).
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == EACCES) return unreachable(kRootOnly);
    return unreachable(kNotRunning);
  }
  if (!S_ISSOCK(st.st_mode)) return unreachable("not a socket (check --socket / RAUHA_SOCKET)");
  if (access(path.c_str(), R_OK | W_OK) != 0 && errno == EACCES) return unreachable(kRootOnly);

  // No BDP probes on the unix socket: there is no bandwidth-delay product to learn there, and
  // each probe (one on the first answer, then about one a second) is a PING rauhad wakes to
  // answer and this process to read (measured on runsandbox_bench's channel, pooled calls
  // 0.3 s apart: 1.6 fewer context switches and ~0.06 ms less CPU per call in the client,
  // eval/bench/README.md).
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel("unix:" + path, grpc::InsecureChannelCredentials(), args);
  return AwaitReady(channel, options, unreachable, kNotRunning);
}

std::string StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "ok";
    case grpc::StatusCode::CANCELLED:
      return "cancelled";
    case grpc::StatusCode::UNKNOWN:
      return "unknown";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "invalid argument";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "deadline exceeded";
    case grpc::StatusCode::NOT_FOUND:
      return "not found";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "already exists";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "permission denied";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "resource exhausted";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "failed precondition";
    case grpc::StatusCode::ABORTED:
      return "aborted";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "out of range";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "unimplemented";
    case grpc::StatusCode::INTERNAL:
      return "internal";
    case grpc::StatusCode::UNAVAILABLE:
      return "unavailable";
    case grpc::StatusCode::DATA_LOSS:
      return "data loss";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "unauthenticated";
    default:
      return rauha::StrCat("code ", static_cast<int>(code));
  }
}

std::string DescribeRpcError(const grpc::Status& status) {
  std::string out = StatusCodeName(status.error_code());
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED && status.error_message().empty()) {
    return out + ": this rauhad does not offer that call (is it older than this CLI?)";
  }
  if (!status.error_message().empty()) out += ": " + status.error_message();
  return out;
}

}  // namespace rauha::cli
