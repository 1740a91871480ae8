#!/bin/sh
# Sleeps before printing anything: the gateway's --cgi-timeout must stop it (504).
echo "$$" > "${PIDFILE:-/dev/null}" 2>/dev/null
sleep 30
printf 'Content-Type: text/plain\r\n\r\ntoo late\n'
