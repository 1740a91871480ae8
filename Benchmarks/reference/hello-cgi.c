/* The reference for CGI start-up time: the same bytes as Postern's `hello` in CGI mode. */
#include <unistd.h>

static const char response[] =
    "Status: 200 OK\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "Hello, World!\n";

int main(void) {
    const char *p = response;
    size_t left = sizeof response - 1;
    while (left > 0) {
        ssize_t n = write(1, p, left);
        if (n <= 0) return 1;
        p += n;
        left -= (size_t)n;
    }
    return 0;
}
