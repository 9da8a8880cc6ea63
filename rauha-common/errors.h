// absl::Status helpers that carry errno and the object acted on, e.g.
// "mkdir /sys/fs/cgroup/pids/rauha/z1: Permission denied".
#pragma once

#include <string_view>

#include "absl/status/status.h"

namespace rauha {

// Status for a failed syscall: the code follows errno (ENOENT -> NotFound, EEXIST ->
// AlreadyExists, EACCES/EPERM -> PermissionDenied, EINVAL -> InvalidArgument, EBUSY ->
// FailedPrecondition, ENOSPC/ENOMEM/EAGAIN -> ResourceExhausted, else Internal).
absl::Status ErrnoStatus(int err, std::string_view what);

// Prefixes a status message with context, keeping its code: "creating zone z1: <message>".
absl::Status Annotate(const absl::Status& status, std::string_view context);

}  // namespace rauha

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define RAUHA_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::absl::Status rauha_status_ = (expr);         \
    if (!rauha_status_.ok()) return rauha_status_; \
  } while (0)

#define RAUHA_CONCAT_INNER(a, b) a##b
#define RAUHA_CONCAT(a, b) RAUHA_CONCAT_INNER(a, b)
// Declares `lhs` from an absl::StatusOr expression, or returns its error.
#define RAUHA_ASSIGN_OR_RETURN(lhs, expr) \
  RAUHA_ASSIGN_OR_RETURN_IMPL(RAUHA_CONCAT(rauha_statusor_, __LINE__), lhs, expr)
#define RAUHA_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
