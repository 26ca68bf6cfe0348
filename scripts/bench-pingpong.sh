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
# RUNS), the ferry/tokio ratio as the median of per-round ratios (each round
# runs both servers back to back, in alternating order, so slow drifts of a
# shared machine cancel) with the lowest and highest round, and server CPU
# time per message (utime+stime of the server process from /proc/PID/stat
# from the end of the client's warm-up to its exit, divided by the messages
# counted in that span; median).
# FERRY_ARGS (env) is passed to the ferry server, e.g. --no-idle-yield;
# CLIENT_ARGS to every client run, e.g. --reshuffle.
# PEER_ARGS (env) replaces the tokio server by a second ferry echo server
# started with those arguments, for an A/B of ferry options in one run:
#   FERRY_ARGS=--no-idle-yield PEER_ARGS="--poller epoll" scripts/bench-pingpong.sh
# (the "tokio" columns are then that second ferry).
# FERRY_ECHO (env) is run in place of the ferry echo example (same command
# line: ADDR --threads N), e.g. the io_uring model:
#   FERRY_ECHO=scripts/serve-echo.sh scripts/bench-pingpong.sh
# PEER_ECHO (env) is another build's echo example run as the peer, for an
# A/B of two builds in one run (with PEER_ARGS as its arguments, if set):
#   PEER_ECHO=../old/target-reactor/release/examples/echo scripts/bench-pingpong.sh
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

echo "# ping-pong: SECS=$SECS RUNS=$RUNS PIN=${PIN:-0} FERRY_ECHO=${FERRY_ECHO:-} FERRY_ARGS=${FERRY_ARGS:-} PEER_ARGS=${PEER_ARGS:-} PEER_ECHO=${PEER_ECHO:-} (either set: the tokio columns are that ferry) CLIENT_ARGS=${CLIENT_ARGS:-}, $(nproc) cores, $(uname -r)"
echo
echo "| sub-loops | conns | size | ferry MiB/s | tokio MiB/s | ferry/tokio (min-max) | ferry CPU µs/msg | tokio CPU µs/msg |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for t in $THREADS; do
    # shellcheck disable=SC2086 # FERRY_ARGS is a list of words
    "${SRV_PIN[@]}" "${FERRY_ECHO:-$EX/echo}" "127.0.0.1:$FERRY_PORT" --threads "$t" ${FERRY_ARGS:-} >"$LOG/ferry.out" 2>&1 &
    FP=$!
    if [[ -n "${PEER_ARGS:-}${PEER_ECHO:-}" ]]; then
        # shellcheck disable=SC2086 # PEER_ARGS is a list of words
        "${SRV_PIN[@]}" "${PEER_ECHO:-$EX/echo}" "127.0.0.1:$TOKIO_PORT" --threads "$t" ${PEER_ARGS:-} \
            >"$LOG/tokio.out" 2>&1 &
    else
        "${SRV_PIN[@]}" "$EX/tokio_echo" "127.0.0.1:$TOKIO_PORT" --threads "$t" >"$LOG/tokio.out" 2>&1 &
    fi
    TP=$!
    PIDS=("$FP" "$TP")
    wait_listening "$LOG/ferry.out"
    wait_listening "$LOG/tokio.out"
    for c in $CONNS; do
        for b in $SIZES; do
            : >"$LOG/ferry.tp"; : >"$LOG/tokio.tp"; : >"$LOG/ferry.cpu"; : >"$LOG/tokio.cpu"; : >"$LOG/ratio"
            for r in $(seq "$RUNS"); do
                order="ferry tokio"
                if ((r % 2 == 0)); then order="tokio ferry"; fi
                declare -A round=()
                for srv in $order; do
                    if [[ $srv == ferry ]]; then pid=$FP; port=$FERRY_PORT; else pid=$TP; port=$TOKIO_PORT; fi
                    # Server CPU is counted from the client's WARM line (every
                    # connection served once) to its exit, the span its
                    # message count covers.
                    : >"$LOG/client.out"
                    # shellcheck disable=SC2086 # CLIENT_ARGS is a list of words
                    timeout $((SECS * 3 + 70)) "${CLI_PIN[@]}" "$EX/pingpong_client" "127.0.0.1:$port" \
                        --conns "$c" --size "$b" --secs "$SECS" ${CLIENT_ARGS:-} >"$LOG/client.out" &
                    cl=$!
                    until grep -q '^WARM' "$LOG/client.out" || ! kill -0 "$cl" 2>/dev/null; do sleep 0.01; done
                    c0=$(cpu_ticks "$pid")
                    wait "$cl" || true
                    c1=$(cpu_ticks "$pid")
                    line=$(grep '^RESULT' "$LOG/client.out" || true)
                    if [[ -z "$line" ]]; then echo "run failed: $srv t=$t c=$c b=$b" >&2; continue; fi
                    tp=$(sed -E 's/.*mib_per_s=([0-9.]+).*/\1/' <<<"$line")
                    msgs=$(sed -E 's/.*msgs=([0-9]+).*/\1/' <<<"$line")
                    echo "$tp" >>"$LOG/$srv.tp"
                    round[$srv]=$tp
                    awk -v d=$((c1 - c0)) -v m="$msgs" -v t="$TCK" \
                        'BEGIN { if (m > 0) printf "%.3f\n", d / t * 1e6 / m; else print 0 }' >>"$LOG/$srv.cpu"
                done
                if [[ -n "${round[ferry]:-}" && -n "${round[tokio]:-}" ]]; then
                    awk -v a="${round[ferry]}" -v b="${round[tokio]}" 'BEGIN { if (b > 0) printf "%.3f\n", a / b }' >>"$LOG/ratio"
                fi
                unset round
            done
            ftp=$(median <"$LOG/ferry.tp"); ttp=$(median <"$LOG/tokio.tp")
            fcpu=$(median <"$LOG/ferry.cpu"); tcpu=$(median <"$LOG/tokio.cpu")
            ratio=$(printf "%.2f (%.2f-%.2f)" "$(median <"$LOG/ratio")" "$(sort -g "$LOG/ratio" | head -1)" "$(sort -g "$LOG/ratio" | tail -1)")
            echo "| $t | $c | $b | $ftp | $ttp | $ratio | $fcpu | $tcpu |"
        done
    done
    kill "$FP" "$TP" 2>/dev/null || true
    wait "$FP" "$TP" 2>/dev/null || true
    PIDS=()
done
