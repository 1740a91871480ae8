#!/bin/sh
# A slow streaming response: one line every 0.2 s, five lines (or $1 lines via ISINDEX).
printf 'Content-Type: text/plain\r\n\r\n'
count=${1:-5}
i=1
while [ "$i" -le "$count" ]; do
    echo "tick $i"
    sleep 0.2
    i=$((i + 1))
done
