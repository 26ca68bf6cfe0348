#!/usr/bin/env bash
# Ping-pong echo benchmark (muduo's classic): C connections each bounce a
# B-byte message as fast as possible for SECS seconds, against the ferry
# reactor echo server and a tokio echo server, same client, same run.
#
# Usage: scripts/bench-pingpong.sh            # full matrix
#        QUICK=1 scripts/bench-pingpong.sh    # representative subset
# Knobs (env): SECS (per run, default 2), RUNS (default 3, median taken),
#   THREADS ("1 2": sub-loops / tokio workers), CONNS ("1 10 100 1000"),
#   SIZES ("16 4096 65536"), CARGO_TARGET_DIR,
#   PIN=1 (servers on CPU 0, client on CPU 1, with taskset: steadier numbers).
# Prints a Markdown table: throughput (MiB/s read by the client, median of
# RUNS), ferry/tokio ratio, and server CPU time per message (utime+stime of
# the server process from /proc/PID/stat over the run, divided by messages).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${SECS:-2}
RUNS=${RUNS:-3}
THREADS=${THREADS:-"1 2"}
CONNS=${CONNS:-"1 10 100 1000"}
SIZES=${SIZES:-"16 4096 65536"}
if [[ "${QUICK:-0}" == 1 ]]; then
    CONNS=${QUICK_CONNS:-"1 100 1000"}
    SIZES=${QUICK_SIZES:-"16 4096"}
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-reactor}
FERRY_PORT=${FERRY_PORT:-24007}
TOKIO_PORT=${TOKIO_PORT:-24017}

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --quiet --release -p ferry-reactor --example echo --example tokio_echo --example pingpong_client
EX="$CARGO_TARGET_DIR/release/examples"
SRV_PIN=(); CLI_PIN=()
if [[ "${PIN:-0}" == 1 ]] && command -v taskset >/dev/null; then
    SRV_PIN=(taskset -c 0); CLI_PIN=(taskset -c 1)
fi
TCK=$(getconf CLK_TCK)
LOG=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$LOG"
}
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

wait_listening() { # file
    for _ in $(seq 100); do grep -q listening "$1" 2>/dev/null && return 0; sleep 0.05; done
    echo "server did not start: $(cat "$1")" >&2
    exit 1
}

median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) print 0; else print v[int((NR+1)/2)]}'; }

echo "# ping-pong: SECS=$SECS RUNS=$RUNS PIN=${PIN:-0}, $(nproc) cores, $(uname -r)"
echo
echo "| sub-loops | conns | size | ferry MiB/s | tokio MiB/s | ferry/tokio | ferry CPU µs/msg | tokio CPU µs/msg |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for t in $THREADS; do
    "${SRV_PIN[@]}" "$EX/echo" "127.0.0.1:$FERRY_PORT" --threads "$t" >"$LOG/ferry.out" 2>&1 &
    FP=$!
    "${SRV_PIN[@]}" "$EX/tokio_echo" "127.0.0.1:$TOKIO_PORT" --threads "$t" >"$LOG/tokio.out" 2>&1 &
    TP=$!
    PIDS=("$FP" "$TP")
    wait_listening "$LOG/ferry.out"
    wait_listening "$LOG/tokio.out"
    for c in $CONNS; do
        for b in $SIZES; do
            : >"$LOG/ferry.tp"; : >"$LOG/tokio.tp"; : >"$LOG/ferry.cpu"; : >"$LOG/tokio.cpu"
            for _ in $(seq "$RUNS"); do
                for srv in ferry tokio; do
                    if [[ $srv == ferry ]]; then pid=$FP; port=$FERRY_PORT; else pid=$TP; port=$TOKIO_PORT; fi
                    c0=$(cpu_ticks "$pid")
                    line=$(timeout $((SECS * 3 + 30)) "${CLI_PIN[@]}" "$EX/pingpong_client" "127.0.0.1:$port" \
                        --conns "$c" --size "$b" --secs "$SECS" | grep '^RESULT' || true)
                    c1=$(cpu_ticks "$pid")
                    if [[ -z "$line" ]]; then echo "run failed: $srv t=$t c=$c b=$b" >&2; continue; fi
                    tp=$(sed -E 's/.*mib_per_s=([0-9.]+).*/\1/' <<<"$line")
                    msgs=$(sed -E 's/.*msgs=([0-9]+).*/\1/' <<<"$line")
                    echo "$tp" >>"$LOG/$srv.tp"
                    awk -v d=$((c1 - c0)) -v m="$msgs" -v t="$TCK" \
                        'BEGIN { if (m > 0) printf "%.3f\n", d / t * 1e6 / m; else print 0 }' >>"$LOG/$srv.cpu"
                done
            done
            ftp=$(median <"$LOG/ferry.tp"); ttp=$(median <"$LOG/tokio.tp")
            fcpu=$(median <"$LOG/ferry.cpu"); tcpu=$(median <"$LOG/tokio.cpu")
            ratio=$(awk -v a="$ftp" -v b="$ttp" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
            echo "| $t | $c | $b | $ftp | $ttp | $ratio | $fcpu | $tcpu |"
        done
    done
    kill "$FP" "$TP" 2>/dev/null || true
    wait "$FP" "$TP" 2>/dev/null || true
    PIDS=()
done
