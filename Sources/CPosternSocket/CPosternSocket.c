#define _GNU_SOURCE
#include "CPosternSocket.h"

#include <sys/epoll.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sys/inotify.h>
#include <sys/un.h>
#include <spawn.h>

#ifndef EPOLLEXCLUSIVE
#define EPOLLEXCLUSIVE (1u << 28)
#endif

int postern_wake_create(void) {
    return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

int postern_accept_wait_create(int listener, int wake) {
    int epoll = epoll_create1(EPOLL_CLOEXEC);
    if (epoll < 0) return -1;
    struct epoll_event listen_event = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = listener};
    struct epoll_event wake_event = {.events = EPOLLIN, .data.fd = wake};
    if (epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &listen_event) != 0 ||
        epoll_ctl(epoll, EPOLL_CTL_ADD, wake, &wake_event) != 0) {
        close(epoll);
        return -1;
    }
    return epoll;
}

int postern_accept_wait(int epoll, int timeout_ms) {
    struct epoll_event events[2];
    return epoll_wait(epoll, events, 2, timeout_ms);
}

int postern_accept(int listener, struct sockaddr_storage *address, socklen_t *length) {
    return accept4(listener, (struct sockaddr *)address, length, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int postern_set_parent_death_signal(int signal) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0, 0, 0);
}

int postern_set_thread_name(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}

static __thread int request_thread;

void postern_set_request_thread(int marked) {
    request_thread = marked;
}

int postern_is_request_thread(void) {
    return request_thread;
}

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

int postern_pidfd_open(int pid) {
    /* PIDFD_NONBLOCK is not needed: the descriptor is only polled, and it is close-on-exec by
       definition (pidfd_open(2): "the close-on-exec flag is set on the file descriptor"). */
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int postern_watch_create(void) {
    return epoll_create1(EPOLL_CLOEXEC);
}

int postern_watch_arm(int epoll, int fd, int add, unsigned long long token) {
    struct epoll_event event = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = token};
    return epoll_ctl(epoll, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &event);
}

int postern_watch_remove(int epoll, int fd) {
    struct epoll_event unused;
    return epoll_ctl(epoll, EPOLL_CTL_DEL, fd, &unused);
}

int postern_peer_watch_add(int epoll, int fd, int end_means_gone, unsigned long long token) {
    struct epoll_event event = {.events = EPOLLONESHOT | (end_means_gone ? EPOLLRDHUP : 0), .data.u64 = token};
    return epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event);
}

int postern_watch_wait(int epoll, unsigned long long *tokens, int capacity) {
    struct epoll_event events[64];
    if (capacity > 64) capacity = 64;
    int count = epoll_wait(epoll, events, capacity, -1);
    for (int i = 0; i < count; i++) tokens[i] = events[i].data.u64;
    return count;
}

static int unix_listen_queue(int fd, unsigned int *queued, unsigned int *length) {
    struct stat info;
    if (fstat(fd, &info) != 0) return -1;
    int diag = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (diag < 0) return -1;
    struct {
        struct nlmsghdr header;
        struct unix_diag_req request;
    } message;
    memset(&message, 0, sizeof message);
    message.header.nlmsg_len = sizeof message;
    message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    message.header.nlmsg_flags = NLM_F_REQUEST;
    message.request.sdiag_family = AF_UNIX;
    message.request.udiag_states = 1 << 10;  /* TCP_LISTEN */
    message.request.udiag_ino = (unsigned int)info.st_ino;
    message.request.udiag_show = UDIAG_SHOW_RQLEN;
    message.request.udiag_cookie[0] = (unsigned int)-1;  /* INET_DIAG_NOCOOKIE */
    message.request.udiag_cookie[1] = (unsigned int)-1;
    if (send(diag, &message, sizeof message, 0) < 0) {
        close(diag);
        return -1;
    }
    char buffer[8192];
    ssize_t received = recv(diag, buffer, sizeof buffer, 0);
    close(diag);
    if (received < 0) return -1;
    for (struct nlmsghdr *header = (struct nlmsghdr *)buffer; NLMSG_OK(header, (size_t)received); header = NLMSG_NEXT(header, received)) {
        if (header->nlmsg_type == NLMSG_ERROR) {
            struct nlmsgerr *error = NLMSG_DATA(header);
            errno = error->error < 0 ? -error->error : EIO;
            return -1;
        }
        if (header->nlmsg_type != SOCK_DIAG_BY_FAMILY) continue;
        struct unix_diag_msg *reply = NLMSG_DATA(header);
        int left = (int)(header->nlmsg_len - NLMSG_LENGTH(sizeof *reply));
        for (struct nlattr *attribute = (struct nlattr *)(reply + 1); left >= (int)sizeof *attribute && attribute->nla_len >= sizeof *attribute && attribute->nla_len <= left;
             left -= NLA_ALIGN(attribute->nla_len), attribute = (struct nlattr *)((char *)attribute + NLA_ALIGN(attribute->nla_len))) {
            if ((attribute->nla_type & NLA_TYPE_MASK) == UNIX_DIAG_RQLEN) {
                struct unix_diag_rqlen *lengths = (struct unix_diag_rqlen *)((char *)attribute + NLA_HDRLEN);
                *queued = lengths->udiag_rqueue;
                *length = lengths->udiag_wqueue;
                return 0;
            }
        }
    }
    errno = ENOENT;
    return -1;
}

int postern_listen_queue(int fd, unsigned int *queued, unsigned int *length) {
    struct sockaddr_storage address;
    socklen_t size = sizeof address;
    if (getsockname(fd, (struct sockaddr *)&address, &size) != 0) return -1;
    if (address.ss_family == AF_UNIX) return unix_listen_queue(fd, queued, length);
    struct tcp_info info;
    socklen_t infoSize = sizeof info;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &infoSize) != 0) return -1;
    *queued = info.tcpi_unacked;
    *length = info.tcpi_sacked;
    return 0;
}

int postern_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int postern_directory_watch(const char *directory) {
    int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (fd < 0) return -1;
    uint32_t mask = IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB | IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF;
    if (inotify_add_watch(fd, directory, mask) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int postern_directory_watch_drain(int fd) {
    char buffer[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int any = 0;
    for (;;) {
        ssize_t count = read(fd, buffer, sizeof buffer);
        if (count <= 0) return any;
        any = 1;
    }
}

int postern_notify_socket(const char *path) {
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof address.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(address.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0 || bind(fd, (struct sockaddr *)&address, sizeof address) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

long postern_notify_receive(int fd, char *buffer, unsigned long capacity, int *pid) {
    struct iovec vector = {.iov_base = buffer, .iov_len = capacity};
    union {
        struct cmsghdr align;
        char bytes[CMSG_SPACE(sizeof(struct ucred))];
    } control;
    struct msghdr message = {.msg_iov = &vector, .msg_iovlen = 1, .msg_control = control.bytes, .msg_controllen = sizeof control.bytes};
    ssize_t count = recvmsg(fd, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (count < 0) return -1;
    *pid = 0;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_CREDENTIALS) {
            struct ucred credentials;
            memcpy(&credentials, CMSG_DATA(header), sizeof credentials);
            *pid = credentials.pid;
        }
    }
    return (long)count;
}

int postern_spawn_close_from(posix_spawn_file_actions_t *actions, int low) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    return posix_spawn_file_actions_addclosefrom_np(actions, low);
#else
    (void)actions;
    (void)low;
    return ENOSYS;
#endif
}

int postern_close_on_exec_range(unsigned int first, unsigned int last) {
#ifdef SYS_close_range
    return (int)syscall(SYS_close_range, first, last, 4 /* CLOSE_RANGE_CLOEXEC, Linux 5.11 */);
#else
    (void)first;
    (void)last;
    errno = ENOSYS;
    return -1;
#endif
}
