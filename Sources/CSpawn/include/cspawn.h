#ifndef PADDOCK_CSPAWN_H
#define PADDOCK_CSPAWN_H
#include <spawn.h>
#include <sys/types.h>

/// The user a task runs as (`--task-user`), instead of the agent's own: its uid, gid and
/// supplementary groups. NULL (or `uid` < 0) keeps the agent's.
typedef struct paddock_user {
    int uid;
    int gid;
    const gid_t *groups;
    int ngroups;
} paddock_user;

/// 1 when this process has `capability` (CAP_SETUID...) in its effective set: an agent under its own
/// user switches its tasks to another one with CAP_SETUID, CAP_SETGID and CAP_CHOWN, given as the
/// unit's ambient capabilities.
int paddock_has_capability(int capability);

/// pipe2(O_CLOEXEC): both ends close on exec, atomically, so a task launched
/// concurrently on another thread never inherits another task's pipe.
int paddock_pipe_cloexec(int fds[2]);

/// pidfd_open(2) (Linux 5.3+): a descriptor that polls readable once `pid` has exited; -1 with errno
/// where the kernel has none.
int paddock_pidfd_open(pid_t pid);

/// malloc_trim(0) (glibc's malloc.h, which Swift's Glibc module leaves out): gives the free pages
/// of every malloc arena back to the kernel. Returns 1 if memory was released.
int paddock_malloc_trim(void);

/// posix_spawn_file_actions_addchdir_np (glibc >= 2.29), hidden from Swift behind _GNU_SOURCE.
int paddock_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);

/// posix_spawn_file_actions_addclosefrom_np (glibc >= 2.34).
int paddock_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from);

/// Launches a task: vfork, then in the child (before anything of the task runs) joins the cgroups
/// whose `cgroup.procs` files are open in `cgroup_fds`, becomes the leader of its own process group,
/// takes stdin from /dev/null and stdout+stderr from `out_fd`, changes to `cwd`, closes every other
/// descriptor, resets signals, and execs `file` looked up in the agent's PATH. posix_spawn cannot
/// join a cgroup before exec, and a task that forks a daemon at once must not escape its cgroup.
/// With `user`, it becomes that user (groups, gid, uid) before it changes to `cwd`.
/// Returns 0 with `*pid` set, or an errno with `*failed_stage` saying which step failed:
/// 1 joining a cgroup, 2 the process group, 3 the standard descriptors, 4 cwd, 5 exec, 7 the user.
int paddock_spawn(pid_t *pid, const char *file, char *const argv[], char *const envp[], const char *cwd,
                  int out_fd, const int *cgroup_fds, int n_cgroup_fds, const paddock_user *user, int *failed_stage);

/// A child waiting in its cgroups for a task (see cspawn.c): its join, the slow part of a launch on a
/// cgroup host, is paid before the task is known.
typedef struct paddock_warm paddock_warm;

/// Starts a warm child on a thread of its own: it joins the cgroups whose `cgroup.procs` files are
/// `procs_paths`, takes stdin from /dev/null and stdout+stderr from its output pipe, leads its own
/// process group, and waits. Returns NULL with `*error` set if it cannot be started.
paddock_warm *paddock_warm_start(const char *const *procs_paths, int n_paths, int *error);

/// The read end of the child's output pipe (the caller's after a successful launch; closed otherwise).
int paddock_warm_output_fd(const paddock_warm *w);

/// Waits until the child has joined its cgroups: 0 when it has, else the stage that failed.
int paddock_warm_wait_ready(paddock_warm *w);

/// Runs a task in the warm child: `file` looked up in the agent's PATH, in `cwd`. Waits until the
/// child is ready, then until its exec. Returns 0 with `*pid` set, or an errno with `*failed_stage`
/// (as `paddock_spawn`'s, 6: the child could not be started). Consumes `w` either way.
int paddock_warm_launch(paddock_warm *w, const char *file, char *const argv[], char *const envp[], const char *cwd,
                        const paddock_user *user, pid_t *pid, int *failed_stage);

/// Ends a warm child that will not be used (it exits; it is reaped) and consumes `w`.
void paddock_warm_dismiss(paddock_warm *w);

#endif
