#ifndef PADDOCK_CSPAWN_H
#define PADDOCK_CSPAWN_H
#include <spawn.h>
#include <sys/types.h>

/// pipe2(O_CLOEXEC): both ends close on exec, atomically, so a task launched
/// concurrently on another thread never inherits another task's pipe.
int paddock_pipe_cloexec(int fds[2]);

/// posix_spawn_file_actions_addchdir_np (glibc >= 2.29), hidden from Swift behind _GNU_SOURCE.
int paddock_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);

/// posix_spawn_file_actions_addclosefrom_np (glibc >= 2.34).
int paddock_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from);

/// Launches a task: vfork, then in the child (before anything of the task runs) joins the cgroups
/// whose `cgroup.procs` files are open in `cgroup_fds`, becomes the leader of its own process group,
/// takes stdin from /dev/null and stdout+stderr from `out_fd`, changes to `cwd`, closes every other
/// descriptor, resets signals, and execs `file` looked up in the agent's PATH. posix_spawn cannot
/// join a cgroup before exec, and a task that forks a daemon at once must not escape its cgroup.
/// Returns 0 with `*pid` set, or an errno with `*failed_stage` saying which step failed:
/// 1 joining a cgroup, 2 the process group, 3 the standard descriptors, 4 cwd, 5 exec.
int paddock_spawn(pid_t *pid, const char *file, char *const argv[], char *const envp[], const char *cwd,
                  int out_fd, const int *cgroup_fds, int n_cgroup_fds, int *failed_stage);

#endif
