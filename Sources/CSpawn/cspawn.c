#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cspawn.h"

int paddock_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int paddock_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

int paddock_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}

/* The child between vfork and exec: it shares the parent's memory, so it only makes system calls
   on what the parent prepared, and reports a failure through `report` (close-on-exec: a successful
   exec closes it, and the parent reads end-of-file). */
static void child(const char *file, char *const argv[], char *const envp[], const char *cwd, int out_fd,
                  const int *cgroup_fds, int n_cgroup_fds, int report) {
    int stage = 0, err = 0;
    /* Into the task's cgroups first, before anything runs that could fork: "0" moves the writer. */
    for (int i = 0; i < n_cgroup_fds; i++) {
        if (write(cgroup_fds[i], "0", 1) != 1) { stage = 1; goto fail; }
    }
    if (setpgid(0, 0) != 0) { stage = 2; goto fail; }
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd < 0) { stage = 3; goto fail; }
    if (null_fd != 0) { if (dup2(null_fd, 0) < 0) { stage = 3; goto fail; } close(null_fd); }
    if (dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0) { stage = 3; goto fail; }
    if (chdir(cwd) != 0) { stage = 4; goto fail; }
    /* No descriptor of the agent's beyond 0-2 reaches the task (sockets, other tasks' pipes, the
       cgroup files), except `report` itself until the exec closes it. */
    if (report > 3) syscall(SYS_close_range, 3, report - 1, 0);
    syscall(SYS_close_range, report + 1, ~0U, 0);
    /* Default dispositions and an empty mask, whatever the agent handles, ignores or blocks. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++) {
        if (s == SIGKILL || s == SIGSTOP) continue;
        sigaction(s, &dfl, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvpe(file, argv, envp);
    stage = 5;
fail:
    err = errno;
    int message[2] = {stage, err};
    (void)!write(report, message, sizeof message);
    _exit(127);
}

int paddock_spawn(pid_t *pid, const char *file, char *const argv[], char *const envp[], const char *cwd,
                  int out_fd, const int *cgroup_fds, int n_cgroup_fds, int *failed_stage) {
    *failed_stage = 0;
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return errno;
    /* All signals blocked across vfork: no handler of the agent's may run in the child while it
       shares the agent's memory. The child resets dispositions before it unblocks. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t child_pid = vfork();
    if (child_pid == 0) {
        child(file, argv, envp, cwd, out_fd, cgroup_fds, n_cgroup_fds, report[1]);
    }
    int spawn_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(report[1]);
    if (child_pid < 0) { close(report[0]); return spawn_errno; }
    int message[2] = {0, 0};
    ssize_t n;
    do { n = read(report[0], message, sizeof message); } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof message) {
        /* The child failed before or at exec and exited: reap it here, it never ran the task. */
        while (waitpid(child_pid, NULL, 0) < 0 && errno == EINTR) {}
        *failed_stage = message[0];
        return message[1] != 0 ? message[1] : EIO;
    }
    *pid = child_pid;
    return 0;
}
