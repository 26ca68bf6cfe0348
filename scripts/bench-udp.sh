#!/usr/bin/env bash
# UDP echo benchmark (issue 12): echoes per second through the reactor's
# datagram echo (examples/udp_echo) with batching on (--batch 32: recvmmsg
# and sendmmsg) and off (--batch 1: one recvmsg per wake-up, one sendto per
# reply), loaded by examples/udp_load (PEERS connected sockets on one loop,
# each keeping WINDOW datagrams of SIZE bytes in flight). Loopback only;
# every run is bounded by SECS.
#
# Usage: scripts/bench-udp.sh
# Knobs (env): SECS (per run, default 3), RUNS (default 5, medians taken),
#   SIZES ("64 1400 16384"), PEERS (8), WINDOW (16),
#   ON_ARGS ("--batch 32"), OFF_ARGS ("--batch 1"),
#   OFF_ECHO (another build's udp_echo for the "off" column, e.g. a
#   patched one), CARGO_TARGET_DIR.
# Each round runs "on" and "off" back to back, in alternating order, so a
# shared machine's drift hits both. Prints a Markdown table: echoes per
# second counted by the client (median of RUNS), the on/off ratio as the
# median of per-round ratios with the lowest and highest round, and the
# server's CPU time (utime+stime from /proc/PID/stat over its whole life)
# per datagram it received (median).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECS:-3}
RUNS=${RUNS:-5}
SIZES=${SIZES:-"64 1400 16384"}
PEERS=${PEERS:-8}
WINDOW=${WINDOW:-16}
ON_ARGS=${ON_ARGS:-"--batch 32"}
OFF_ARGS=${OFF_ARGS:-"--batch 1"}
PORT=${PORT:-24907}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

cargo build --quiet --release -p ferry-reactor --example udp_echo --example udp_load
EX="$CARGO_TARGET_DIR/release/examples"
OFF_ECHO=${OFF_ECHO:-$EX/udp_echo}
TCK=$(getconf CLK_TCK)
LOG=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$LOG"
}
trap cleanup EXIT

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# One run: server binary, its args, datagram size. Prints "echoes_per_s cpu_us_per_datagram".
one_run() {
    local bin=$1 args=$2 size=$3
    # Gone first, so the wait below cannot see the previous run's line.
    rm -f "$LOG/server.out"
    # shellcheck disable=SC2086
    "$bin" "127.0.0.1:$PORT" $args >"$LOG/server.out" 2>"$LOG/server.err" &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 200); do grep -q listening "$LOG/server.out" 2>/dev/null && break; sleep 0.05; done
    grep -q listening "$LOG/server.out" || { echo "server did not start: $(cat "$LOG/server.err")" >&2; exit 1; }
    local result
    result=$("$EX/udp_load" "127.0.0.1:$PORT" --peers "$PEERS" --window "$WINDOW" --size "$size" --secs "$SECS" | grep '^RESULT')
    local ticks
    ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    local received
    received=$(sed -n 's/.*received \([0-9]*\) in.*/\1/p' "$LOG/server.out")
    local per_s
    per_s=$(sed -n 's/.*per_s=\([0-9]*\).*/\1/p' <<<"$result")
    awk -v p="$per_s" -v t="$ticks" -v k="$TCK" -v r="$received" 'BEGIN {printf "%d %.3f\n", p, (r > 0 ? t / k * 1e6 / r : 0)}'
}

echo "UDP echo, $PEERS peers x $WINDOW in flight, ${SECS}s per run, median of $RUNS; on: $ON_ARGS, off: $OFF_ARGS"
echo
echo "| size (B) | on: echoes/s | off: echoes/s | on / off (low-high) | on: server CPU µs/datagram | off: server CPU µs/datagram |"
echo "|---:|---:|---:|---:|---:|---:|"
for size in $SIZES; do
    : >"$LOG/on"; : >"$LOG/off"; : >"$LOG/ratio"
    for round in $(seq "$RUNS"); do
        if (( round % 2 )); then
            on=$(one_run "$EX/udp_echo" "$ON_ARGS" "$size"); off=$(one_run "$OFF_ECHO" "$OFF_ARGS" "$size")
        else
            off=$(one_run "$OFF_ECHO" "$OFF_ARGS" "$size"); on=$(one_run "$EX/udp_echo" "$ON_ARGS" "$size")
        fi
        echo "$on" >>"$LOG/on"; echo "$off" >>"$LOG/off"
        awk -v a="${on%% *}" -v b="${off%% *}" 'BEGIN {if (b > 0) printf "%.3f\n", a / b}' >>"$LOG/ratio"
    done
    on_rate=$(cut -d' ' -f1 "$LOG/on" | median); off_rate=$(cut -d' ' -f1 "$LOG/off" | median)
    on_cpu=$(cut -d' ' -f2 "$LOG/on" | median); off_cpu=$(cut -d' ' -f2 "$LOG/off" | median)
    ratio=$(median <"$LOG/ratio"); low=$(sort -g "$LOG/ratio" | head -1); high=$(sort -g "$LOG/ratio" | tail -1)
    printf "| %s | %.0f | %.0f | %.2f (%.2f-%.2f) | %.2f | %.2f |\n" \
        "$size" "$on_rate" "$off_rate" "$ratio" "$low" "$high" "$on_cpu" "$off_cpu"
done
