// What `ps` and /proc/<pid>/cmdline show for a forked copy of the shim. The shim's command
// line names host paths (socket, state dir, log); a task's init is visible from inside the
// task, so it overwrites that memory in place. prctl(PR_SET_MM) could move the area instead,
// but needs CAP_SYS_RESOURCE.
#pragma once

namespace rauha::shim {

// Call first thing in main: remembers the argv strings' memory (argv[0] to the end of the
// last contiguous argument).
void RememberArgvArea(int argc, char** argv);

// Overwrites the remembered area with `title` and NULs (truncated to fit) and sets the
// thread name (comm) to it. argv must not be used afterwards. Async-signal-safe: no allocation.
void SetProcessTitle(const char* title);

}  // namespace rauha::shim
