#ifndef PADDOCK_CSPAWN_H
#define PADDOCK_CSPAWN_H
#include <spawn.h>

/// pipe2(O_CLOEXEC): both ends close on exec, atomically, so a task launched
/// concurrently on another thread never inherits another task's pipe.
int paddock_pipe_cloexec(int fds[2]);

/// posix_spawn_file_actions_addchdir_np (glibc >= 2.29), hidden from Swift behind _GNU_SOURCE.
int paddock_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);

/// posix_spawn_file_actions_addclosefrom_np (glibc >= 2.34): the task inherits no descriptor of
/// the agent's beyond stdin/stdout/stderr (sockets, the pipes of other tasks, whatever the agent's
/// own parent left open).
int paddock_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from);

#endif
