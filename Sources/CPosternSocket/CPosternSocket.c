#define _GNU_SOURCE
#include "CPosternSocket.h"

#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/eventfd.h>
#include <unistd.h>

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

int postern_accept_wait(int epoll) {
    struct epoll_event events[2];
    return epoll_wait(epoll, events, 2, -1);
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
