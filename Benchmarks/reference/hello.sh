#!/bin/sh
# The shell CGI reference: the same response as Postern's `hello` in CGI mode.
printf 'Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello, World!\n'
