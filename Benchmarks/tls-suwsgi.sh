#!/usr/bin/env bash
# uwsgi inside TLS through nginx: Postern --suwsgi with nginx's session reuse on and off, beside
# Postern's plaintext --uwsgi and uWSGI's own --ssl-socket (the same ECDSA P-256 certificate),
# one worker each, wrk -c16, the modes interleaved in each round. CPU per request is the
# backend's (utime + stime of every thread, from /proc/PID/stat). Run from the package root
# after `swift build -c release --product postern`; needs nginx, uwsgi, uwsgi-plugin-python3, wrk.
#   Benchmarks/tls-suwsgi.sh [ROUNDS] [SECONDS]
set -euo pipefail
source "$(dirname "$0")/tls-files.sh"
ROUNDS=${1:-3}
DURATION=${2:-5}
ROOT=$(pwd)
POSTERN=$ROOT/.build/release/postern
DIR=$(mktemp -d /tmp/postern-tls-bench-XXXXXX)
chmod 755 "$DIR"
cd "$DIR"
PORTS="7101 7102 7103 7180"
cleanup() { for p in $PORTS; do fuser -k -TERM -n tcp "$p" >/dev/null 2>&1 || true; done; }
trap cleanup EXIT
cleanup

tls_files

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
        listen 127.0.0.1:7180;
        location /uwsgi/ { include /etc/nginx/uwsgi_params; uwsgi_pass 127.0.0.1:7101; }
        location /suwsgi/ { include /etc/nginx/uwsgi_params; uwsgi_pass suwsgi://127.0.0.1:7102;
            uwsgi_ssl_trusted_certificate $DIR/ca.pem; uwsgi_ssl_verify on; uwsgi_ssl_name localhost; uwsgi_ssl_session_reuse on; }
        location /suwsgi-no-reuse/ { include /etc/nginx/uwsgi_params; uwsgi_pass suwsgi://127.0.0.1:7102;
            uwsgi_ssl_trusted_certificate $DIR/ca.pem; uwsgi_ssl_verify on; uwsgi_ssl_name localhost; uwsgi_ssl_session_reuse off; }
        location /uwsgi-ssl-socket/ { include /etc/nginx/uwsgi_params; uwsgi_pass suwsgi://127.0.0.1:7103;
            uwsgi_ssl_trusted_certificate $DIR/ca.pem; uwsgi_ssl_verify on; uwsgi_ssl_name localhost; uwsgi_ssl_session_reuse on; }
    }
}
NGINX

POSTERN_ALLOW_ROOT=true "$POSTERN" serve --app hello --uwsgi 127.0.0.1:7101 --log-level error > plain.log 2>&1 &
PLAIN=$!
POSTERN_ALLOW_ROOT=true "$POSTERN" serve --app hello --suwsgi 127.0.0.1:7102 --tls-certificate server.pem --tls-key server.key \
  --log-level error > tls.log 2>&1 &
TLS=$!
uwsgi --plugin python3 --wsgi-file "$ROOT/Benchmarks/reference/hello_wsgi.py" --master --processes 1 \
  --ssl-socket 127.0.0.1:7103,server.pem,server.key --disable-logging --die-on-term --need-app --listen 128 > uwsgi.log 2>&1 &
/usr/sbin/nginx -c "$DIR/nginx.conf" -p "$DIR" > nginx.out 2>&1 &
sleep 1.5
UWSGI=$(pgrep -f "ssl-socket 127.0.0.1:7103" | sort -n | tail -1)  # the worker the master forked
for path in uwsgi suwsgi suwsgi-no-reuse uwsgi-ssl-socket; do
  code=$(curl -s -o /dev/null -w "%{http_code}" "http://127.0.0.1:7180/$path/")
  [ "$code" = 200 ] || { echo "/$path/ answered $code; see $DIR" >&2; exit 1; }
done
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
echo "mode requests/s cpu-us-per-request"
for round in $(seq "$ROUNDS"); do
  for pair in "uwsgi $PLAIN" "suwsgi $TLS" "suwsgi-no-reuse $TLS" "uwsgi-ssl-socket $UWSGI"; do
    set -- $pair
    before=$(cpu "$2")
    out=$(wrk -c16 -t2 -d"${DURATION}s" "http://127.0.0.1:7180/$1/" 2>&1)
    after=$(cpu "$2")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    errors=$(echo "$out" | grep -E "Non-2xx|Socket errors" | tr '\n' ' ' || true)
    awk -v r="$round" -v m="$1" -v q="$rps" -v a="$before" -v b="$after" -v n="$requests" -v e="$errors" \
      'BEGIN { printf "round %s %s %s %.1f %s\n", r, m, q, (b - a) * 10000 / (n > 0 ? n : 1), e }'
  done
done
