#!/usr/bin/env bash
# Unix-domain socket against loopback TCP, same server build, same model,
# alternating within each run: HTTP server CPU per request (closed-loop
# keep-alive GETs of a small file by crates/ferry/examples/http_load.rs,
# which speaks both; wrk has no Unix sockets) and the wall time of
# `ferry get` of a large file. Prints each run and the medians.
#
#   scripts/bench-unix.sh                       # multi-reactor, 5 runs
#   MODEL=thread RUNS=3 SECS=5 CONNS=8 SIZE_MB=1024 scripts/bench-unix.sh
#
# Files live in /dev/shm so the disk is not what gets measured.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-multi-reactor}
RUNS=${RUNS:-5}
SECS=${SECS:-5}
CONNS=${CONNS:-8}
SIZE_MB=${SIZE_MB:-1024}

cargo build --release -q -p ferry --bin ferry --example http_load
ferry=target/release/ferry
load=target/release/examples/http_load
tck=$(getconf CLK_TCK)

work=$(mktemp -d /dev/shm/ferry-bench-unix.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/root" "$work/dl"
head -c 1024 /dev/urandom >"$work/root/small.bin"
head -c "${SIZE_MB}M" /dev/urandom >"$work/root/big.bin"

# start NAME FILES_ADDR HTTP_ADDR: one server per transport, the same model.
start() {
    "$ferry" serve "$work/root" --model "$MODEL" --files "$2" --http "$3" -q >"$work/$1.out" &
    pids+=($!)
    eval "${1}_pid=$!"
    for _ in $(seq 100); do
        [ "$(grep -c 'listening on' "$work/$1.out" 2>/dev/null)" = 2 ] && break
        sleep 0.05
    done
    eval "${1}_files=\$(sed -n 's/^ferry: files listening on //p' \"$work/$1.out\")"
    eval "${1}_http=\$(sed -n 's/^ferry: http listening on //p' \"$work/$1.out\")"
}
start tcp 127.0.0.1:0 127.0.0.1:0
start unix "unix:$work/files.sock" "unix:$work/http.sock"

# Utime + stime of a process and its threads, in clock ticks.
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# http KIND: prints "REQ_PER_S US_PER_REQ".
http() {
    local pid addr before out after reqs
    pid=$(eval echo "\$${1}_pid")
    addr=$(eval echo "\$${1}_http")
    before=$(cpu "$pid")
    out=$("$load" "$addr" small.bin "$CONNS" "$SECS")
    after=$(cpu "$pid")
    reqs=$(echo "$out" | awk '{print $2}')
    echo "$out" | awk -v t="$((after - before))" -v hz="$tck" -v s="$SECS" \
        '{printf "%.0f %.2f\n", $2 / s, t / hz * 1e6 / $2}'
}

# get KIND: prints the seconds `ferry get` of big.bin took.
get() {
    local addr t0 t1
    addr=$(eval echo "\$${1}_files")
    rm -f "$work/dl/big.bin"
    t0=$(date +%s.%N)
    "$ferry" -q get "$addr" /big.bin "$work/dl/big.bin" >/dev/null
    t1=$(date +%s.%N)
    cmp -s "$work/root/big.bin" "$work/dl/big.bin" || { echo "downloaded file differs" >&2; exit 1; }
    rm -f "$work/dl/big.bin"
    awk -v a="$t0" -v z="$t1" 'BEGIN {printf "%.3f\n", z - a}'
}

declare -A rps us secs
for run in $(seq "$RUNS"); do
    # Alternate which transport goes first.
    if [ $((run % 2)) = 1 ]; then order="tcp unix"; else order="unix tcp"; fi
    line="run $run:"
    for kind in $order; do
        read -r r u < <(http "$kind")
        s=$(get "$kind")
        rps[$kind]+="$r "
        us[$kind]+="$u "
        secs[$kind]+="$s "
        line+=" $kind ${r} req/s ${u} us/req get ${s}s;"
    done
    echo "$line"
done
for kind in tcp unix; do
    mr=$(echo "${rps[$kind]}" | tr ' ' '\n' | grep . | median)
    mu=$(echo "${us[$kind]}" | tr ' ' '\n' | grep . | median)
    ms=$(echo "${secs[$kind]}" | tr ' ' '\n' | grep . | median)
    echo "median $kind: $mr req/s, $mu us server CPU per request, ferry get ${SIZE_MB} MiB in ${ms}s"
done
