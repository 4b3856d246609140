/* proc.c: child processes for the sweep driver. posix_spawn keeps the parent's memory out of the
 * picture (no fork of a large training process); each child leads its own process group so that
 * a signal reaches its whole tree, and starts with SIGINT and SIGTERM at their defaults (a
 * handler cannot be inherited; an inherited "ignore" would make the child deaf to Ctrl-C). */
#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* environ followed by the extra "NAME=value" entries (an extra one replaces an inherited one of
 * the same name); NULL when memory runs out */
static char **merged_env(const char *const *extra) {
  size_t ne = 0, nx = 0;
  while (environ[ne]) ne++;
  while (extra && extra[nx]) nx++;
  char **env = calloc(ne + nx + 1, sizeof *env);
  if (!env) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < ne; i++) {
    int replaced = 0;
    for (size_t j = 0; j < nx && !replaced; j++) {
      const char *eq = strchr(extra[j], '=');
      size_t len = eq ? (size_t)(eq - extra[j]) : strlen(extra[j]);
      replaced = !strncmp(environ[i], extra[j], len) && environ[i][len] == '=';
    }
    if (!replaced) env[k++] = environ[i];
  }
  for (size_t j = 0; j < nx; j++) env[k++] = (char *)extra[j];
  env[k] = NULL;
  return env;
}

vr_status vr_proc_spawn(const char *const *argv, const char *const *env, const char *log_path, int64_t *pid) {
  VR_CHECK_OUT(pid);
  if (!argv || !argv[0]) return VR_FAIL(VR_E_ARG, "argv: expected a program and its arguments");
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  if (log_path) {
    posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
  }
  sigset_t def, none;
  sigemptyset(&def);
  sigaddset(&def, SIGINT);
  sigaddset(&def, SIGTERM);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&at, &def);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setpgroup(&at, 0);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  char **envp = merged_env(env);
  pid_t child = 0;
  int rc = envp ? posix_spawnp(&child, argv[0], &fa, &at, (char *const *)argv, envp) : ENOMEM;
  free(envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  if (rc) return VR_FAIL(rc == ENOMEM ? VR_E_OOM : VR_E_IO, "cannot start %s%s%s: %s", argv[0],
                         log_path ? " logging to " : "", log_path ? log_path : "", strerror(rc));
  *pid = child;
  return VR_OK;
}

vr_status vr_proc_wait(int64_t pid, int block, int *done, int *status) {
  VR_CHECK_OUT(done);
  VR_CHECK_OUT(status);
  int ws = 0;
  pid_t r;
  do r = waitpid((pid_t)pid, &ws, block ? 0 : WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r < 0) return VR_FAIL(VR_E_ARG, "process %lld: %s", (long long)pid, strerror(errno));
  *done = r != 0;
  *status = !*done ? 0 : WIFEXITED(ws) ? WEXITSTATUS(ws) : WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : 1;
  return VR_OK;
}

vr_status vr_proc_signal(int64_t pid, int sig) {
  if (pid <= 0) return VR_FAIL(VR_E_ARG, "pid: expected a child's id, got %lld", (long long)pid);
  if (kill(-(pid_t)pid, sig) && errno != ESRCH) return VR_FAIL(VR_E_ARG, "process %lld: %s", (long long)pid, strerror(errno));
  return VR_OK;
}

int vr_proc_alive(int64_t pid) { return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM); }

void vr_sleep(double seconds) {
  if (!(seconds > 0)) return;
  struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  while (nanosleep(&ts, &ts) && errno == EINTR) {
  }
}

int vr_cpu_count(void) {
  cpu_set_t set;
  if (!sched_getaffinity(0, sizeof set, &set)) return CPU_COUNT(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}
