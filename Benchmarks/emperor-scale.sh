#!/usr/bin/env bash
# Postern's emperor beside uWSGI's Emperor, same run, same machine:
# 1. N on-demand apps in one directory (no process until the first connection): the emperor's
#    start time (from exec until every app is registered: Postern's status page shows every app
#    idle; uWSGI's emperor listens on every on-demand socket, seen with `ss -ltn`), the emperor's
#    RSS (VmRSS), then the first request to COLD apps one at a time (curl, connect to full
#    response: median and p99) and the RSS of the emperor and every process it started.
# 2. ALWAYS always-on apps (2 workers each): wrk -t1 -c8 against app 0 for DURATION s, its file
#    rewritten (Postern) or touched (uWSGI) after RELOAD_AT s: wrk's requests, non-2xx and socket
#    errors, and whether every other app kept its pids.
# Postern's apps are `hello` (built on Gateway.main) with {"exec", "http", "on-demand": true,
# "idle-exit": 600}; uWSGI's vassals run Benchmarks/reference/hello_wsgi.py (plugin python3) with
# `protocol = http` on the socket the Emperor passes as fd 0 (`--emperor-on-demand-extension
# .socket`: NAME.ini.socket holds the address), `idle = 600` and `die-on-idle`, master + 1 worker;
# the always-on vassals use `http11-socket` (keep-alive, like wrk against Postern) and the same app
# with a Content-Length. The Emperor scans every second (--emperor-freq 1), so the touch is seen.
# Run from anywhere as root after `swift build --product postern --product hello` (release if
# built, else debug); installs uwsgi, uwsgi-plugin-python3 and wrk when missing:
#   Benchmarks/emperor-scale.sh
#   N=10 COLD=5 ALWAYS=4 POSTERN=.build/debug/postern HELLO=.build/debug/hello Benchmarks/emperor-scale.sh
# Other settings: UWSGI (binary), DURATION (6), RELOAD_AT (2), PORT_BASE (21000: Postern on demand
# from there, uWSGI +1000, always-on +2000 and +3000, status page +4000), KEEP=1 keeps the files.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${N:-200} COLD=${COLD:-50} ALWAYS=${ALWAYS:-20} DURATION=${DURATION:-6} RELOAD_AT=${RELOAD_AT:-2}
BASE=${PORT_BASE:-21000}
pick() { if [ -x "$ROOT/.build/release/$1" ]; then echo "$ROOT/.build/release/$1"; else echo "$ROOT/.build/debug/$1"; fi; }
POSTERN=$(realpath -s "${POSTERN:-$(pick postern)}")
HELLO=${HELLO:-$(pick hello)}
UWSGI=${UWSGI:-uwsgi}
WSGI_APP=$ROOT/Benchmarks/reference/hello_wsgi.py
P_OD=$BASE U_OD=$((BASE + 1000)) P_AO=$((BASE + 2000)) U_AO=$((BASE + 3000)) STATUS=127.0.0.1:$((BASE + 4000))
[ "$COLD" -le "$N" ] || { echo "COLD ($COLD) must be at most N ($N)" >&2; exit 1; }
[[ "$("$POSTERN" emperor --help 2>&1)" == *"directory of app files"* ]] || { echo "$POSTERN has no emperor: build it, or set POSTERN" >&2; exit 1; }
if [ -x "$HELLO" ]; then APP="\"exec\": \"$(realpath -s "$HELLO")\""
  [[ "$("$HELLO" --help 2>&1)" == *--idle-exit* ]] || { echo "$HELLO has no --idle-exit: build it, or set HELLO" >&2; exit 1; }
else
  echo "no hello at $HELLO: Postern's apps are \`postern serve --app hello\`" >&2; APP='"app": "hello"'; fi

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v "$UWSGI" >/dev/null || need+=(uwsgi)
[ -e /usr/lib/uwsgi/plugins/python3_plugin.so ] || need+=(uwsgi-plugin-python3)
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; fi

WORK=$(mktemp -d /tmp/postern-emperor-scale-XXXXXX)
STARTED=() WRK=   # the emperors and the wrk this script started
tree() { local p; echo "$1"; for p in $(pgrep -P "$1" || true); do tree "$p"; done; }
stop() {     # stop an emperor (SIGTERM, then SIGKILL to whatever of its tree is left after 15 s)
  local pid=$1 all i p
  kill -0 "$pid" 2>/dev/null || return 0
  all=$(tree "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  for p in $all; do kill -KILL "$p" 2>/dev/null || true; done
  wait "$pid" 2>/dev/null || true
}
cleanup() { local p; [ -z "$WRK" ] || kill "$WRK" 2>/dev/null || true; for p in "${STARTED[@]}"; do stop "$p"; done; [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
ms_since() { echo "$1 $(now)" | awk '{printf "%.0f", ($2 - $1) * 1000}'; }
rss_mb() {   # total VmRSS of these pids, MB
  local p kb=0 v
  for p in "$@"; do v=$(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || true); kb=$((kb + ${v:-0})); done
  awk -v kb="$kb" 'BEGIN {printf "%.1f", kb / 1024}'
}
wait_for() { # wait_for SECONDS COMMAND...: poll every 20 ms until COMMAND succeeds
  local deadline; deadline=$(awk -v s="$1" -v t="$(now)" 'BEGIN {printf "%.0f", (t + s) * 100}'); shift
  until "$@"; do
    [ "$(awk -v t="$(now)" 'BEGIN {printf "%.0f", t * 100}')" -lt "$deadline" ] || { echo "timed out: $*" >&2; return 1; }
    sleep 0.02
  done
}
status() { curl -s --max-time 2 "http://$STATUS/" || true; }
states_are() { [ "$(status | grep -o "\"state\":\"$1\"" | wc -l)" -eq "$2" ]; }
listening() { [ "$(ss -Hltn "sport >= :$1 and sport < :$(($1 + $2))" | wc -l)" -eq "$2" ]; }
all_answer() { local i; for i in $(seq 0 $(($2 - 1))); do curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$(($1 + i))/" || return 1; done; }
percentiles() { python3 -c 'import math, sys
v = sorted(float(x) for x in sys.stdin.read().split())
print(f"{v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2:.1f} {v[math.ceil(0.99 * len(v)) - 1]:.1f}")'; }
cold_requests() { # cold_requests BASE_PORT LABEL: COLD first requests, one at a time; prints "median p99 failures"
  local i out fails=0
  : > "$WORK/$2-cold.txt"
  for i in $(seq 0 $((COLD - 1))); do
    out=$(curl -s -o /dev/null --max-time 30 -w '%{http_code} %{time_total}' "http://127.0.0.1:$(($1 + i))/" || true)
    [ "${out%% *}" = 200 ] || fails=$((fails + 1))
    awk '{printf "%.2f\n", $2 * 1000}' <<<"$out" >> "$WORK/$2-cold.txt"
  done
  echo "$(percentiles < "$WORK/$2-cold.txt") $fails"
}
wrk_reload() { # wrk_reload PORT LABEL COMMAND...: wrk against PORT, COMMAND after RELOAD_AT s; writes "requests non2xx socket-errors (kinds)"
  local port=$1 label=$2; shift 2
  wrk -t1 -c8 -d"${DURATION}s" "http://127.0.0.1:$port/" > "$WORK/$label-wrk.txt" 2>&1 & WRK=$!
  sleep "$RELOAD_AT"; "$@"; wait "$WRK"; WRK=
  awk '/requests in/ {r = $1} /Non-2xx/ {n = $NF} /Socket errors/ {gsub(",", ""); s = $4 + $6 + $8 + $10
       k = sprintf(" (connect %d, read %d, write %d, timeout %d)", $4, $6, $8, $10)} END {print r + 0, n + 0, s + 0 k}' "$WORK/$label-wrk.txt" > "$WORK/$label-wrk.sum"
}

declare -A R
echo "postern: $POSTERN; apps: $APP; uwsgi: $(command -v "$UWSGI") $("$UWSGI" --version)"
echo "N=$N COLD=$COLD ALWAYS=$ALWAYS DURATION=${DURATION}s RELOAD_AT=${RELOAD_AT}s; files and logs in $WORK"

# ---- 1. Postern: N on-demand apps
mkdir -p "$WORK/p-od" "$WORK/p-run1"
for i in $(seq 0 $((N - 1))); do
  echo "{$APP, \"http\": \"127.0.0.1:$((P_OD + i))\", \"on-demand\": true, \"idle-exit\": 600}" > "$WORK/p-od/app$i.json"
done
t0=$(now)
"$POSTERN" emperor "$WORK/p-od" --status "$STATUS" --run-dir "$WORK/p-run1" > "$WORK/postern-od.log" 2>&1 & E=$!
STARTED+=("$E")
wait_for 120 states_are idle "$N"
R[p_start]=$(ms_since "$t0") R[p_rss0]=$(rss_mb "$E")
read -r R[p_med] R[p_p99] R[p_fail] < <(cold_requests "$P_OD" postern)
sleep 1
R[p_rss1]=$(rss_mb $(tree "$E")) R[p_procs]=$(($(tree "$E" | wc -l) - 1))
states_are ready "$COLD" || echo "postern: not every cold app is ready: $(status | grep -o '"state":"[a-z_]*"' | sort | uniq -c | tr '\n' ' ')" >&2
stop "$E"
echo "postern on demand: start ${R[p_start]} ms, cold median ${R[p_med]} ms, p99 ${R[p_p99]} ms"

# ---- 1. uWSGI: N on-demand vassals
mkdir -p "$WORK/u-od"
for i in $(seq 0 $((N - 1))); do
  cat > "$WORK/u-od/app$i.ini" <<INI
[uwsgi]
plugins = python3
master = true
processes = 1
protocol = http
wsgi-file = $WSGI_APP
idle = 600
die-on-idle = true
disable-logging = true
INI
  echo "127.0.0.1:$((U_OD + i))" > "$WORK/u-od/app$i.ini.socket"
done
t0=$(now)
"$UWSGI" --emperor "$WORK/u-od" --emperor-on-demand-extension .socket --emperor-freq 1 > "$WORK/uwsgi-od.log" 2>&1 & E=$!
STARTED+=("$E")
wait_for 120 listening "$U_OD" "$N"
R[u_start]=$(ms_since "$t0") R[u_rss0]=$(rss_mb "$E")
read -r R[u_med] R[u_p99] R[u_fail] < <(cold_requests "$U_OD" uwsgi)
sleep 1
R[u_rss1]=$(rss_mb $(tree "$E")) R[u_procs]=$(($(tree "$E" | wc -l) - 1))
stop "$E"
echo "uwsgi on demand: start ${R[u_start]} ms, cold median ${R[u_med]} ms, p99 ${R[u_p99]} ms"

# ---- 2. Postern: ALWAYS apps, app 0 reloaded under wrk
mkdir -p "$WORK/p-ao" "$WORK/p-run2"
for i in $(seq 0 $((ALWAYS - 1))); do
  echo "{$APP, \"http\": \"127.0.0.1:$((P_AO + i))\", \"workers\": 2}" > "$WORK/p-ao/app$i.json"
done
"$POSTERN" emperor "$WORK/p-ao" --status "$STATUS" --run-dir "$WORK/p-run2" > "$WORK/postern-ao.log" 2>&1 & E=$!
STARTED+=("$E")
wait_for 120 states_are ready "$ALWAYS"
pids_gens() { status | python3 -c 'import json, sys
for a in sorted(json.load(sys.stdin)["apps"], key=lambda a: int(a["name"][3:])): print(a["name"], a.get("pid"), a["generation"])'; }
pids_gens > "$WORK/postern-before.txt"
rewrite() { echo "{$APP, \"http\": \"127.0.0.1:$P_AO\", \"workers\": 2, \"max-connections\": 1000}" > "$WORK/p-ao/app0.json"; }
wrk_reload "$P_AO" postern rewrite
read -r R[p_req] R[p_non2xx] R[p_sockerr] < "$WORK/postern-wrk.sum"
wait_for 30 states_are ready "$ALWAYS" || true
pids_gens > "$WORK/postern-after.txt"
R[p_others]=no; diff <(tail -n +2 "$WORK/postern-before.txt") <(tail -n +2 "$WORK/postern-after.txt") >/dev/null && R[p_others]=yes
R[p_app0]="$(head -1 "$WORK/postern-before.txt" | cut -d' ' -f2-) → $(head -1 "$WORK/postern-after.txt" | cut -d' ' -f2-)"
stop "$E"

# ---- 2. uWSGI: ALWAYS vassals, vassal 0 touched under wrk
mkdir -p "$WORK/u-ao"
cat > "$WORK/hello_keepalive.py" <<PY   # wrk keeps its connections: http11-socket, which needs a Content-Length
import runpy
hello = runpy.run_path("$WSGI_APP")["application"]
def application(environ, start_response):
    head = []
    body = b"".join(hello(environ, lambda status, headers: head.append((status, headers))))
    start_response(head[0][0], head[0][1] + [("Content-Length", str(len(body)))])
    return [body]
PY
for i in $(seq 0 $((ALWAYS - 1))); do
  printf '[uwsgi]\nplugins = python3\nmaster = true\nprocesses = 2\nhttp11-socket = 127.0.0.1:%s\nwsgi-file = %s\ndisable-logging = true\n' \
    "$((U_AO + i))" "$WORK/hello_keepalive.py" > "$WORK/u-ao/app$i.ini"
done
"$UWSGI" --emperor "$WORK/u-ao" --emperor-freq 1 > "$WORK/uwsgi-ao.log" 2>&1 & E=$!
STARTED+=("$E")
wait_for 120 listening "$U_AO" "$ALWAYS"
wait_for 60 all_answer "$U_AO" "$ALWAYS"
socket_pids() { local i; for i in $(seq 0 $((ALWAYS - 1))); do
  echo "app$i $(ss -Hltnp "sport = :$((U_AO + i))" | grep -o 'pid=[0-9]*' | sort -u | tr '\n' ' ')"; done; }
socket_pids > "$WORK/uwsgi-before.txt"
wrk_reload "$U_AO" uwsgi touch "$WORK/u-ao/app0.ini"
read -r R[u_req] R[u_non2xx] R[u_sockerr] < "$WORK/uwsgi-wrk.sum"
wait_for 30 all_answer "$U_AO" "$ALWAYS" || true
socket_pids > "$WORK/uwsgi-after.txt"
R[u_others]=no; diff <(tail -n +2 "$WORK/uwsgi-before.txt") <(tail -n +2 "$WORK/uwsgi-after.txt") >/dev/null && R[u_others]=yes
R[u_app0]="$(grep -c 'reload the uwsgi instance app0.ini' "$WORK/uwsgi-ao.log" || true) reload(s) in the log; pids: $(head -1 "$WORK/uwsgi-before.txt" | cut -d' ' -f2- | sed 's/pid=//g')→ $(head -1 "$WORK/uwsgi-after.txt" | cut -d' ' -f2- | sed 's/pid=//g')"
stop "$E"

cat <<TABLE

| $N on-demand apps; $ALWAYS always-on | Postern emperor | uWSGI Emperor |
|---|---:|---:|
| emperor start, every app registered | ${R[p_start]} ms | ${R[u_start]} ms |
| emperor RSS after start | ${R[p_rss0]} MB | ${R[u_rss0]} MB |
| first request to $COLD cold apps, median | ${R[p_med]} ms | ${R[u_med]} ms |
| first request to $COLD cold apps, p99 | ${R[p_p99]} ms | ${R[u_p99]} ms |
| failed first requests | ${R[p_fail]} | ${R[u_fail]} |
| RSS, emperor + its processes after them | ${R[p_rss1]} MB (${R[p_procs]} processes) | ${R[u_rss1]} MB (${R[u_procs]} processes) |
| reload app 0 under wrk -c8 ${DURATION}s: requests | ${R[p_req]} | ${R[u_req]} |
| non-2xx | ${R[p_non2xx]} | ${R[u_non2xx]} |
| socket errors | ${R[p_sockerr]} | ${R[u_sockerr]} |
| other apps' pids unchanged | ${R[p_others]} | ${R[u_others]} |
| app 0 | pid, generation: ${R[p_app0]} | ${R[u_app0]} |
TABLE
