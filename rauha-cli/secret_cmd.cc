// `rauha secret set|list|rm`: the secrets rauhad's egress proxy injects for zones whose policy
// names them ([secrets.NAME]). The value is read from stdin and never printed.
#include <openssl/crypto.h>
#include <unistd.h>

#include <iostream>

#include "rauha-cli/commands.h"
#include "rauha/v1/secret.grpc.pb.h"

namespace rauha::cli {
namespace {

namespace sv1 = rauha::secret::v1;
using sv1::SecretService;

constexpr size_t kMaxReadBytes = 64 * 1024;  // rauhad refuses more than 8 KiB; say so, not hang

Json InfoToJson(const sv1::SecretInfo& s) {
  return {{"name", s.name()}, {"created_at", s.created_at()}, {"sha256", s.sha256()}};
}

// stdin, without one trailing newline (what `echo TOKEN |` adds). Wiped by the caller.
absl::StatusOr<std::string> ReadValue() {
  if (::isatty(0)) {
    std::cerr << "rauha: reading the secret's value from stdin (end with Ctrl-D; it is not "
                 "echoed here only if your terminal hides it)\n";
  }
  std::string value;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(0, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(StrCat("reading stdin: ", std::strerror(errno)));
    if (n == 0) break;
    value.append(buf, static_cast<size_t>(n));
    OPENSSL_cleanse(buf, sizeof(buf));
    if (value.size() > kMaxReadBytes) {
      OPENSSL_cleanse(value.data(), value.size());
      return absl::InvalidArgumentError(
          "the value on stdin is over 64 KiB; a secret is at most 8 KiB");
    }
  }
  if (!value.empty() && value.back() == '\n') value.pop_back();
  if (!value.empty() && value.back() == '\r') value.pop_back();
  return value;
}

int RunSet(const Cli& cli, const std::string& name, bool json) {
  auto value = ReadValue();
  if (!value.ok()) return Fail(value.status());
  auto stub = MakeStub<SecretService>(cli);
  if (!stub.ok()) return Fail(stub.status());
  sv1::SetSecretRequest req;
  req.set_name(name);
  req.set_value(*value);
  OPENSSL_cleanse(value->data(), value->size());
  sv1::SetSecretResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = (*stub)->SetSecret(&ctx, req, &resp);
  if (std::string* v = req.mutable_value(); !v->empty()) OPENSSL_cleanse(v->data(), v->size());
  if (!s.ok()) return Fail(DescribeRpcError(s));
  if (json) {
    Json out = InfoToJson(resp.secret());
    out["replaced"] = resp.replaced();
    PrintJson(out);
  } else {
    std::cout << (resp.replaced() ? "replaced " : "stored ") << Printable(resp.secret().name())
              << " (sha256 " << resp.secret().sha256().substr(0, 12) << ")\n";
  }
  return 0;
}

int RunList(const Cli& cli, bool json) {
  auto stub = MakeStub<SecretService>(cli);
  if (!stub.ok()) return Fail(stub.status());
  sv1::ListSecretsResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = (*stub)->ListSecrets(&ctx, sv1::ListSecretsRequest(), &resp);
  if (!s.ok()) return Fail(DescribeRpcError(s));
  if (json) {
    Json out = Json::array();
    for (const auto& secret : resp.secrets()) out.push_back(InfoToJson(secret));
    PrintJson(out);
    return 0;
  }
  Table t({"NAME", "CREATED", "SHA256"});
  for (const auto& secret : resp.secrets()) {
    t.AddRow({secret.name(), secret.created_at(), secret.sha256().substr(0, 12)});
  }
  std::cout << t.ToString();
  return 0;
}

int RunRemove(const Cli& cli, const std::string& name) {
  auto stub = MakeStub<SecretService>(cli);
  if (!stub.ok()) return Fail(stub.status());
  sv1::DeleteSecretRequest req;
  req.set_name(name);
  sv1::DeleteSecretResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = (*stub)->DeleteSecret(&ctx, req, &resp);
  if (!s.ok()) return Fail(DescribeRpcError(s));
  std::cout << "removed " << Printable(resp.secret().name()) << '\n';
  return 0;
}

}  // namespace

void AddSecretCommands(CLI::App& app, Cli& cli) {
  CLI::App* secret = app.add_subcommand(
      "secret", "Store secrets the egress proxy injects into zones' requests ([secrets.NAME])");
  secret->require_subcommand(1);
  {
    auto name = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    CLI::App* cmd = secret->add_subcommand(
        "set",
        "Store or replace secret NAME; its value is read from stdin (one trailing newline "
        "dropped)");
    cmd->add_option("NAME", *name, "Secret name (also the task's environment variable)")
        ->required();
    cmd->add_flag("--json", *json, "Print {name, created_at, sha256, replaced} as JSON");
    cmd->footer("Example:\n  printf %s \"$GITHUB_TOKEN\" | rauha secret set GITHUB_TOKEN");
    cmd->callback([&cli, name, json] { cli.exit_code = RunSet(cli, *name, *json); });
  }
  {
    auto json = std::make_shared<bool>(false);
    CLI::App* cmd =
        secret->add_subcommand("list", "List secrets: name, when set, digest (never values)");
    cmd->alias("ls");
    cmd->add_flag("--json", *json, "Print an array of {name, created_at, sha256}");
    cmd->callback([&cli, json] { cli.exit_code = RunList(cli, *json); });
  }
  {
    auto name = std::make_shared<std::string>();
    CLI::App* cmd = secret->add_subcommand("rm", "Remove secret NAME");
    cmd->add_option("NAME", *name, "Secret name")->required();
    cmd->callback([&cli, name] { cli.exit_code = RunRemove(cli, *name); });
  }
}

}  // namespace rauha::cli
