#include "rauha-cli/pull_display.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <optional>
#include <vector>

#include "rauha-cli/signals.h"
#include "rauha/v1/image.grpc.pb.h"

namespace rauha::cli {
namespace {

namespace iv1 = rauha::image::v1;

std::string ShortDigest(const std::string& digest) {
  std::string hex = digest.rfind("sha256:", 0) == 0 ? digest.substr(7) : digest;
  return hex.substr(0, 12);
}

// Per-layer progress: bars redrawn in place on a terminal, else one line per state change.
class PullDisplay {
 public:
  explicit PullDisplay(std::FILE* out) : out_(out), tty_(::isatty(::fileno(out)) == 1) {}

  void Update(const iv1::PullProgress& p) {
    if (p.layer().empty() || p.status() == "resolved") {
      if (p.status() == "resolved") Line("resolved " + p.layer());
      return;
    }
    auto [it, inserted] = layers_.try_emplace(p.layer());
    if (inserted) order_.push_back(p.layer());
    Layer& l = it->second;
    bool changed = l.status != p.status();
    l.status = p.status();
    l.current = p.current();
    l.total = p.total();
    if (tty_) {
      Redraw();
    } else if (changed && l.status != "downloading") {
      Line(ShortDigest(p.layer()) + ": " + l.status + " " + HumanBytes(l.total));
    } else if (changed) {
      Line(ShortDigest(p.layer()) + ": downloading " + HumanBytes(l.total));
    }
  }

 private:
  struct Layer {
    std::string status;
    uint64_t current = 0, total = 0;
  };

  void Line(const std::string& text) {
    if (tty_) {
      // Above the bars: they are redrawn below it.
      Erase();
      std::fprintf(out_, "%s\n", text.c_str());
      drawn_ = 0;
      Redraw();
    } else {
      std::fprintf(out_, "%s\n", text.c_str());
    }
    std::fflush(out_);
  }

  void Erase() {
    for (size_t i = 0; i < drawn_; ++i) std::fputs("\x1b[1A\x1b[2K", out_);
  }

  void Redraw() {
    Erase();
    for (const auto& digest : order_) {
      const Layer& l = layers_[digest];
      constexpr int kWidth = 30;
      int filled =
          l.total == 0 ? 0 : static_cast<int>(kWidth * l.current / std::max<uint64_t>(l.total, 1));
      filled = std::min(filled, kWidth);
      std::string bar(static_cast<size_t>(filled), '=');
      if (filled < kWidth) bar += '>' + std::string(static_cast<size_t>(kWidth - filled - 1), ' ');
      std::fprintf(out_, "%s: %-11s [%s] %s / %s\n", ShortDigest(digest).c_str(), l.status.c_str(),
                   bar.c_str(), HumanBytes(l.current).c_str(), HumanBytes(l.total).c_str());
    }
    drawn_ = order_.size();
    std::fflush(out_);
  }

  std::FILE* out_;
  bool tty_;
  std::map<std::string, Layer> layers_;
  std::vector<std::string> order_;
  size_t drawn_ = 0;
};

}  // namespace

int PullWithProgress(const Cli& cli, const std::string& reference, std::FILE* progress,
                     int error_code, std::string* digest) {
  auto stub = MakeStub<iv1::ImageService>(cli);
  if (!stub.ok()) return Fail(stub.status(), error_code);
  iv1::PullRequest req;
  req.set_reference(reference);
  grpc::ClientContext ctx;
  CancelOnSignal cancel(&ctx);
  auto reader = (*stub)->Pull(&ctx, req);
  std::optional<PullDisplay> display;
  if (progress != nullptr) display.emplace(progress);
  iv1::PullProgress p;
  digest->clear();
  while (reader->Read(&p)) {
    if (p.done()) {
      *digest = p.status().substr(p.status().find(' ') + 1);
      continue;
    }
    if (display) display->Update(p);
  }
  grpc::Status s = reader->Finish();
  if (cancel.signal() != 0) {
    return Fail("pull cancelled", 128 + cancel.signal());
  }
  if (!s.ok()) return Fail(DescribeRpcError(s), error_code);
  if (digest->empty()) return Fail("rauhad ended the pull without saying it was done", error_code);
  return 0;
}

}  // namespace rauha::cli
