#!/usr/bin/env bash
# Soak: drives REQUESTS (default 1,000,000) requests over HTTP, FastCGI, SCGI and uwsgi against
# one release-built `postern serve --app hello`, then reports the server's RSS after a warm-up
# and at the end, and the errors. Fails on any error or an RSS drift of 5 % or more. Then the
# same for the CGI host: REQUESTS / 4 (SOAK_CGI_REQUESTS) shell scripts over SCGI through
# `postern serve --cgi-root` (its reactor, pipes and spawns; a leak of 600 bytes a script there
# once grew its RSS by 10 % in 5,000 requests).
#
#   scripts/soak.sh [REQUESTS] [CONCURRENCY]
#
# The driver (Soak/postern-soak) uses Postern's own encoders on plain blocking sockets: HTTP
# keep-alive; SCGI, uwsgi and FastCGI one connection per request, as front-ends send them.
set -euo pipefail
cd "$(dirname "$0")/.."

requests="${1:-1000000}"
concurrency="${2:-8}"
config="${SOAK_CONFIG:-release}"

swift build -c "$config" --product postern 2>&1 | tail -1
swift build -c "$config" --product postern-soak 2>&1 | tail -1
bin=".build/$config"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Waits (up to 10 s) until a server listens on port $1.
wait_for_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
    sleep 0.1
  done
}
# After a soak: server $1 (named $2) must still run; counts the error lines of its log $3.
check_server() {
  if ! kill -0 "$1" 2>/dev/null; then
    echo "soak: $2 died"; cat "$3"; status=1
  fi
  echo "soak: $2: log lines at level error: $(grep -c . "$3" || true)"
  rm -f "$3"
}
http=$(free_port); fastcgi=$(free_port); scgi=$(free_port); uwsgi=$(free_port)

log=$(mktemp /tmp/postern-soak.XXXXXX)
"$bin/postern" serve --app hello --log-level error --max-connections 4096 \
  --http "127.0.0.1:$http" --fastcgi "127.0.0.1:$fastcgi" --scgi "127.0.0.1:$scgi" --uwsgi "127.0.0.1:$uwsgi" \
  >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT

wait_for_port "$uwsgi"

status=0
"$bin/postern-soak" "$requests" "$concurrency" "$server" \
  "http=$http" "fastcgi=$fastcgi" "scgi=$scgi" "uwsgi=$uwsgi" || status=$?
check_server "$server" "the server" "$log"

# The CGI host: the soak's path, /soak, is a copy of the shell hello in the root.
cgi_requests="${SOAK_CGI_REQUESTS:-$(( requests / 4 ))}"
root=$(mktemp -d /tmp/postern-soak-cgi.XXXXXX)
cp Benchmarks/reference/hello.sh "$root/soak"
chmod 755 "$root/soak"
cgi=$(free_port)
cgilog=$(mktemp /tmp/postern-soak-cgi-log.XXXXXX)
"$bin/postern" serve --cgi-root "$root" --log-level error --max-connections 4096 --scgi "127.0.0.1:$cgi" >"$cgilog" 2>&1 &
cgiserver=$!
trap 'kill "$server" "$cgiserver" 2>/dev/null || true; wait "$server" "$cgiserver" 2>/dev/null || true; rm -rf "$root"' EXIT
wait_for_port "$cgi"
echo "soak: the CGI host (postern serve --cgi-root, a shell script per request over SCGI)"
"$bin/postern-soak" "$cgi_requests" "$concurrency" "$cgiserver" "scgi=$cgi" || status=$?
check_server "$cgiserver" "the CGI host" "$cgilog"
exit "$status"
