/* A miniature `script` for the container tests: opens a new pseudo-terminal through /dev/ptmx
 * (as `script`, `python -c 'import pty'` and sshd do), runs argv[1..] on its slave side as
 * the controlling terminal of a new session, copies what it writes to stdout, and exits with
 * its exit code. Prints "pty-probe: <step>: <error>" and exits 99 when a step fails. Linked
 * statically, so it runs in an image that holds nothing else but busybox. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char* step) {
  fprintf(stderr, "pty-probe: %s: %s\n", step, strerror(errno));
  return 99;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: pty_probe CMD...\n");
    return 2;
  }
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0) return fail("open /dev/ptmx");
  if (grantpt(master) < 0) return fail("grantpt");
  if (unlockpt(master) < 0) return fail("unlockpt");
  const char* name = ptsname(master);
  if (name == NULL) return fail("ptsname");
  fprintf(stderr, "pty-probe: slave %s\n", name);
  pid_t pid = fork();
  if (pid < 0) return fail("fork");
  if (pid == 0) {
    if (setsid() < 0) _exit(fail("setsid"));
    int slave = open(name, O_RDWR);
    if (slave < 0) _exit(fail("open the slave"));
    if (ioctl(slave, TIOCSCTTY, 0) < 0) _exit(fail("TIOCSCTTY"));
    dup2(slave, 0);
    dup2(slave, 1);
    dup2(slave, 2);
    if (slave > 2) close(slave);
    close(master);
    execv(argv[1], argv + 1);
    _exit(fail("exec"));
  }
  char buf[4096];
  for (;;) {
    ssize_t n = read(master, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break; /* EIO once the slave side is closed by all */
    fwrite(buf, 1, (size_t)n, stdout);
  }
  fflush(stdout);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
