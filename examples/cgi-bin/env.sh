#!/bin/sh
# An environment dump: every variable the script was started with, sorted, then argv.
printf 'Content-Type: text/plain\r\n\r\n'
env | LC_ALL=C sort
for word in "$@"; do printf 'ARG=%s\n' "$word"; done
