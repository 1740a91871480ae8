/* The FastCGI reference: libfcgi's C responder writing the same bytes as Postern's `hello`. */
/* usage: hello-fcgi ADDRESS [PROCESSES]   (ADDRESS ":PORT" or a unix socket path) */
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

static const char response[] =
    "Status: 200 OK\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Hello, World!\n";

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: hello-fcgi ADDRESS [PROCESSES]\n");
        return 2;
    }
    int processes = argc > 2 ? atoi(argv[2]) : 1;
    FCGX_Init();
    int sock = FCGX_OpenSocket(argv[1], 128);
    if (sock < 0) {
        perror("FCGX_OpenSocket");
        return 1;
    }
    /* Workers share the listening socket, as spawn-fcgi -F N does; they die with the parent. */
    for (int i = 1; i < processes; i++) {
        if (fork() == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            break;
        }
    }
    FCGX_Request request;
    FCGX_InitRequest(&request, sock, 0);
    while (FCGX_Accept_r(&request) >= 0) {
        FCGX_PutStr(response, sizeof response - 1, request.out);
        FCGX_Finish_r(&request);
    }
    return 0;
}
