#!/usr/bin/env bash
# PROTOTYPE A/B (issue 13 step 4): SO_REUSEPORT per ring against one
# acceptor handing connections over with IORING_OP_MSG_RING
# (FERRY_URING_ACCEPT=msgring in the prototype build). wrk with a new
# connection per request, alternating; req/s and server CPU per request.
set -euo pipefail
RUNS=${RUNS:-5}; DURATION=${DURATION:-5s}; CONNS=${CONNS:-64}
ferry=${FERRY:?}
ulimit -n 20000 2>/dev/null || true
work=$(mktemp -d /dev/shm/ferry-bench-accept.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work/root"; printf 'Hello, world!' >"$work/root/hello.txt"
declare -A addr pid
for v in reuseport msgring; do
    FERRY_URING_ACCEPT=$v "$ferry" serve "$work/root" --model uring --io-threads 2 --files off --http 127.0.0.1:0 -q >"$work/$v.out" 2>/dev/null &
    pids+=($!); pid[$v]=$!
    for _ in $(seq 100); do grep -q "listening on" "$work/$v.out" 2>/dev/null && break; sleep 0.05; done
    addr[$v]=$(sed -n 's/^ferry: http listening on //p' "$work/$v.out")
done
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
hz=$(getconf CLK_TCK)
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
declare -A res
for run in $(seq "$RUNS"); do
    order="reuseport msgring"; [ $((run % 2)) = 0 ] && order="msgring reuseport"
    line="run $run:"
    for v in $order; do
        c0=$(ticks "${pid[$v]}")
        out=$(wrk -t1 -c"$CONNS" -d"$DURATION" -H 'Connection: close' "http://${addr[$v]}/hello.txt")
        c1=$(ticks "${pid[$v]}")
        req=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' <<<"$out")
        rps=$(awk -v r="$req" -v d="${DURATION%s}" 'BEGIN {printf "%.0f", r / d}')
        us=$(awk -v t=$((c1 - c0)) -v r="$req" -v hz="$hz" 'BEGIN {printf "%.2f", t / hz * 1e6 / r}')
        res[$v.rps]+="$rps "; res[$v.us]+="$us "
        line+=" $v $rps req/s $us us/req;"
    done
    echo "$line"
done
for v in reuseport msgring; do
    echo "medians of $RUNS, $v: $(printf '%s\n' ${res[$v.rps]} | median) req/s, $(printf '%s\n' ${res[$v.us]} | median) us/req server CPU"
done
