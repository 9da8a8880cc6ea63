// `rauha image pull|list|inspect|rm|import|export`.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>

#include "rauha-cli/commands.h"
#include "rauha-cli/pull_display.h"
#include "rauha-cli/signals.h"
#include "rauha/v1/image.grpc.pb.h"

namespace rauha::cli {
namespace {

namespace iv1 = rauha::image::v1;

std::string ShortDigest(const std::string& digest) {
  std::string hex = digest.rfind("sha256:", 0) == 0 ? digest.substr(7) : digest;
  return hex.substr(0, 12);
}

int RunPull(const Cli& cli, const std::string& reference, bool quiet) {
  std::string digest;
  if (int code = PullWithProgress(cli, reference, quiet ? nullptr : stdout, 1, &digest);
      code != 0) {
    return code;
  }
  std::cout << (quiet ? digest : "pulled " + reference + " " + digest) << "\n";
  return 0;
}

int RunList(const Cli& cli, bool json, bool digests) {
  auto stub = MakeStub<iv1::ImageService>(cli);
  if (!stub.ok()) return Fail(stub.status());
  iv1::ListResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = (*stub)->List(&ctx, iv1::ListRequest(), &resp);
  if (!s.ok()) return Fail(DescribeRpcError(s));
  if (json) {
    Json out = Json::array();
    for (const auto& i : resp.images()) {
      out.push_back({{"digest", i.digest()},
                     {"tags", Json(std::vector<std::string>(i.tags().begin(), i.tags().end()))},
                     {"size", i.size()},
                     {"created_at", i.created_at()}});
    }
    PrintJson(out);
    return 0;
  }
  Table table({"REFERENCE", "DIGEST", "SIZE", "CREATED"});
  for (const auto& i : resp.images()) {
    std::string digest = digests ? i.digest() : ShortDigest(i.digest());
    if (i.tags().empty()) table.AddRow({"<none>", digest, HumanBytes(i.size()), i.created_at()});
    for (const auto& t : i.tags()) {
      table.AddRow({t, digest, HumanBytes(i.size()), i.created_at()});
    }
  }
  std::cout << table.ToString();
  return 0;
}

int RunInspect(const Cli& cli, const std::string& reference) {
  auto stub = MakeStub<iv1::ImageService>(cli);
  if (!stub.ok()) return Fail(stub.status());
  iv1::InspectRequest req;
  req.set_reference(reference);
  iv1::InspectResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = (*stub)->Inspect(&ctx, req, &resp);
  if (!s.ok()) return Fail(DescribeRpcError(s));
  Json config = Json::parse(resp.config_json(), nullptr, false);
  PrintJson({{"digest", resp.digest()},
             {"tags", Json(std::vector<std::string>(resp.tags().begin(), resp.tags().end()))},
             {"size", resp.size()},
             {"layers", Json(std::vector<std::string>(resp.layers().begin(), resp.layers().end()))},
             {"config", config.is_discarded() ? Json(resp.config_json()) : config}});
  return 0;
}

int RunRemove(const Cli& cli, const std::vector<std::string>& references) {
  auto stub = MakeStub<iv1::ImageService>(cli);
  if (!stub.ok()) return Fail(stub.status());
  int code = 0;
  for (const auto& r : references) {
    iv1::RemoveRequest req;
    req.set_reference(r);
    iv1::RemoveResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = (*stub)->Remove(&ctx, req, &resp);
    if (!s.ok()) {
      code = Fail(DescribeRpcError(s));
      continue;
    }
    std::cout << "removed " << r << "\n";
  }
  return code;
}

int RunImport(const Cli& cli, const std::string& file, const std::string& tag) {
  int fd = file == "-" ? STDIN_FILENO : ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Fail(StrCat("cannot open ", file, ": ", std::strerror(errno)));
  auto stub = MakeStub<iv1::ImageService>(cli);
  if (!stub.ok()) return Fail(stub.status());
  grpc::ClientContext ctx;
  CancelOnSignal cancel(&ctx);
  iv1::ImportResponse resp;
  auto writer = (*stub)->Import(&ctx, &resp);
  std::string buf(1 << 20, '\0');
  bool first = true;
  std::string read_error;
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) read_error = std::strerror(errno);
    if (n <= 0) break;
    iv1::ImportChunk chunk;
    chunk.set_data(buf.data(), static_cast<size_t>(n));
    if (first) chunk.set_tag(tag);
    first = false;
    if (!writer->Write(chunk)) break;
  }
  if (fd != STDIN_FILENO) ::close(fd);
  if (!read_error.empty()) {
    ctx.TryCancel();
    (void)writer->Finish();
    return Fail(StrCat("reading ", file, ": ", read_error));
  }
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  if (!s.ok()) return Fail(DescribeRpcError(s));
  for (const auto& i : resp.images()) {
    std::string tags;
    for (const auto& t : i.tags()) tags += " " + t;
    std::cout << "imported " << i.digest() << tags << "\n";
  }
  return 0;
}

int RunExport(const Cli& cli, const std::string& reference, const std::string& output) {
  if (output == "-" && ::isatty(STDOUT_FILENO)) {
    return Fail("refusing to write a tar to a terminal; use -o FILE or a pipe", kExitUsage);
  }
  auto stub = MakeStub<iv1::ImageService>(cli);
  if (!stub.ok()) return Fail(stub.status());
  std::string temp = output == "-" ? "" : output + ".partial";
  int fd = output == "-" ? STDOUT_FILENO
                         : ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Fail(StrCat("cannot create ", temp, ": ", std::strerror(errno)));
  iv1::ExportRequest req;
  req.set_reference(reference);
  grpc::ClientContext ctx;
  CancelOnSignal cancel(&ctx);
  auto reader = (*stub)->Export(&ctx, req);
  iv1::ExportChunk chunk;
  std::string write_error;
  while (reader->Read(&chunk)) {
    const std::string& d = chunk.data();
    size_t off = 0;
    while (off < d.size() && write_error.empty()) {
      ssize_t n = ::write(fd, d.data() + off, d.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0)
        write_error = std::strerror(errno);
      else
        off += static_cast<size_t>(n);
    }
    if (!write_error.empty()) {
      ctx.TryCancel();
      break;
    }
  }
  grpc::Status s = reader->Finish();
  if (fd != STDOUT_FILENO) {
    if (::fsync(fd) != 0 && write_error.empty()) write_error = std::strerror(errno);
    ::close(fd);
  }
  if (!write_error.empty() || !s.ok()) {
    if (!temp.empty()) ::unlink(temp.c_str());
    return Fail(!write_error.empty() ? StrCat("writing ", output, ": ", write_error)
                                     : DescribeRpcError(s));
  }
  if (!temp.empty() && ::rename(temp.c_str(), output.c_str()) != 0) {
    return Fail(StrCat("rename ", temp, " to ", output, ": ", std::strerror(errno)));
  }
  return 0;
}

}  // namespace

void AddImageCommands(CLI::App& app, Cli& cli) {
  CLI::App* image =
      app.add_subcommand("image", "Pull, list, inspect, remove, import and export images");
  image->require_subcommand(1);
  {
    struct Args {
      std::string reference;
      bool quiet = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = image->add_subcommand(
        "pull", "Pull an image from its registry (python:3.12 is docker.io/library/python:3.12)");
    cmd->add_option("REFERENCE", a->reference, "[REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST]")
        ->required();
    cmd->add_flag("-q,--quiet", a->quiet, "Print only the image's digest");
    cmd->callback([&cli, a] { cli.exit_code = RunPull(cli, a->reference, a->quiet); });
  }
  {
    struct Args {
      bool json = false;
      bool digests = false;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = image->add_subcommand("list", "List images: one row per tag");
    cmd->alias("ls");
    cmd->add_flag("--json", a->json, "Print an array of image objects");
    cmd->add_flag("--digests", a->digests, "Show full digests");
    cmd->callback([&cli, a] { cli.exit_code = RunList(cli, a->json, a->digests); });
  }
  {
    auto reference = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    CLI::App* cmd = image->add_subcommand(
        "inspect", "Print an image as JSON: digest, tags, size, layers, config");
    cmd->add_option("REFERENCE", *reference, "Tag, REPO@sha256:DIGEST or sha256:DIGEST")
        ->required();
    cmd->add_flag("--json", *json, "Accepted for symmetry: the output is always JSON");
    cmd->callback([&cli, reference] { cli.exit_code = RunInspect(cli, *reference); });
  }
  {
    auto references = std::make_shared<std::vector<std::string>>();
    CLI::App* cmd = image->add_subcommand(
        "rm",
        "Remove a tag; the image (its blobs and unpacked layers no other image uses) "
        "goes with its last tag, or at once when named by digest");
    cmd->alias("remove");
    cmd->add_option("REFERENCE", *references, "Images to remove")->required();
    cmd->callback([&cli, references] { cli.exit_code = RunRemove(cli, *references); });
  }
  {
    struct Args {
      std::string file;
      std::string tag;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = image->add_subcommand(
        "import", "Import an OCI image layout or docker save archive (tar, .tar.gz, .tar.zst)");
    cmd->add_option("FILE", a->file, "The archive; - for stdin")->required();
    cmd->add_option("--tag", a->tag, "Tag the imported image (an archive of one image)")
        ->type_name("REFERENCE");
    cmd->callback([&cli, a] { cli.exit_code = RunImport(cli, a->file, a->tag); });
  }
  {
    struct Args {
      std::string reference;
      std::string output;
    };
    auto a = std::make_shared<Args>();
    CLI::App* cmd = image->add_subcommand("export", "Write an image as an OCI image layout tar");
    cmd->add_option("REFERENCE", a->reference, "The image")->required();
    cmd->add_option("-o,--output", a->output, "The tar file; - for stdout")->required();
    cmd->callback([&cli, a] { cli.exit_code = RunExport(cli, a->reference, a->output); });
  }
}

}  // namespace rauha::cli
