#include "rauhad/container/removal_queue.h"

#include <dirent.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "rauha-common/errors.h"
#include "rauha-common/remove_tree.h"
#include "rauha-common/strcat.h"

namespace rauha::container {

RemovalQueue::RemovalQueue(std::string trash_dir, int nice)
    : trash_dir_(std::move(trash_dir)), nice_(nice) {}

RemovalQueue::~RemovalQueue() { Stop(); }

absl::Status RemovalQueue::Start() {
  if (::mkdir(trash_dir_.c_str(), 0700) < 0 && errno != EEXIST) {
    return ErrnoStatus(errno, StrCat("mkdir ", trash_dir_));
  }
  std::deque<std::string> left;
  if (DIR* d = ::opendir(trash_dir_.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") left.push_back(std::move(n));
    }
    ::closedir(d);
  } else {
    return ErrnoStatus(errno, StrCat("opendir ", trash_dir_));
  }
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stopping_) return absl::OkStatus();
  if (!left.empty()) {
    std::fprintf(stderr, "rauhad: removing %zu deleted containers' directories left in %s\n",
                 left.size(), trash_dir_.c_str());
  }
  queue_.insert(queue_.end(), left.begin(), left.end());
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

absl::Status RemovalQueue::Take(const std::string& dir, const std::string& name) {
  std::unique_lock lock(mu_);
  const bool queued = thread_.joinable() && !stopping_;
  if (queued) {
    const std::string target = StrCat(trash_dir_, "/", name);
    // Under mu_: the thread never removes a name that is being moved in.
    if (::rename(dir.c_str(), target.c_str()) == 0) {
      queue_.push_back(name);
      cv_.notify_all();
      return absl::OkStatus();
    }
    if (errno == ENOENT) return absl::OkStatus();
    // EXDEV (the trash is elsewhere), ENOTEMPTY (a leftover of the same name): in place.
  }
  lock.unlock();
  return RemoveTree(dir);
}

void RemovalQueue::Stop() {
  {
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
  }
  thread_.join();
}

void RemovalQueue::Run() {
  // Removals yield to request threads.
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice_);
  std::unique_lock lock(mu_);
  while (true) {
    if (queue_.empty()) {
      if (stopping_) break;
      cv_.wait(lock);
      continue;
    }
    std::string name = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    auto st = RemoveTree(StrCat(trash_dir_, "/", name));
    if (!st.ok()) {
      std::fprintf(stderr, "rauhad: removing a deleted container's directory: %s\n",
                   ToStd(st.message()).c_str());
    }
    lock.lock();
  }
}

}  // namespace rauha::container
