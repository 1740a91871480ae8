#define _GNU_SOURCE
#include "CPosternSocket.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

// A CGI script started the way glibc's posix_spawn starts a process (clone with CLONE_VM and
// CLONE_VFORK: no page tables copied, the parent thread waits until the child has executed),
// for a server that starts one per request:
// - the child's stack is mapped once per spawning thread, not mapped and unmapped per spawn:
//   an munmap in a multithreaded process flushes the TLB of every CPU that runs one of its
//   threads (an interrupt to each);
// - no file actions to build and check (glibc checks each descriptor against RLIMIT_NOFILE: six
//   getrlimit calls a spawn), and the child's steps in one place.
// Its exit raises SIGCHLD as any child's does (execve(2) makes the exit signal SIGCHLD whatever
// clone was given).

enum { spawn_stack_bytes = 64 * 1024 };

struct spawn_child {
    const struct postern_spawn_request *request;
    /// errno of the step that failed in the child (before execve, or execve itself); 0 if none.
    int error;
};

static pthread_key_t spawn_stack_key;
static pthread_once_t spawn_stack_once = PTHREAD_ONCE_INIT;
static __thread char *spawn_stack;

static void spawn_stack_free(void *stack) {
    munmap(stack, spawn_stack_bytes);
}

static void spawn_stack_key_create(void) {
    pthread_key_create(&spawn_stack_key, spawn_stack_free);
}

/// Runs in the child, on the parent's memory until execve: system calls only, no allocation,
/// no lock, and no handler of the parent's may run (every signal is blocked until the handlers
/// are reset).
static int spawn_child_main(void *opaque) {
    struct spawn_child *child = opaque;
    const struct postern_spawn_request *request = child->request;
    // Every signal with a handler back to its default action (the handler would run on the
    // parent's memory), and those the request names (the gateway ignores SIGPIPE: a script must
    // not inherit that). Ignored signals not named stay ignored, as execve(2) keeps them.
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        struct sigaction action;
        if (sigaction(sig, NULL, &action) != 0) continue;  // glibc's own signals
        int named = request->defaults != NULL && sigismember(request->defaults, sig) == 1;
        int handled = action.sa_handler != SIG_DFL && action.sa_handler != SIG_IGN;
        if (!named && !handled) continue;
        struct sigaction reset = {0};
        reset.sa_handler = SIG_DFL;
        sigemptyset(&reset.sa_mask);
        sigaction(sig, &reset, NULL);
    }
    if (setpgid(0, 0) != 0) goto fail;
    int fds[3] = {request->stdin_fd, request->stdout_fd, request->stderr_fd};
    if (fds[0] < 0 && (fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) goto fail;
    // A descriptor below 3 (a gateway started with a standard stream closed) would be
    // overwritten by an earlier dup2: move every one above 2 first.
    for (int i = 0; i < 3; i++) {
        if (fds[i] < 3 && (fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3)) < 0) goto fail;
    }
    for (int i = 0; i < 3; i++) {
        if (dup2(fds[i], i) < 0) goto fail;
    }
    if (request->directory != NULL && chdir(request->directory) != 0) goto fail;
    // Nothing else of the gateway: not its listening sockets, not other clients' connections.
    if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
        struct rlimit limit;
        long last = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY ? (long)limit.rlim_cur : 65536;
        for (long fd = 3; fd < last && fd < 1048576; fd++) close((int)fd);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(request->path, request->argv, request->envp);
fail:
    child->error = errno;
    _exit(127);
}

pid_t postern_spawn(const struct postern_spawn_request *request) {
    if (spawn_stack == NULL) {
        pthread_once(&spawn_stack_once, spawn_stack_key_create);
        void *stack = mmap(NULL, spawn_stack_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (stack == MAP_FAILED) return -errno;
        spawn_stack = stack;
        pthread_setspecific(spawn_stack_key, stack);
    }
    struct spawn_child child = {request, 0};
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &previous);
    pid_t pid = clone(spawn_child_main, spawn_stack + spawn_stack_bytes, CLONE_VM | CLONE_VFORK | SIGCHLD, &child);
    int clone_error = errno;
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (pid < 0) return -clone_error;
    if (child.error != 0) {
        // It never became the script: reap what exited with 127.
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        return -child.error;
    }
    return pid;
}

int postern_pipe_close_on_exec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}
