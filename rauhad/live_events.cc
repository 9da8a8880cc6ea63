#include "rauhad/live_events.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "rauha-common/errors.h"

namespace rauha {

absl::StatusOr<LiveEventQueue> LiveEventQueue::Create() {
  UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd) return ErrnoStatus(errno, "eventfd for a task's live events");
  return LiveEventQueue(std::move(fd));
}

void LiveEventQueue::Push(const EnforcementEvent& event) {
  {
    std::lock_guard lock(mu_);
    if (queued_.size() >= kMaxQueued) return;
    queued_.push_back(event);
  }
  const uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
}

std::vector<EnforcementEvent> LiveEventQueue::TakeAll() {
  std::lock_guard lock(mu_);
  std::vector<EnforcementEvent> out(std::make_move_iterator(queued_.begin()),
                                    std::make_move_iterator(queued_.end()));
  queued_.clear();
  return out;
}

}  // namespace rauha
