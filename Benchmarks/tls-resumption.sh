#!/usr/bin/env bash
# How often nginx's suwsgi handshakes to Postern resume a session, with one process and with
# --workers 2: nginx (uwsgi_ssl_session_reuse on) in front, wrk -c8 for a few seconds, and strace
# on the serving processes counting the server's first flight after each ClientHello: about 150
# bytes when the session resumes, about 1 KB when the server sends its certificate (a full
# handshake). Each with and without a client certificate (mutual TLS, --tls-client-ca). Run
# from the package root after `swift build --product postern` (debug is fine: it
# is a ratio); needs nginx, wrk, strace, openssl.
#   Benchmarks/tls-resumption.sh [SECONDS]
set -euo pipefail
source "$(dirname "$0")/tls-files.sh"
DURATION=${1:-3}
POSTERN=$(pwd)/.build/debug/postern
[ -x "$(pwd)/.build/release/postern" ] && POSTERN=$(pwd)/.build/release/postern
DIR=$(mktemp -d /tmp/postern-tls-resumption-XXXXXX)
chmod 755 "$DIR"
cd "$DIR"
cleanup() { for p in 7201 7280; do fuser -k -TERM -n tcp "$p" >/dev/null 2>&1 || true; done; }
trap cleanup EXIT
cleanup

tls_files client

cat > nginx.conf <<NGINX
daemon off;
worker_processes 1;
user www-data;
pid $DIR/nginx.pid;
error_log $DIR/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $DIR/t1; uwsgi_temp_path $DIR/t2; proxy_temp_path $DIR/t3; fastcgi_temp_path $DIR/t4; scgi_temp_path $DIR/t5;
    server {
        listen 127.0.0.1:7280;
        location / { include /etc/nginx/uwsgi_params; uwsgi_pass suwsgi://127.0.0.1:7201;
            uwsgi_ssl_certificate $DIR/client.pem; uwsgi_ssl_certificate_key $DIR/client.key;
            uwsgi_ssl_trusted_certificate $DIR/ca.pem; uwsgi_ssl_verify on; uwsgi_ssl_name localhost; uwsgi_ssl_session_reuse on; }
    }
}
NGINX
/usr/sbin/nginx -c "$DIR/nginx.conf" -p "$DIR" > nginx.out 2>&1 &

echo "client-certificate workers handshakes resumed full resumed-%"
for run in "none 1" "none 2" "required 1" "required 2"; do
  set -- $run
  auth=$1 workers=$2
  extra=()
  [ "$auth" = required ] && extra=(--tls-client-ca ca.pem)
  POSTERN_ALLOW_ROOT=true "$POSTERN" serve --app hello --suwsgi 127.0.0.1:7201 --tls-certificate server.pem --tls-key server.key \
    "${extra[@]}" --workers "$workers" --log-level error > "postern-$auth-$workers.log" 2>&1 &
  SERVER=$!
  sleep 2
  pids=$(pgrep -P "$SERVER" || true)
  [ -n "$pids" ] || pids=$SERVER
  attach=""
  for pid in $pids; do attach="$attach -p $pid"; done
  strace -f -e trace=write -s 4 -o "strace-$auth-$workers.txt" $attach 2>/dev/null &
  STRACE=$!
  sleep 1
  wrk -t2 -c8 -d"${DURATION}s" http://127.0.0.1:7280/ > "wrk-$auth-$workers.txt"
  sleep 0.5
  kill "$STRACE"; wait "$STRACE" 2>/dev/null || true
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
  python3 - "strace-$auth-$workers.txt" "$auth $workers" <<'PY'
import re, sys
sizes = [int(m.group(1)) for line in open(sys.argv[1])
         for m in [re.search(r'write\(\d+, "\\26\\3\\3.*?= (\d+)$', line)] if m]
resumed = sum(1 for size in sizes if size < 400)
print(f"{sys.argv[2]} {len(sizes)} {resumed} {len(sizes) - resumed} {100 * resumed / max(1, len(sizes)):.1f}")
PY
done
