/* The floor: what a one-request connection costs with no gateway at all. Threads accept4 on
 * one listening socket, read once (the front-end sends the whole request at once), write a
 * canned response in the protocol's framing with one send, and close. No parsing, no app.
 *
 * usage: floor PROTOCOL PORT [THREADS]   PROTOCOL: scgi, uwsgi or fastcgi
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char cgi[] =
    "Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\n\r\nHello, World!\n";
static const char http[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\n\r\nHello, World!\n";
static char response[512];
static size_t response_length;
static int listener;

/* FCGI_STDOUT (request id 1) with the CGI block, the empty STDOUT, FCGI_END_REQUEST. */
static void fastcgi_response(void) {
    size_t n = sizeof cgi - 1, pad = (8 - n % 8) % 8;
    unsigned char *p = (unsigned char *)response;
    unsigned char header[8] = {1, 6, 0, 1, (unsigned char)(n >> 8), (unsigned char)n, (unsigned char)pad, 0};
    memcpy(p, header, 8); p += 8;
    memcpy(p, cgi, n); p += n;
    memset(p, 0, pad); p += pad;
    unsigned char end_stdout[8] = {1, 6, 0, 1, 0, 0, 0, 0};
    memcpy(p, end_stdout, 8); p += 8;
    unsigned char end_request[16] = {1, 3, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    memcpy(p, end_request, 16); p += 16;
    response_length = (size_t)(p - (unsigned char *)response);
}

static void *serve(void *unused) {
    (void)unused;
    char buffer[65536];
    for (;;) {
        int client = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (client < 0) continue;
        if (read(client, buffer, sizeof buffer) > 0) send(client, response, response_length, MSG_NOSIGNAL);
        close(client);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: floor scgi|uwsgi|fastcgi PORT [THREADS]\n");
        return 2;
    }
    if (strcmp(argv[1], "fastcgi") == 0) {
        fastcgi_response();
    } else {
        const char *text = strcmp(argv[1], "uwsgi") == 0 ? http : cgi;
        response_length = strlen(text);
        memcpy(response, text, response_length);
    }
    int threads = argc > 3 ? atoi(argv[3]) : 2;
    listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2])), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 1024) != 0) {
        perror("floor: bind/listen");
        return 1;
    }
    pthread_t thread;
    for (int i = 1; i < threads; i++) pthread_create(&thread, NULL, serve, NULL);
    serve(NULL);
    return 0;
}
