#!/bin/sh
# Writes to stderr (the gateway's error log, named after the script) and answers normally.
echo "warning from the script" >&2
printf 'Status: 201 Created\r\nContent-Type: text/plain\r\n\r\ncreated\n'
