#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cspawn.h"

int paddock_has_capability(int capability) {
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (capability < 0 || capability >= 64 || syscall(SYS_capget, &header, data) != 0) return 0;
    return (data[capability / 32].effective >> (capability % 32)) & 1;
}

int paddock_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int paddock_malloc_trim(void) { return malloc_trim(0); }

int paddock_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int paddock_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

int paddock_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}

/* Default dispositions in a child, whatever the agent handles or ignores. Only while every signal is
   blocked (set up before the vfork): a handler of the agent's must never run in a child that shares
   its memory. A vfork child has dispositions of its own (no CLONE_SIGHAND): this changes nothing in
   the agent. */
static void default_dispositions(void) {
    /* The raw system call: glibc's sigaction refuses the signals it reserves for its threads (32
       and 33), which an agent started with them ignored would otherwise pass on to every task.
       An all-zero kernel sigaction is SIG_DFL with no flags and an empty mask on every layout. */
    unsigned long dfl[4];
    memset(dfl, 0, sizeof dfl);
    for (int s = 1; s < NSIG; s++) {
        if (s == SIGKILL || s == SIGSTOP) continue;
        syscall(SYS_rt_sigaction, s, dfl, NULL, 8);  /* the kernel's sigset: 64 bits */
    }
}

/* An empty mask, right before the exec (which keeps the mask): the task starts with none blocked. */
static void unblock_signals(void) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Default dispositions and an empty mask in a child about to exec. */
static void reset_signals(void) {
    default_dispositions();
    unblock_signals();
}

/* Becomes the task's user (`uid` < 0: stays the agent's). Raw system calls: glibc's setuid would
   try to change the credentials of every thread of the agent, whose memory this child shares.
   A task keeps none of the agent's capabilities. An agent running as root that switches to another
   user loses them in the kernel's own uid change; an agent under its own user was given some as
   ambient capabilities (CAP_SETUID, CAP_KILL...: the unit's AmbientCapabilities), which a change
   between two non-root users keeps and an exec passes on. So the child drops every one before the
   exec, unless it stays root (an agent run as root without --task-user runs its tasks as root). */
static int become(int uid, int gid, const gid_t *groups, int ngroups) {
    if (uid >= 0) {
        if (syscall(SYS_setgroups, ngroups, groups) != 0) return -1;
        if (syscall(SYS_setresgid, gid, gid, gid) != 0) return -1;
        if (syscall(SYS_setresuid, uid, uid, uid) != 0) return -1;
    }
    if (syscall(SYS_getuid) == 0) return 0;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) return -1;
    struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct none[2];
    memset(none, 0, sizeof none);
    if (syscall(SYS_capset, &header, none) != 0) return -1;
    return 0;
}

/* The child between vfork and exec: it shares the parent's memory, so it only makes system calls
   on what the parent prepared, and reports a failure through `report` (close-on-exec: a successful
   exec closes it, and the parent reads end-of-file). */
static void child(const char *file, char *const argv[], char *const envp[], const char *cwd, int out_fd,
                  const int *cgroup_fds, int n_cgroup_fds, int report, const paddock_user *user) {
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
    if (become(user ? user->uid : -1, user ? user->gid : -1, user ? user->groups : NULL, user ? user->ngroups : 0) != 0) {
        stage = 7; goto fail;
    }
    if (chdir(cwd) != 0) { stage = 4; goto fail; }
    /* No descriptor of the agent's beyond 0-2 reaches the task (sockets, other tasks' pipes, the
       cgroup files), except `report` itself until the exec closes it. */
    if (report > 3) syscall(SYS_close_range, 3, report - 1, 0);
    syscall(SYS_close_range, report + 1, ~0U, 0);
    reset_signals();
    execvpe(file, argv, envp);
    stage = 5;
fail:
    err = errno;
    int message[2] = {stage, err};
    (void)!write(report, message, sizeof message);
    _exit(127);
}

int paddock_spawn(pid_t *pid, const char *file, char *const argv[], char *const envp[], const char *cwd,
                  int out_fd, const int *cgroup_fds, int n_cgroup_fds, const paddock_user *user, int *failed_stage) {
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
        child(file, argv, envp, cwd, out_fd, cgroup_fds, n_cgroup_fds, report[1], user);
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

/* ---- Warm launches ------------------------------------------------------------------------------

   Moving a process into a cgroup takes the kernel's global migration lock for writing, and the
   first writer after a quiet spell waits for an RCU grace period (~14 ms here): on a farm of short
   tasks that wait was most of a launch. A warm child pays it before its task is known: vforked on
   a thread of its own, it joins its cgroups, sets up its descriptors and process group, says it is
   ready, and waits on a pipe. The launch writes the task (argv, environment, cwd) into memory the
   child shares until its exec, and one byte into the pipe. */

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/prctl.h>

struct paddock_warm {
    int go_write, report_read, out_read;   /* the agent's ends */
    int go_read, report_write, out_write;  /* the child's ends: the agent closes its copies once it has read the first report */
    char **procs_paths;
    int n_paths;
    /* Written by the launch before "go"; read by the child, which shares this memory until its exec. */
    const char *file;
    char *const *argv;
    char *const *envp;
    const char *cwd;
    const paddock_user *user;
    atomic_int launched;
    atomic_int refs;
    /* The first report (read once by the launch or the dismissal): stage 0 and the child's pid when ready. */
    int first_read, first_stage, first_value;
};

static void warm_release(struct paddock_warm *w) {
    if (atomic_fetch_sub(&w->refs, 1) != 1) return;
    for (int i = 0; i < w->n_paths; i++) free(w->procs_paths[i]);
    free(w->procs_paths);
    free(w);
}

/* Below this, the child's descriptors: 0 /dev/null, 1 and 2 the output, 3 "go", 4 the report. */
enum { WARM_GO = 3, WARM_REPORT = 4 };

static void warm_child(struct paddock_warm *w) {
    int stage = 3, err = 0;
    int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    /* Out of the way of the targets first, so no dup2 overwrites a descriptor still to be moved. */
    int out = fcntl(w->out_write, F_DUPFD_CLOEXEC, 100);
    int go = fcntl(w->go_read, F_DUPFD_CLOEXEC, 100);
    int report = fcntl(w->report_write, F_DUPFD_CLOEXEC, 100);
    if (null_fd < 0 || out < 0 || go < 0 || report < 0) goto early;
    null_fd = fcntl(null_fd, F_DUPFD_CLOEXEC, 100);
    if (null_fd < 0) goto early;
    if (dup2(null_fd, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) goto early;
    if (dup3(go, WARM_GO, O_CLOEXEC) < 0 || dup3(report, WARM_REPORT, O_CLOEXEC) < 0) goto early;
    /* Nothing else of the agent's stays open here (other launches' pipes above all: a launch sees
       its task's exec as end-of-file on its report pipe, which a copy held here would delay). */
    syscall(SYS_close_range, WARM_REPORT + 1, ~0U, 0);
    prctl(PR_SET_NAME, "paddock-warm", 0, 0, 0);
    if (setpgid(0, 0) != 0) { stage = 2; goto fail; }
    for (int i = 0; i < w->n_paths; i++) {
        int fd = open(w->procs_paths[i], O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1) { stage = 1; goto fail; }
        close(fd);
    }
    /* The 62 rt_sigaction calls now, while the child waits for a task, not between its "go" and
       its exec (about 20 us there on the benchmark host). Signals stay blocked until the exec. */
    default_dispositions();
    int ready[2] = {0, (int)syscall(SYS_getpid)};
    if (write(WARM_REPORT, ready, sizeof ready) != (ssize_t)sizeof ready) _exit(127);
    char go_byte;
    ssize_t n;
    do { n = read(WARM_GO, &go_byte, 1); } while (n < 0 && errno == EINTR);
    if (n != 1) _exit(0);  /* dismissed, or the agent is gone */
    const paddock_user *user = w->user;
    if (become(user ? user->uid : -1, user ? user->gid : -1, user ? user->groups : NULL, user ? user->ngroups : 0) != 0) {
        stage = 7; goto fail;
    }
    if (chdir(w->cwd) != 0) { stage = 4; goto fail; }
    unblock_signals();
    execvpe(w->file, w->argv, w->envp);
    stage = 5;
fail:
    err = errno;
    int message[2] = {stage, err};
    (void)!write(WARM_REPORT, message, sizeof message);
    _exit(127);
early:
    /* The descriptors are not in place: report through the original end. */
    err = errno;
    int early_message[2] = {stage, err};
    (void)!write(w->report_write, early_message, sizeof early_message);
    _exit(127);
}

static void *warm_thread(void *arg) {
    struct paddock_warm *w = arg;
    /* All signals blocked across vfork: no handler of the agent's may run in the child while it
       shares the agent's memory. The child resets dispositions before it unblocks. */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, NULL);
    pid_t pid = vfork();
    if (pid == 0) warm_child(w);
    if (pid < 0) {
        int message[2] = {6, errno};
        (void)!write(w->report_write, message, sizeof message);
    } else if (!atomic_load(&w->launched)) {
        /* Never launched: it exited (dismissed, or it failed before it was ready). */
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    }
    warm_release(w);
    return NULL;
}

paddock_warm *paddock_warm_start(const char *const *procs_paths, int n_paths, int *error) {
    struct paddock_warm *w = calloc(1, sizeof *w);
    if (!w) { *error = ENOMEM; return NULL; }
    int go[2] = {-1, -1}, report[2] = {-1, -1}, out[2] = {-1, -1};
    if (pipe2(go, O_CLOEXEC) != 0 || pipe2(report, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) goto fail;
    w->go_write = go[1]; w->go_read = go[0];
    w->report_read = report[0]; w->report_write = report[1];
    w->out_read = out[0]; w->out_write = out[1];
    w->procs_paths = calloc(n_paths > 0 ? n_paths : 1, sizeof(char *));
    if (!w->procs_paths) { errno = ENOMEM; goto fail; }
    for (int i = 0; i < n_paths; i++) {
        w->procs_paths[i] = strdup(procs_paths[i]);
        if (!w->procs_paths[i]) { errno = ENOMEM; goto fail; }
        w->n_paths = i + 1;
    }
    atomic_init(&w->launched, 0);
    atomic_init(&w->refs, 2);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);  /* the child's stack too, until its exec */
    pthread_t thread;
    int rc = pthread_create(&thread, &attr, warm_thread, w);
    pthread_attr_destroy(&attr);
    if (rc != 0) { errno = rc; goto fail; }
    return w;
fail:
    *error = errno;
    for (int i = 0; i < 2; i++) {
        if (go[i] >= 0) close(go[i]);
        if (report[i] >= 0) close(report[i]);
        if (out[i] >= 0) close(out[i]);
    }
    if (w->procs_paths) for (int i = 0; i < w->n_paths; i++) free(w->procs_paths[i]);
    free(w->procs_paths);
    free(w);
    return NULL;
}

/* The first report: ready (stage 0, the pid) or why the child could not get ready. The child's ends
   are closed afterwards: the child holds its own copies (or is gone), and the thread writes into
   them only before that report. The read end of "go" stays open until the byte is written: a
   child killed meanwhile then costs no SIGPIPE (its launch sees it end like any task). */
static void warm_first_report(struct paddock_warm *w) {
    if (w->first_read) return;
    w->first_read = 1;
    int message[2] = {0, 0};
    ssize_t n;
    do { n = read(w->report_read, message, sizeof message); } while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof message) {
        w->first_stage = message[0];
        w->first_value = message[1];
    } else {
        w->first_stage = 6;
        w->first_value = EIO;
    }
    close(w->report_write);
    close(w->out_write);
}

int paddock_warm_output_fd(const paddock_warm *w) { return w->out_read; }

int paddock_warm_wait_ready(paddock_warm *w) {
    warm_first_report(w);
    return w->first_stage;
}

int paddock_warm_launch(paddock_warm *w, const char *file, char *const argv[], char *const envp[], const char *cwd,
                        const paddock_user *user, pid_t *pid, int *failed_stage) {
    *failed_stage = 0;
    warm_first_report(w);
    if (w->first_stage != 0) {
        *failed_stage = w->first_stage;
        int err = w->first_value != 0 ? w->first_value : EIO;
        close(w->go_write);
        close(w->go_read);
        close(w->report_read);
        close(w->out_read);
        warm_release(w);
        return err;
    }
    pid_t child = (pid_t)w->first_value;
    w->file = file;
    w->argv = argv;
    w->envp = envp;
    w->cwd = cwd;
    w->user = user;
    atomic_store(&w->launched, 1);
    int rc = 0;
    if (write(w->go_write, "x", 1) != 1) rc = errno;
    close(w->go_write);
    close(w->go_read);
    int message[2] = {0, 0};
    ssize_t n = 0;
    if (rc == 0) {
        do { n = read(w->report_read, message, sizeof message); } while (n < 0 && errno == EINTR);
    }
    close(w->report_read);
    if (rc != 0 || n == (ssize_t)sizeof message) {
        /* It failed before or at exec and exited (or never got the byte, then it exits on end-of-file):
           reaped here, it never ran the task. */
        while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {}
        close(w->out_read);
        *failed_stage = rc != 0 ? 6 : message[0];
        if (rc == 0) rc = message[1] != 0 ? message[1] : EIO;
        warm_release(w);
        return rc;
    }
    *pid = child;
    warm_release(w);
    return 0;
}

void paddock_warm_dismiss(paddock_warm *w) {
    /* Closing "go" first: a child still joining its cgroups exits as soon as it reads end-of-file. */
    close(w->go_write);
    warm_first_report(w);
    close(w->go_read);
    close(w->report_read);
    close(w->out_read);
    warm_release(w);
}
