/* A libfcgi RESPONDER for interop tests: echoes the method, query and body it received. */
#include <fcgi_stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
    while (FCGI_Accept() >= 0) {
        const char *method = getenv("REQUEST_METHOD");
        const char *query = getenv("QUERY_STRING");
        const char *length = getenv("CONTENT_LENGTH");
        long n = length ? strtol(length, NULL, 10) : 0;
        printf("Status: 201 Created\r\nContent-Type: text/plain\r\nX-Responder: libfcgi\r\n\r\n");
        printf("libfcgi responder: method=%s query=%s body=", method ? method : "-", query ? query : "-");
        for (long i = 0; i < n; i++) {
            int c = getchar();
            if (c == EOF) break;
            putchar(c);
        }
        printf("\n");
        fprintf(stderr, "libfcgi stderr line\n");
    }
    return 0;
}
