#ifndef CPOSTERN_SOCKET_H
#define CPOSTERN_SOCKET_H

#include <sys/socket.h>
#include <spawn.h>
#include <signal.h>
#include <sys/types.h>

/// The Linux calls the connection engine's accept threads and the CGI host's exit watcher make,
/// which Swift's Glibc module does not export (epoll, eventfd, accept4 and pidfd_open are not in
/// its module map; prctl and syscall are variadic).

/// An eventfd (close-on-exec, non-blocking) that wakes every accept thread once written.
int postern_wake_create(void);

/// An epoll set of this thread's own: `listener` with EPOLLEXCLUSIVE (one waiter woken per
/// connection, across threads and processes; Linux 4.5) and `wake`. -1 with errno on failure.
int postern_accept_wait_create(int listener, int wake);

/// pipe2(2) with O_CLOEXEC: both ends close-on-exec from the start, so a process spawned by
/// another thread meanwhile inherits neither. -1 with errno on failure.
int postern_pipe_cloexec(int fds[2]);

/// Waits until the listener may have a connection or `wake` was written, or `timeout_ms` passed
/// (-1: no limit); 0 on a timeout, -1 with errno (EINTR).
int postern_accept_wait(int epoll, int timeout_ms);

/// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC, the peer's address into `address`.
int postern_accept(int listener, struct sockaddr_storage *address, socklen_t *length);

/// prctl(PR_SET_PDEATHSIG, signal): `signal` when the parent ends (prctl is variadic, which Swift
/// cannot call). 0, or -1 with errno.
int postern_set_parent_death_signal(int signal);

/// A listening socket's accept queue, read from the kernel: `queued` connections waiting to be
/// accepted, of at most `length` (the backlog as the kernel applies it: min(listen's backlog,
/// net.core.somaxconn)). TCP through getsockopt(TCP_INFO) (tcpi_unacked and tcpi_sacked hold
/// them for a listening socket), a unix socket through sock_diag netlink (UNIX_DIAG_RQLEN, the
/// socket found by its inode). 0, or -1 with errno.
int postern_listen_queue(int fd, unsigned int *queued, unsigned int *length);

/// Names the calling thread (15 bytes at most; `top -H`, `perf` and /proc/PID/task/TID/comm
/// show it). Foundation's `Thread.current.name` setter races with `Thread.start()` on Linux and
/// leaves about 1 thread in 100 with the name of the thread that created it.
int postern_set_thread_name(const char *name);

/// Marks the calling thread as one that serves one request at a time, start to end (an accept
/// thread: `ConnectionAcceptor`), or unmarks it. Code a request runs may then wait briefly on
/// that request's own work on the thread (the CGI host waits a few milliseconds for a small
/// script to finish, as fcgiwrap waits for every script), which it must never do on an event
/// loop, whose other connections would wait with it.
void postern_set_request_thread(int marked);

/// Whether the calling thread is marked by `postern_set_request_thread`.
int postern_is_request_thread(void);

/// pidfd_open(2) (Linux 5.3), close-on-exec: a descriptor that becomes readable when process
/// `pid` exits. -1 with errno (ENOSYS on older kernels).
int postern_pidfd_open(int pid);

/// An epoll set (close-on-exec) for the process's kernel watch: fast-path connections whose
/// application waits, CGI scripts' pidfds and pipes.
int postern_watch_create(void);

/// Arms `fd` in the set for one readiness event (EPOLLIN | EPOLLONESHOT, `token` as the event's
/// data): added when `add` is 1, re-armed (EPOLL_CTL_MOD, with the new token) when 0. 0, or -1
/// with errno.
int postern_watch_arm(int epoll, int fd, int add, unsigned long long token);

/// Takes `fd` out of the set; call it before closing `fd`: a script spawned meanwhile holds a
/// copy until its exec, and the set reports a descriptor until every copy is closed.
int postern_watch_remove(int epoll, int fd);

/// Watches a connection for its peer going away (the engine's fast path, while an application
/// waits): a reset (EPOLLERR, EPOLLHUP) always, the end of the peer's input (EPOLLRDHUP) too when
/// `end_means_gone` is 1; once (EPOLLONESHOT), with `token` as the event's data. 0, or -1 with
/// errno. Take it out with postern_watch_remove before closing `fd`.
int postern_peer_watch_add(int epoll, int fd, int end_means_gone, unsigned long long token);

/// Waits for the set's events: fills `tokens` with at most `capacity` tokens; returns their
/// count, or -1 with errno (EINTR).
int postern_watch_wait(int epoll, unsigned long long *tokens, int capacity);

/// posix_spawn_file_actions_addclosefrom_np (glibc 2.34): every descriptor from `low` up closed
/// in the child. 0, or an error number (ENOSYS on an older C library).
int postern_spawn_close_from(posix_spawn_file_actions_t *actions, int low);

/// What `postern_spawn` starts: `path` with `argv` and exactly `envp` (NULL-terminated), in
/// `directory` (NULL: the gateway's), in a process group of its own, with `stdin_fd` (-1:
/// /dev/null), `stdout_fd` and `stderr_fd` as its 0, 1 and 2 and no other descriptor, an empty
/// signal mask, every signal with a handler and every one in `defaults` (NULL: none) at its
/// default action.
struct postern_spawn_request {
    const char *path;
    char *const *argv;
    char *const *envp;
    const char *directory;
    int stdin_fd;
    int stdout_fd;
    int stderr_fd;
    const sigset_t *defaults;
};

/// Starts a process as `request` says, as posix_spawn(3) does (clone with CLONE_VM and
/// CLONE_VFORK), with its stack mapped once per calling thread. The process id, or minus the
/// error number (of clone, of a step in the child, or of execve: then the child is reaped
/// already).
pid_t postern_spawn(const struct postern_spawn_request *request);

/// pipe2(2) with O_CLOEXEC. 0, or -1 with errno.
int postern_pipe_close_on_exec(int fds[2]);

/// close_range(2) with CLOSE_RANGE_CLOEXEC (Linux 5.11): every descriptor from `first` to
/// `last` marked close-on-exec, in one call. 0, or -1 with errno (ENOSYS, EINVAL before 5.11).
int postern_close_on_exec_range(unsigned int first, unsigned int last);

/// An inotify descriptor (close-on-exec, non-blocking) watching `directory` for files created,
/// written, moved in or out, removed, or their attributes changed (a `touch`): the emperor's
/// app directory. -1 with errno on failure.
int postern_directory_watch(const char *directory);

/// Reads and discards every pending inotify event; 1 if there was one, 0 if none.
int postern_directory_watch_drain(int fd);

/// A unix datagram socket bound to `path` (close-on-exec, non-blocking) with SO_PASSCRED: the
/// emperor's NOTIFY_SOCKET, on which each datagram arrives with its sender's pid. -1 with errno.
int postern_notify_socket(const char *path);

/// One datagram from a notify socket into `buffer` (at most `capacity` bytes) and the sender's
/// pid (0 when the kernel gave none). The datagram's length, or -1 with errno (EAGAIN: none).
long postern_notify_receive(int fd, char *buffer, unsigned long capacity, int *pid);

/// In a static executable, name lookups (users, groups, hosts) use only the services linked in
/// (files, DNS), never a module of the host's shared glibc, whose code crashes a static program;
/// nothing in a dynamically linked one. Called once a process is past the CGI decision
/// (`Gateway.main`'s commands, `Gateway.run`), before any lookup; more calls are free. It reads
/// /etc/nsswitch.conf in a static executable, so a CGI request never calls it.
void postern_nss_static_services(void);

#endif
