#!/usr/bin/env bash
# Builds the libFuzzer targets (Fuzz/) and runs each for SECONDS; prints executions per target.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     targets: fastcgi scgi uwsgi http cgi-head fastcgi-mux timeouts tls
#                                             (default: all)
#   FUZZ_RUNS=10000000 scripts/fuzz.sh 0      each target until it has run 10 million inputs
#
# The targets are SwiftPM executables built with -sanitize=fuzzer,address into .build-fuzz (a
# separate scratch path: the main .build is untouched). Each run starts from the committed seed
# corpus (Fuzz/corpus/TARGET) plus what earlier runs found (fuzz-out/corpus/TARGET, git-ignored).
# A crash leaves its input in fuzz-out/crashes/TARGET/ and makes the script fail; turn it into a
# regression fixture under Tests/PosternHardeningTests/Fixtures/fuzz/TARGET/.
# Environment: FUZZ_JOBS=N runs N targets at a time (default 1); FUZZ_RUNS=N stops a target after
# N executions (with SECONDS 0: no time limit); FUZZ_CONFIG=debug for a debug
# build. The default is an optimized build with the same sanitizers: about 9x the executions per
# second (fuzz-scgi: 13,800/s against 1,500/s debug, 20 s runs, this machine).
# Memory: a run's RSS was about 525 MB whatever the target; that is ASan's quarantine (freed
# memory held back to catch use-after-free, 256 MB by default) and its shadow, not the parsers:
# with quarantine_size_mb=16 the same run peaks at 99 MB. 64 MB keeps runs side by side cheap.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(fastcgi scgi uwsgi http cgi-head fastcgi-mux timeouts tls)
config="${FUZZ_CONFIG:-release}"
jobs="${FUZZ_JOBS:-1}"
runs="${FUZZ_RUNS:--1}"

for t in "${targets[@]}"; do
  swift build --scratch-path .build-fuzz -c "$config" -Xswiftc -sanitize=fuzzer,address \
    -Xswiftc -DPOSTERN_LIBFUZZER --product "fuzz-$t" 2>&1 | grep -v 'ld.gold: warning' | tail -1
done
bin=".build-fuzz/$config"

run_one() {
  local t="$1"
  local corpus="fuzz-out/corpus/$t" crashes="fuzz-out/crashes/$t" log="fuzz-out/$t.log"
  mkdir -p "$corpus" "$crashes"
  # -rss_limit_mb bounds memory; -timeout flags a single input that runs over 10 s (a hang).
  SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0:quarantine_size_mb=64 "$bin/fuzz-$t" \
    -max_total_time="$seconds" -runs="$runs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$crashes/" -print_final_stats=1 \
    "$corpus" "Fuzz/corpus/$t" >"$log" 2>&1
}

status=0
pids=()
names=()
for t in "${targets[@]}"; do
  run_one "$t" &
  pids+=($!)
  names+=("$t")
  if [ "${#pids[@]}" -ge "$jobs" ]; then
    wait "${pids[0]}" || { echo "fuzz-${names[0]}: FAILED (see fuzz-out/${names[0]}.log)"; status=1; }
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
  fi
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { echo "fuzz-${names[$i]}: FAILED (see fuzz-out/${names[$i]}.log)"; status=1; }
done

for t in "${targets[@]}"; do
  executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "fuzz-out/$t.log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "fuzz-out/$t.log" | tail -1)
  crashes=$(find "fuzz-out/crashes/$t" -type f | wc -l)
  coverage=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "fuzz-out/$t.log" | tail -1)
  elapsed=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "fuzz-out/$t.log" | tail -1)
  printf 'fuzz-%-9s %12s executions in %ss (%s/s), %s, %s crash file(s)\n' "$t" "${executed:-?}" "${elapsed:-$seconds}" "${speed:-?}" "${coverage:-cov: ?}" "$crashes"
  [ "$crashes" -eq 0 ] || status=1
done
exit "$status"
