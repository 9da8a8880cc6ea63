// gRPC metadata of ours that rauhad sends and the CLI reads.
#pragma once

namespace rauha {

// RunSandbox's initial metadata, sent as soon as the task runs and is recorded (long before
// the response): a client cut off from rauhad afterwards knows which task to collect with
// WaitTask (`rauha task wait ID`).
inline constexpr char kTaskIdMetadataKey[] = "rauha-task-id";

}  // namespace rauha
